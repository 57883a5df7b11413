"""Vectorization of the loop nests that stay in MLIR (elementwise ops,
broadcasts, row reductions), with the transform dialect.

Each candidate op is tiled so that one tile is one register's worth of its
innermost loop (all outer loops tiled by 1, the innermost by `vector_width`
or a divisor of the row), and the tile is vectorized: 16 floats become one
AVX-512 operation instead of 16 scalar iterations. A reduction over the
innermost loop keeps the whole row in one vector and becomes a vector
reduction.

Contractions (matmul, batch_matmul, convolutions) are left alone: they go to
BLAS. Ops with dynamic shapes, or ones the vectorizer declines, stay scalar
loops; `mlirc explore` shows which ops became vector code.

The script is data: `tile_and_vectorize_script` writes the transform IR for
one op, which `transform.structured.match` finds by a temporary attribute.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import ir
from .base import PythonPass, register_pass
from .marked_scripts import apply_marked, mark

MARK = "mlirc.vectorize"
# Named ops that are elementwise loops in disguise: generalised, then handled
# like any generic. Not linalg.transpose: BLAS offload folds a transpose into
# the GEMM's flags, and a row of a transpose is a strided gather anyway.
_NAMED = ("linalg.broadcast",)

_SCRIPT = """
module attributes {{transform.with_named_sequence}} {{
  transform.named_sequence @__transform_main(%root: !transform.any_op {{transform.readonly}}) {{
    %op = transform.structured.match attributes {{{mark} = {index} : i64}} in %root
      : (!transform.any_op) -> !transform.any_op
    {generalize}
    {tile}
    transform.structured.vectorize %tiled : !transform.any_op
    transform.yield
  }}
}}
"""

# After every op is vectorized: broadcasts and permutations read as plain row
# loads, unit dimensions dropped so the LLVM lowering sees 1-D vectors.
_CLEANUP = """
module attributes {transform.with_named_sequence} {
  transform.named_sequence @__transform_main(%root: !transform.any_op {transform.readonly}) {
    %functions = transform.structured.match ops{["func.func"]} in %root
      : (!transform.any_op) -> !transform.any_op
    transform.apply_patterns to %functions {
      transform.apply_patterns.vector.transfer_permutation_patterns
      transform.apply_patterns.vector.cast_away_vector_leading_one_dim
      transform.apply_patterns.vector.drop_unit_dims_with_shape_cast
      transform.apply_patterns.canonicalization
    } : !transform.any_op
    transform.yield
  }
}
"""


def loop_ranges(op) -> list[int] | None:
    """The static trip count of each loop of a linalg.generic, or None when a
    loop's range is dynamic or not read off an operand dimension."""
    maps = [ir.AffineMapAttr(a).value for a in op.attributes["indexing_maps"]]
    ranges: list[int | None] = [None] * maps[0].n_dims
    for value, affine_map in zip(op.operands, maps):
        shape = value.type.shape if isinstance(value.type, ir.ShapedType) else []
        for size, expr in zip(shape, affine_map.results):
            if isinstance(expr, ir.AffineDimExpr) and size >= 0:
                ranges[expr.position] = size
    return None if any(r is None for r in ranges) else ranges


def _is_reduction(iterator) -> bool:
    return "reduction" in str(iterator)


def tile_sizes(op, vector_width: int) -> list[int] | None:
    """Tile sizes that make one tile a vector's worth of the innermost loop
    (0 = the whole loop), or None when the op is not a candidate."""
    ranges = loop_ranges(op)
    if not ranges:
        return None
    reductions = [_is_reduction(i) for i in op.attributes["iterator_types"]]
    outer = [1] * (len(ranges) - 1)
    if any(reductions):
        # Row reductions of one input (sum, max, mean...): the whole row is
        # one vector, reduced at the end. A reduction with two inputs is a
        # contraction, left to BLAS or to the loops.
        if reductions[:-1] != [False] * (len(ranges) - 1) or \
                len(op.regions[0].blocks[0].arguments) != 2:
            return None
        return outer + [0] if ranges[-1] <= 16 * vector_width else None
    return elementwise_tile_sizes(ranges, vector_width)


def elementwise_tile_sizes(ranges: list[int], vector_width: int) -> list[int] | None:
    """Outer loops tiled by 1; the row by a register's worth, or whole when
    it is shorter (0), or by the largest divisor of the row that fits. Wider
    vectors than a few registers would spill: an erf is about 30 live values."""
    row = ranges[-1]
    if row <= vector_width:
        piece = 0
    else:
        piece = next(p for p in range(vector_width, 0, -1) if row % p == 0)
        if piece < 4:
            return None
    return [1] * (len(ranges) - 1) + [piece]


def tile_and_vectorize_script(index: int, sizes: list[int], generalize: bool) -> str:
    tiled_loops = sum(1 for s in sizes if s)
    source = "%generic" if generalize else "%op"
    generalize_text = ("%generic = transform.structured.generalize %op "
                       ": (!transform.any_op) -> !transform.any_op" if generalize else "")
    if tiled_loops:
        loop_types = ", !transform.any_op" * tiled_loops
        tile = (f"%tiled, %loops:{tiled_loops} = transform.structured.tile_using_for {source} "
                f"tile_sizes {sizes} : (!transform.any_op) -> (!transform.any_op{loop_types})")
    else:
        tile = f"%tiled = transform.merge_handles {source} : !transform.any_op"
    return _SCRIPT.format(mark=MARK, index=index, generalize=generalize_text, tile=tile)


def _candidates(module_op, vector_width: int):
    """(op, tile sizes, generalize first?) for each op to vectorize."""
    found = []
    for op in ir.walk_ops(module_op):
        if op.name == "linalg.generic":
            sizes = tile_sizes(op, vector_width)
            if sizes is not None:
                found.append((op, sizes, False))
        elif op.name in _NAMED:
            shape = op.results[0].type.shape if op.results else []
            if shape and all(s >= 0 for s in shape):
                sizes = elementwise_tile_sizes(shape, vector_width)
                if sizes is not None:
                    found.append((op, sizes, True))
    return found


def _own_empty_init(op) -> None:
    """Gives `op` a tensor.empty of its own as its result's init. A row loop
    writes its init in place, so an empty tensor shared with another op (CSE
    merges them) would make bufferization reuse that op's buffer: a weight
    transpose feeding a matmul would then be overwritten after the matmul,
    and BLAS offload could no longer fold the transpose into the call."""
    init_index = len(op.operands) - 1
    init = op.operands[init_index]
    if ir.defining_op_name(init) != "tensor.empty" or len(list(init.uses)) < 2:
        return
    fresh = init.owner.clone(ir.InsertionPoint(op))
    op.operands[init_index] = fresh.results[0]


@register_pass
@dataclass(frozen=True)
class Vectorize(PythonPass):
    name = "mlirc-vectorize"
    description = ("Tile elementwise, broadcast and row-reduction linalg ops into rows and "
                   "vectorize them (transform dialect)")
    vector_width: int = 16  # f32 lanes of one vector register (AVX-512)

    def run(self, module_op) -> None:
        with module_op.context, ir.Location.unknown():
            candidates = _candidates(module_op, self.vector_width)
            for index, (op, _, _) in enumerate(candidates):
                mark(op, MARK, index)
                _own_empty_init(op)
            # a declined op stays a scalar loop nest
            apply_marked(module_op, MARK, [tile_and_vectorize_script(index, sizes, generalize)
                                           for index, (_, sizes, generalize)
                                           in enumerate(candidates)])
            cleanup = ir.Module.parse(_CLEANUP)
            ir.transform_interpreter.apply_named_sequence(module_op, cleanup.body.operations[0],
                                                          cleanup)
