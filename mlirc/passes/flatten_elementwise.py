"""Elementwise loop nests over contiguous buffers as one flat loop.

An elementwise linalg.generic on NCHW buffers lowers to four nested loops
whose innermost runs along W: 14 or 7 iterations in the late layers of
MobileNet or EfficientNet, too few for LLVM's loop vectorizer to fill a
16-float vector (an AVX-512 one) with a remainder to spare. Where every
operand is read and written at the same index (identity maps, all loops
parallel) and is a contiguous buffer, the nest is one loop over all
elements (`transform.structured.flatten_elementwise`: `memref.collapse_shape`
of each operand): one long vectorizable loop, which the parallel stage then
splits into tiles for the threads. A broadcast operand (a squeeze-excite
scale) keeps its op's nest as it is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .. import ir
from .base import PythonPass, register_pass
from .marked_scripts import apply_marked, mark

MARK = "mlirc.flatten"
# on a flattened op whose batch is dynamic: its elements per image, by which
# the parallel stage sizes its tiles (the one loop's extent is unknown)
PER_IMAGE = "mlirc.elements_per_image"

_SCRIPT = """
module attributes {{transform.with_named_sequence}} {{
  transform.named_sequence @__transform_main(%root: !transform.any_op {{transform.readonly}}) {{
    %op = transform.structured.match attributes {{{mark} = {index} : i64}} in %root
      : (!transform.any_op) -> !transform.any_op
    %flat = transform.structured.flatten_elementwise %op
      : (!transform.any_op) -> !transform.any_op
    transform.yield
  }}
}}
"""


def is_flattenable(op) -> bool:
    """An elementwise linalg.generic of rank 2 or more whose operands are
    memrefs of the identity layout."""
    if op.name != "linalg.generic" or op.results:
        return False
    iterators = [str(i) for i in ir.ArrayAttr(op.attributes["iterator_types"])]
    maps = [ir.AffineMapAttr(m).value for m in ir.ArrayAttr(op.attributes["indexing_maps"])]
    identity = str(ir.AffineMap.get_identity(len(iterators)))
    if len(iterators) < 2 or any("parallel" not in i for i in iterators) or \
            any(str(m) != identity for m in maps):
        return False
    body = op.regions[0].blocks[0].operations
    if any(o.name == "arith.constant" or
           not o.name.startswith(("arith.", "math.", "linalg.yield")) for o in body):
        return False  # what linalg takes for elementwise: scalar arith and math only
    for value in op.operands:
        if not isinstance(value.type, ir.MemRefType):
            return False  # a scalar operand, or a tensor
        if str(value.type.layout) != f"affine_map<{identity}>":
            return False
    return True


@register_pass
@dataclass(frozen=True)
class FlattenElementwise(PythonPass):
    name = "mlirc-flatten-elementwise"
    description = ("Elementwise linalg.generic ops on contiguous memrefs as one loop over all "
                   "elements (memref.collapse_shape of each operand)")

    def run(self, module_op) -> None:
        with module_op.context, ir.Location.unknown():
            scripts, per_image = [], []
            for op in [op for op in ir.walk_ops(module_op) if is_flattenable(op)]:
                parent = op.parent
                if parent is None or parent.name != "func.func":
                    continue  # inside a loop another pass made: left alone
                output_type = ir.MemRefType(op.operands[-1].type)
                if output_type.is_dynamic_dim(0):
                    if any(output_type.is_dynamic_dim(d) for d in range(1, output_type.rank)):
                        continue  # more than a dynamic batch: left alone
                    per_image.append((op.operands[-1], math.prod(output_type.shape[1:])))
                mark(op, MARK, len(scripts))
                scripts.append(_SCRIPT.format(mark=MARK, index=len(scripts)))
            apply_marked(module_op, MARK, scripts)
            if per_image:
                _record_elements_per_image(module_op, per_image)


def _record_elements_per_image(module_op, per_image: list) -> None:
    """Sets PER_IMAGE on each flattened op (found by its output, a
    collapse_shape of the original op's output)."""
    i64 = ir.IntegerType.get_signless(64)
    for op in ir.walk_ops(module_op):
        if op.name != "linalg.generic" or \
                ir.defining_op_name(op.operands[-1]) != "memref.collapse_shape":
            continue
        source = op.operands[-1].owner.operands[0]
        for output, elements in per_image:
            if source == output:
                op.attributes[PER_IMAGE] = ir.IntegerAttr.get(i64, elements)
