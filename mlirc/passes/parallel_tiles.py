"""Generated loops on all cores: each large linalg op's outer parallel loop
becomes an `scf.forall` of tiles.

Ops the kernel library does not take (elementwise chains, reductions,
pooling, transposes, convolutions without a kernel...) lower to loop nests
that run on one thread. This pass, on memrefs just before
`convert-linalg-to-loops`, tiles each top-level linalg op whose loop nest
runs at least `min_iterations` iterations along one parallel loop with
`transform.structured.tile_using_forall`; the loops stage then turns each
`scf.forall` into an OpenMP worksharing loop (`scf-forall-to-parallel`,
`convert-scf-to-openmp`), whose runtime calls the kernel library answers on
its own thread pool (kernels/src/openmp.c), so kernels and generated code
share one set of threads.

The loop chosen, and its tile size, are one decision per op made by
`parallel_tile_sizes` from the op's iterator types and static loop extents:
the outermost parallel loop of extent >= 2 that is not the innermost loop
(preferring one that runs along no operand's contiguous last dimension, as
a transpose's channel loop does), one index per tile (the innermost loop
stays whole for the vectorizer); if only the innermost loop is parallel,
tiles of a multiple of 16 iterations. Where an input is read across the
innermost loop with a stride (a transpose), that loop is also blocked
(`strided_read_tile_sizes`) so each block touches few pages. The sizes
stay in the IR as the op's `mlirc.parallel_tiles` and `mlirc.cache_tiles`
attributes in the `parallel` stage (`mlirc explore` lists them); the
`loops` stage shows the resulting `omp.parallel` regions.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import ir
from .base import PythonPass, register_pass
from .flatten_elementwise import PER_IMAGE
from .marked_scripts import apply_marked, mark

MARK = "mlirc.parallel_tile"
DECISION = "mlirc.parallel_tiles"
CACHE_DECISION = "mlirc.cache_tiles"
VECTOR_ITERATIONS = 16  # an AVX-512 vector of f32: innermost tiles are multiples of it

_SCRIPT = """
module attributes {{transform.with_named_sequence}} {{
  transform.named_sequence @__transform_main(%root: !transform.any_op {{transform.readonly}}) {{
    %op = transform.structured.match attributes {{{mark} = {index} : i64}} in %root
      : (!transform.any_op) -> !transform.any_op
    %tiled, %forall = transform.structured.tile_using_forall %op tile_sizes {sizes}
      : (!transform.any_op) -> (!transform.any_op, !transform.any_op){cache_tiling}
    transform.yield
  }}
}}
"""


def indexing_maps(op) -> list:
    """A linalg op's indexing maps, one per operand."""
    return [ir.AffineMapAttr(m).value for m in ir.ArrayAttr(op.attributes["indexing_maps"])]


def static_loop_extents(op, maps: list) -> list[int] | None:
    """A linalg.generic's loop extents, read from the operands' shapes where
    an indexing map's result is a plain loop index; None if any loop has no
    such operand dimension. A loop seen only along dynamic dimensions (a
    dynamic batch) counts as 1: the op's size is judged as for one image."""
    return loop_extents(op, maps)[0]


def loop_extents(op, maps: list) -> tuple[list[int] | None, frozenset[int]]:
    """(static_loop_extents, the loops whose extent only a dynamic dimension
    gives: a dynamic batch)."""
    extents: list[int | None] = [None] * maps[0].n_dims
    dynamic: set[int] = set()
    for operand, indexing in zip(op.operands, maps):
        if not isinstance(operand.type, ir.ShapedType):
            continue
        shape_type = ir.ShapedType(operand.type)
        for index, expr in enumerate(indexing.results):
            if not isinstance(expr, ir.AffineDimExpr):
                continue
            if shape_type.is_dynamic_dim(index):
                dynamic.add(expr.position)
            else:
                extents[expr.position] = shape_type.get_dim_size(index)
    only_dynamic = frozenset(loop for loop in dynamic if extents[loop] is None)
    if PER_IMAGE in op.attributes and len(extents) == 1 and only_dynamic:
        # a flattened elementwise op on a dynamic batch: tiles sized as for
        # one image, as many more as there are images
        return [ir.IntegerAttr(op.attributes[PER_IMAGE]).value], frozenset()
    extents = [1 if loop in only_dynamic else e for loop, e in enumerate(extents)]
    return (None if any(e is None for e in extents) else extents), only_dynamic


def parallel_tile_sizes(iterators: list[str], extents: list[int], min_iterations: int,
                        tasks: int, contiguous: frozenset[int] = frozenset(),
                        dynamic: frozenset[int] = frozenset()) -> list[int] | None:
    """Tile sizes (0: loop not tiled) that make one parallel loop a loop of
    tiles, or None when the op is too small or has no loop worth splitting.
    Loops in `contiguous` run along some operand's last dimension: splitting
    one of those (a transpose's) would give each tile a sliver of every cache
    line, so another loop is taken first where there is one. A `dynamic`
    parallel loop (extent 1 in `extents`, known at run time) outside the
    chosen one is split too, one index per tile: the tiles then cover
    batch x rows, as many at batch 1 as a static compile makes and as many
    at batch 8 as it makes splitting the batch."""
    sizes = _one_loop_tile_sizes(iterators, extents, min_iterations, tasks, contiguous)
    if sizes is None:
        return None
    chosen = next(loop for loop, size in enumerate(sizes) if size)
    for loop in dynamic:
        if loop < chosen and iterators[loop] == "parallel":
            sizes[loop] = 1
    return sizes


def _one_loop_tile_sizes(iterators: list[str], extents: list[int], min_iterations: int,
                         tasks: int, contiguous: frozenset[int]) -> list[int] | None:
    total = 1
    for extent in extents:
        total *= extent
    if total < min_iterations or not extents:
        return None
    innermost = len(extents) - 1
    sizes = [0] * len(extents)
    candidates = [loop for loop, (kind, extent) in enumerate(zip(iterators, extents))
                  if kind == "parallel" and extent >= 2 and loop != innermost]
    if candidates:
        apart = [loop for loop in candidates if loop not in contiguous]
        sizes[(apart or candidates)[0]] = 1
        return sizes
    if iterators[innermost] == "parallel" and extents[innermost] >= 2 * VECTOR_ITERATIONS:
        per_task = -(-extents[innermost] // tasks)
        sizes[innermost] = -(-per_task // VECTOR_ITERATIONS) * VECTOR_ITERATIONS
        return sizes
    return None


_CACHE_TILING = """
    %blocks, %loop = transform.structured.tile_using_for %tiled tile_sizes {sizes}
      : (!transform.any_op) -> (!transform.any_op, !transform.any_op)"""


def strided_read_tile_sizes(op, maps: list, iterators: list[str], extents: list[int],
                            parallel_sizes: list[int], block: int) -> list[int] | None:
    """Tile sizes (inside a parallel tile) that block the innermost loop
    when an input is read across it with a stride, as a transpose reads:
    then each pass of the innermost loop touches `block` rows of that
    input (as many pages) instead of all of them, and the next loop reuses
    the rows' cache lines. None when every input is read along the
    innermost loop or that loop is too short to block."""
    innermost = len(extents) - 1
    if iterators[innermost] != "parallel" or extents[innermost] < 2 * block \
            or parallel_sizes[innermost]:
        return None
    for operand, indexing in list(zip(op.operands, maps))[:-1]:
        if not isinstance(operand.type, ir.ShapedType) or not indexing.results:
            continue
        fastest = indexing.results[len(indexing.results) - 1]
        reads_innermost = any(isinstance(e, ir.AffineDimExpr) and e.position == innermost
                              for e in indexing.results)
        if reads_innermost and not (isinstance(fastest, ir.AffineDimExpr)
                                    and fastest.position == innermost):
            sizes = [0] * len(extents)
            sizes[innermost] = block
            return sizes
    return None


def _contiguous_loops(maps: list) -> frozenset[int]:
    """The loops that index some operand's last (contiguous) dimension."""
    loops = set()
    for indexing in maps:
        results = indexing.results
        if results and isinstance(results[len(results) - 1], ir.AffineDimExpr):
            loops.add(results[len(results) - 1].position)
    return frozenset(loops)


def _iterator_kinds(op) -> list[str]:
    # printed as #linalg.iterator_type<parallel>
    return [str(a).rsplit("<", 1)[-1].rstrip(">")
            for a in ir.ArrayAttr(op.attributes["iterator_types"])]


def _at_top_level(op) -> bool:
    parent = op.parent
    return parent is not None and parent.name == "func.func"


@register_pass
@dataclass(frozen=True)
class ParallelTiles(PythonPass):
    name = "mlirc-parallel-tiles"
    description = ("Each large linalg.generic on memrefs tiled along one parallel loop into "
                   "an scf.forall (run on the kernel library's threads)")
    min_iterations: int = 16384  # smaller ops stay serial: a fork costs a few microseconds
    tasks: int = 8  # tiles of an innermost-only parallel loop
    block: int = 16  # innermost-loop block where an input is read across it (transposes)

    def run(self, module_op) -> None:
        with module_op.context, ir.Location.unknown():
            scripts = []
            for op in list(ir.walk_ops(module_op)):
                if op.name != "linalg.generic" or not _at_top_level(op):
                    continue
                maps = indexing_maps(op)
                extents, dynamic = loop_extents(op, maps)
                if extents is None:
                    continue
                iterators = _iterator_kinds(op)
                sizes = parallel_tile_sizes(iterators, extents, self.min_iterations,
                                            self.tasks, _contiguous_loops(maps), dynamic)
                if sizes is None:
                    continue
                op.attributes[DECISION] = ir.DenseI64ArrayAttr.get(sizes)
                blocks = strided_read_tile_sizes(op, maps, iterators, extents, sizes,
                                                 self.block)
                cache_tiling = ""
                if blocks is not None:
                    op.attributes[CACHE_DECISION] = ir.DenseI64ArrayAttr.get(blocks)
                    cache_tiling = _CACHE_TILING.format(sizes=blocks)
                mark(op, MARK, len(scripts))
                scripts.append(_SCRIPT.format(mark=MARK, index=len(scripts), sizes=sizes,
                                              cache_tiling=cache_tiling))
            apply_marked(module_op, MARK, scripts)


def uses_threads(module) -> bool:
    """Whether a module has parallel regions (whose runtime calls the kernel
    library answers)."""
    return any(op.name == "omp.parallel" for op in ir.walk_ops(module.operation))
