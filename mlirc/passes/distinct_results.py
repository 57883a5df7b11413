"""Give each result of a public function its own tensor.

A model that updates an input in place and returns it (`return x.add_(1)`)
returns the same tensor twice: once as the updated input, once as its
output. `buffer-results-to-out-params{hoist-static-allocs}` then crashes the
process (it hoists one allocation into two out-parameters); `embedding_bag`
returning its offsets twice did the same. Every repeated return value after
the first becomes a copy (`bufferization.alloc_tensor ... copy(...)`), which
bufferizes to an allocation and a memref.copy into the second out-parameter.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import ir
from .base import PythonPass, register_pass


@register_pass
@dataclass(frozen=True)
class DistinctResults(PythonPass):
    name = "mlirc-distinct-results"
    description = "Copy a tensor returned more than once, so each result has its own buffer"

    def run(self, module_op) -> None:
        returns = [op for op in ir.walk_ops(module_op) if op.name == "func.return"
                   and op.parent.name == "func.func"]
        with module_op.context:
            for op in returns:
                seen = set()
                for index, value in enumerate(list(op.operands)):
                    if not str(value.type).startswith("tensor<"):
                        continue
                    if value in seen:
                        copy = ir.Operation.create(
                            "bufferization.alloc_tensor", results=[value.type],
                            operands=[value],
                            attributes={"operandSegmentSizes":
                                        ir.DenseI32ArrayAttr.get([0, 1, 0])},
                            loc=op.location, ip=ir.InsertionPoint(op))
                        op.operands[index] = copy.results[0]
                    seen.add(value)
