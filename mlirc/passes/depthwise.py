"""Depthwise convolutions channels-last, tiled and vectorized.

PyTorch's depthwise convolutions (MobileNet, EfficientNet, ShuffleNet...)
import as `linalg.depthwise_conv_2d_nchw_chw`, which lowers to scalar loops:
mobilenet_v2 spent 72% of its time there (docs/performance.md). MLIR's
convolution vectorizer takes depthwise convolutions only channels-last
(docs/experiments.md), so each static f32 one is rewritten as

    transpose(input to NHWC), transpose(filter to HWC), NHWC init
    -> linalg.depthwise_conv_2d_nhwc_hwc -> transpose(result to NCHW)

(the init, a bias broadcast or a fill, is built NHWC directly; other inits
are transposed)
and the NHWC convolution is tiled: its output rows form an `scf.forall` (run
on all cores, see parallel_tiles.py), and each row's tiles (`pixels` output
pixels x `channels` channels, one kernel row) are decomposed into 1-D
convolutions and vectorized with the transform dialect: the kernel width
unrolls into vector FMAs over channels. The transposes stay plain copies.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import ir
from .base import PythonPass, register_pass
from .marked_scripts import apply_marked, mark

MARK = "mlirc.depthwise"

_SCRIPT = """
module attributes {{transform.with_named_sequence}} {{
  transform.named_sequence @__transform_main(%root: !transform.any_op {{transform.readonly}}) {{
    %op = transform.structured.match attributes {{{mark} = {index} : i64}} in %root
      : (!transform.any_op) -> !transform.any_op
    %rows, %forall = transform.structured.tile_using_forall %op tile_sizes [1, 1]
      : (!transform.any_op) -> (!transform.any_op, !transform.any_op)
    %tiled, %loops:5 = transform.structured.tile_using_for %rows tile_sizes {sizes}
      : (!transform.any_op) -> (!transform.any_op, !transform.any_op, !transform.any_op,
                                !transform.any_op, !transform.any_op, !transform.any_op)
    %one_d = transform.structured.decompose %tiled : (!transform.any_op) -> !transform.any_op
    transform.structured.vectorize %one_d : !transform.any_op
    transform.yield
  }}
}}
"""


def largest_divisor(size: int, limit: int) -> int:
    return next(d for d in range(min(size, limit), 0, -1) if size % d == 0)


def tile_sizes(output_nhwc: list[int], pixels: int, channels: int) -> list[int] | None:
    """[n, oh, ow, c, kh, kw] tile sizes: whole tiles only (a partial tile
    would have dynamic sizes, which the vectorizer declines)."""
    _, _, width, depth = output_nhwc
    tile_width, tile_depth = largest_divisor(width, pixels), largest_divisor(depth, channels)
    if tile_depth < 4 and 4 <= depth <= 4 * channels:
        # no divisor makes a useful vector (58 = 2 x 29 channels in
        # ShuffleNet): all the channels in one tile, a few vectors wide
        tile_depth = depth
    if tile_depth < 4:
        return None  # too few channels for a vector
    return [1, 1, tile_width, tile_depth, 1, 0]


def _static_f32(value) -> list[int] | None:
    """An f32 tensor's sizes, static but perhaps the batch (dim 0, then -1):
    a dynamic batch only changes the number of rows the forall runs."""
    shape_type = ir.ShapedType(value.type)
    if str(shape_type.element_type) != "f32" or not shape_type.has_rank:
        return None
    shape = [-1 if shape_type.is_dynamic_dim(i) else shape_type.get_dim_size(i)
             for i in range(shape_type.rank)]
    if -1 in shape[1:]:
        return None
    return shape


def _sizes(value, dims: list[int]) -> list:
    """`value`'s sizes in `dims` order, a dynamic one as a tensor.dim value."""
    from ..ir import dialects
    shape = _static_f32(value)
    index = ir.IndexType.get()
    return [dialects.tensor.DimOp(value, dialects.arith.ConstantOp(index, d).result).result
            if shape[d] == -1 else shape[d] for d in dims]


def _value(built):
    """The one result of what a dialect builder returned (a value, an op or
    a list of results, depending on the builder)."""
    if hasattr(built, "results"):
        return built.results[0]
    if isinstance(built, (list, tuple)) or type(built).__name__ == "OpResultList":
        return built[0]
    return built


def _transposed(value, permutation: list[int]):
    from ..ir import dialects
    empty = dialects.tensor.EmptyOp(_sizes(value, permutation), ir.F32Type.get())
    return _value(dialects.linalg.transpose(value, outs=[empty.result],
                                            permutation=permutation))


def _channels_last_init(init):
    """The NHWC form of a convolution's initial output: a per-channel bias
    broadcast (or a fill) made NHWC directly, else a transpose of it."""
    from ..ir import dialects
    owner = init.owner
    name = ir.defining_op_name(init)
    # a dynamic batch read from the init's destination, not from the init:
    # a tensor.dim of the NCHW init would keep it (and its work) alive
    nhwc = _sizes(owner.operands[-1] if name in ("linalg.broadcast", "linalg.fill") else init,
                  [0, 2, 3, 1])
    if name == "linalg.broadcast" and \
            list(ir.DenseI64ArrayAttr(owner.attributes["dimensions"])) == [0, 2, 3]:
        empty = dialects.tensor.EmptyOp(nhwc, ir.F32Type.get())
        return _value(dialects.linalg.broadcast(owner.operands[0], outs=[empty.result],
                                                dimensions=[0, 1, 2]))
    if name == "linalg.fill":
        empty = dialects.tensor.EmptyOp(nhwc, ir.F32Type.get())
        return _value(dialects.linalg.fill(owner.operands[0], outs=[empty.result]))
    return _transposed(init, [0, 2, 3, 1])


def _channels_last(op) -> object | None:
    """Replaces one NCHW depthwise convolution with its NHWC form between
    transposes; returns the NHWC op, or None when `op` does not qualify."""
    from ..ir import dialects
    image, weights, init = op.operands
    if any(_static_f32(v) is None for v in (image, weights, init)):
        return None
    strides = [int(s) for s in ir.DenseIntElementsAttr(op.attributes["strides"])]
    dilations = [int(d) for d in ir.DenseIntElementsAttr(op.attributes["dilations"])]
    with ir.InsertionPoint(op), op.location:
        image_nhwc = _transposed(image, [0, 2, 3, 1])
        weights_hwc = _transposed(weights, [1, 2, 0])
        init_nhwc = _channels_last_init(init)
        conv = _value(dialects.linalg.depthwise_conv_2d_nhwc_hwc(
            image_nhwc, weights_hwc, outs=[init_nhwc], strides=strides, dilations=dilations))
        result = _transposed(conv, [0, 3, 1, 2])
    op.results[0].replace_all_uses_with(result)
    nhwc = conv.owner
    op.erase()
    if ir.defining_op_name(init) in ("linalg.broadcast", "linalg.fill") and \
            not list(init.uses):
        init.owner.erase()  # the NCHW init, rebuilt NHWC above
    return nhwc


@register_pass
@dataclass(frozen=True)
class DepthwiseChannelsLast(PythonPass):
    name = "mlirc-depthwise-channels-last"
    description = ("Depthwise NCHW convolutions as NHWC ones between transposes, tiled and "
                   "vectorized over channels (transform dialect)")
    pixels: int = 8     # output pixels of a row in a tile
    channels: int = 16  # channels in a tile: one vector

    def run(self, module_op) -> None:
        with module_op.context, ir.Location.unknown():
            scripts = []
            for op in [op for op in ir.walk_ops(module_op)
                       if op.name == "linalg.depthwise_conv_2d_nchw_chw"]:
                out_shape = _static_f32(op.operands[2])
                if out_shape is None:
                    continue
                n, c, h, w = out_shape
                sizes = tile_sizes([n, h, w, c], self.pixels, self.channels)
                nhwc = _channels_last(op) if sizes is not None else None
                if nhwc is None:
                    continue
                mark(nhwc, MARK, len(scripts))
                scripts.append(_SCRIPT.format(mark=MARK, index=len(scripts), sizes=sizes))
            # a declined NHWC convolution stays a loop nest
            apply_marked(module_op, MARK, scripts)
