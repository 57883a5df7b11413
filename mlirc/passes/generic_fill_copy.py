"""linalg.generic ops on memrefs that only fill or copy become linalg.fill
and memref.copy.

With a dynamic batch, a convolution's zero padding bufferizes to a generic
broadcasting the zero into the padded buffer and a generic copying the input
into its interior (with static sizes: linalg.fill and memref.copy). The BLAS
and pooling offloads fold a padding into the kernel call only in its named
form (call_folding.match_padding); this pass gives it that form, so a
dynamic-batch model runs the same kernels as a static one.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import ir
from .base import PythonPass, register_pass


def _yields_first_argument(op) -> bool:
    block = op.regions[0].blocks[0]
    operations = list(block.operations)
    return len(operations) == 1 and operations[0].name == "linalg.yield" and \
        len(operations[0].operands) == 1 and operations[0].operands[0] == block.arguments[0]


def _kind(op) -> str | None:
    """'fill', 'copy' or None for a linalg.generic."""
    if op.name != "linalg.generic" or len(op.operands) != 2 or op.results or \
            not _yields_first_argument(op):
        return None
    iterators = [str(i) for i in ir.ArrayAttr(op.attributes["iterator_types"])]
    if any("parallel" not in i for i in iterators):
        return None
    maps = [ir.AffineMapAttr(m).value for m in ir.ArrayAttr(op.attributes["indexing_maps"])]
    source, target = op.operands
    if not str(target.type).startswith("memref<") or not maps[1].is_permutation or \
            str(maps[1]) != str(ir.AffineMap.get_identity(maps[1].n_dims)):
        return None
    if not str(source.type).startswith(("memref<", "tensor<", "vector<")):
        return "fill" if len(maps[0].results) == 0 else None
    if str(source.type).startswith("memref<") and str(maps[0]) == str(maps[1]) and \
            str(source.type).split(",")[0].rstrip(">").split("x")[-1] == \
            str(target.type).split(",")[0].rstrip(">").split("x")[-1]:
        return "copy"
    return None


@register_pass
@dataclass(frozen=True)
class GenericFillCopy(PythonPass):
    name = "mlirc-generic-fill-copy"
    description = "Name the linalg.generic fills and copies of memrefs (dynamic-shape paddings)"

    def run(self, module_op) -> None:
        candidates = [(op, _kind(op)) for op in ir.walk_ops(module_op)
                      if op.name == "linalg.generic"]
        with module_op.context:
            for op, kind in candidates:
                if kind is None:
                    continue
                source, target = op.operands
                with ir.InsertionPoint(op), op.location:
                    if kind == "fill":
                        ir.dialects.linalg.fill(source, outs=[target])
                    else:
                        ir.Operation.create("memref.copy", operands=[source, target])
                op.erase()
