"""Drop the results of a linalg.generic that nothing uses.

torch-mlir lowers `max(dim)` to one reduction that computes both the maximum
and its index (an argmax); softmax uses only the maximum, yet the index
bookkeeping (an index cast, a compare and a select per element) made that
reduction the slowest loop of the transformer example and kept it from
vectorizing. MLIR drops such results inside its elementwise-fusion pass,
which mlirc cannot run with BLAS offload (it turns matmuls into generic
contractions); this pass does only the dropping.

A result is dropped when it has no uses and the payload computing the kept
results does not read its accumulator. The generic is rebuilt with the kept
outputs and the part of the payload they need.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import ir
from .base import PythonPass, register_pass


def _needed_ops(block, roots) -> list:
    """The payload ops the `roots` values depend on, in block order."""
    needed, pending = set(), list(roots)
    owners = {}
    for op in block.operations:
        for result in op.results:
            owners[result] = op
    while pending:
        value = pending.pop()
        op = owners.get(value)
        if op is None or op in needed:
            continue
        needed.add(op)
        pending.extend(op.operands)
    return [op for op in block.operations if op in needed]


def _rebuild_without(op, kept: list[int]):
    """A new linalg.generic computing only results `kept` of `op`, or None."""
    inputs_count = len(op.operands) - len(op.results)
    block = op.regions[0].blocks[0]
    yield_op = list(block.operations)[-1]
    roots = [yield_op.operands[i] for i in kept]
    body_ops = _needed_ops(block, roots)
    kept_args = [block.arguments[inputs_count + i] for i in kept]
    dropped_args = set(list(block.arguments)[inputs_count:]) - set(kept_args)
    if any(v in dropped_args for o in body_ops for v in o.operands) or \
            any(v in dropped_args for v in roots):
        return None  # the kept results read a dropped accumulator
    maps = list(op.attributes["indexing_maps"])
    new_maps = maps[:inputs_count] + [maps[inputs_count + i] for i in kept]
    inputs = list(op.operands)[:inputs_count]
    outputs = [op.operands[inputs_count + i] for i in kept]
    new = ir.Operation.create(
        "linalg.generic", results=[op.results[i].type for i in kept],
        operands=inputs + outputs,
        attributes={"indexing_maps": ir.ArrayAttr.get(new_maps),
                    "iterator_types": op.attributes["iterator_types"],
                    "operandSegmentSizes": ir.DenseI32ArrayAttr.get([len(inputs), len(outputs)])},
        regions=1, loc=op.location, ip=ir.InsertionPoint(op))
    arguments = list(block.arguments)[:inputs_count] + kept_args
    new_block = new.regions[0].blocks.append(*[a.type for a in arguments],
                                             arg_locs=[a.location for a in arguments])
    mapping = dict(zip(arguments, new_block.arguments))
    with ir.InsertionPoint(new_block):
        for body_op in body_ops:
            clone = body_op.clone()
            for index, operand in enumerate(body_op.operands):
                if operand in mapping:
                    clone.operands[index] = mapping[operand]
            for old, fresh in zip(body_op.results, clone.results):
                mapping[old] = fresh
        ir.Operation.create("linalg.yield", operands=[mapping.get(v, v) for v in roots],
                            loc=yield_op.location)
    return new


@register_pass
@dataclass(frozen=True)
class DropUnusedResults(PythonPass):
    name = "mlirc-drop-unused-results"
    description = "Rebuild linalg.generic ops without the results nothing uses (argmax of a max)"

    def run(self, module_op) -> None:
        candidates = [op for op in ir.walk_ops(module_op)
                      if op.name == "linalg.generic" and len(op.results) > 1]
        with module_op.context:
            for op in candidates:
                kept = [i for i, r in enumerate(op.results) if len(list(r.uses)) > 0]
                if not kept or len(kept) == len(op.results):
                    continue
                new = _rebuild_without(op, kept)
                if new is None:
                    continue
                for index, fresh in zip(kept, new.results):
                    op.results[index].replace_all_uses_with(fresh)
                op.erase()
