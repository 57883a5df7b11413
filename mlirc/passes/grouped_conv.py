"""Grouped convolutions as one convolution per group, for the kernel library.

torch-mlir imports a grouped convolution (RegNet, ResNeXt: groups of 8 to 64
channels) as `linalg.conv_2d_ngchw_gfchw` on `memref.expand_shape` views
that split the channels of the NCHW input, the FCHW filter and the NCHW
output into groups. It lowers to scalar loops: regnet_y_400mf spent 70% of
its time there. This pass, on memrefs before BLAS offload, replaces it by
one `linalg.conv_2d_nchw_fchw` per group on subviews of the unsplit buffers:

    in[:, g*C:(g+1)*C], filter[g*F:(g+1)*F], out[:, g*F:(g+1)*F]

Each image of those views is row-major, which is what the library's
convolution kernels read (blas_offload.images_row_major), so BLAS offload
then makes each a kernel call; one it declines stays a loop nest, as before.
The groups are unrolled, not looped, so that each call site always sees
the same filter (a call site keeps its packed weights across calls).
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import ir
from .base import PythonPass, register_pass
from .blas_offload import strides_and_offset

GROUPED = "linalg.conv_2d_ngchw_gfchw"


def _unsplit(value):
    """The rank-4 memref a rank-5 expand_shape view split one dimension of,
    or None."""
    if ir.defining_op_name(value) != "memref.expand_shape":
        return None
    source = value.owner.operands[0]
    source_type = ir.MemRefType(source.type)
    layout = strides_and_offset(source_type)
    # static but perhaps the batch, with static strides
    if source_type.rank != 4 or str(source_type.element_type) != "f32" or \
            any(source_type.is_dynamic_dim(d) for d in (1, 2, 3)) or layout is None or \
            not all(source_type.is_static_stride_or_offset(v) for v in [*layout[0], layout[1]]):
        return None
    return source


def _group_view(source, dim: int, group: int, size: int):
    """Rank-4 subview of `source`: `size` entries of dimension `dim` from
    `group * size`."""
    source_type = ir.MemRefType(source.type)
    strides, offset = source_type.get_strides_and_offset()
    sizes = list(source_type.shape)
    sizes[dim] = size
    offsets = [group * size if d == dim else 0 for d in range(4)]
    layout = ir.Attribute.parse(f"strided<[{', '.join(map(str, strides))}], "
                                f"offset: {offset + offsets[dim] * strides[dim]}>")
    view_type = ir.MemRefType.get(sizes, source_type.element_type, layout)
    if source_type.is_dynamic_dim(0):  # a dynamic batch, read at run time
        index = ir.IndexType.get()
        sizes[0] = ir.dialects.memref.dim(source, ir.dialects.arith.constant(index, 0))
    return ir.dialects.memref.subview(source, offsets, sizes, [1, 1, 1, 1],
                                      result_type=view_type)


def split_grouped(op) -> bool:
    """Replaces one grouped convolution by a convolution per group; False
    when its operands are not views of f32 NCHW/FCHW buffers, static but
    perhaps the batch."""
    image, filter_, output = (_unsplit(v) for v in op.operands)
    if image is None or filter_ is None or output is None or \
            ir.MemRefType(filter_.type).is_dynamic_dim(0):
        return False
    _, groups, channels, _, _ = ir.MemRefType(op.operands[0].type).shape
    _, filters, _, _, _ = ir.MemRefType(op.operands[1].type).shape
    window = {name: [int(v) for v in ir.DenseIntElementsAttr(op.attributes[name])]
              for name in ("strides", "dilations")}
    with ir.InsertionPoint(op), op.location:
        for group in range(groups):
            ir.dialects.linalg.conv_2d_nchw_fchw(
                _group_view(image, 1, group, channels), _group_view(filter_, 0, group, filters),
                outs=[_group_view(output, 1, group, filters)], **window)
    op.erase()
    return True


@register_pass
@dataclass(frozen=True)
class SplitGroupedConvs(PythonPass):
    name = "mlirc-split-grouped-convs"
    description = ("Grouped convolutions on memrefs as one NCHW convolution per group on "
                   "subviews (which BLAS offload makes kernel calls)")
    max_groups: int = 64  # more groups (depthwise-like) are better served by loops

    def run(self, module_op) -> None:
        with module_op.context, ir.Location.unknown():
            for op in [op for op in ir.walk_ops(module_op) if op.name == GROUPED]:
                if ir.MemRefType(op.operands[0].type).shape[1] <= self.max_groups:
                    split_grouped(op)
