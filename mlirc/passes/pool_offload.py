"""Max pooling offload: linalg.pooling_nchw_max on f32 memrefs becomes a call
to the shim's max pooling (kernels/src/maxpool.c), which runs the planes
on the shim's threads and the common 2x2, stride-2 window as vector code.

The -inf fill that initialises the output (pooling takes the max into it)
folds into the call, which then overwrites the output; so does the
-inf-filled padded copy of the input (a padded pool: the shim skips the
taps outside the image). The cnn's two MaxPool2d(2): 14 us of loops and 7 us
of fills -> about 7 us (2026-12-01).

A 2x2, stride-2 pool whose input only a `relu(conv + bias)` shim call
wrote folds into that call instead (`fold_into_conv`): the call becomes
mlirc_conv2d_nchw_bias_pool_f32, which writes the pooled output (the direct
kernel pools its register tiles as it stores them). cnn 0.078 -> 0.072 ms.
So does a 3x3, stride-2 pool padded by 1 (ResNet's stem pool, its padded
copy folded too): mlirc_conv2d_nchw_bias_pool3x3s2_f32, whose strided stem
kernel pools the rows each task computed. ResNet-50 1.1% (A/B of two
compiles in one process).

A global average pool's sum (a linalg.generic adding each plane into an
NxCx1x1 buffer) becomes mlirc_sum_planes_f32, its zero fill folded; the
division after it stays in MLIR. cnn 0.069 -> 0.065 ms.

Runs after blas-offload, in the same stage (the shim is the same library).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from .. import ir
from .base import PythonPass, register_pass
from .blas_offload import (KERNEL_ATTR, SHAPE_ATTR, SITE_ATTR, declare_shim_function,
                           declared_functions, generic_memref_type, memref_info,
                           static_but_batch, window_pair)
from .call_folding import (fill_before, match_conv_before_pool, match_padding, position,
                           yields_sum, zero_fill_before)

POOL = "linalg.pooling_nchw_max"
CALLEE = "mlirc_maxpool2d_nchw_f32"
CONV_POOL_CALLEE = "mlirc_conv2d_nchw_bias_pool_f32"
CONV_POOL3_CALLEE = "mlirc_conv2d_nchw_bias_pool3x3s2_f32"
PLANE_SUM_CALLEE = "mlirc_sum_planes_f32"


def _is_negative_infinity(value) -> bool:
    if ir.defining_op_name(value) != "arith.constant":
        return False
    try:
        number = ir.FloatAttr(value.owner.attributes["value"]).value
    except ValueError:  # not a float constant
        return False
    return math.isinf(number) and number < 0


def _is_plane_sum(op) -> bool:
    """Whether `op` is a global average pool's sum: a linalg.generic adding
    each NCHW f32 plane into an NxCx1x1 output."""
    if op.name != "linalg.generic" or len(op.operands) != 2:
        return False
    iterators = [str(i) for i in ir.ArrayAttr(op.attributes["iterator_types"])]
    if [("reduction" in i) for i in iterators] != [False, False, True, True]:
        return False
    maps = [str(ir.AffineMapAttr(m).value) for m in ir.ArrayAttr(op.attributes["indexing_maps"])]
    if maps != ["(d0, d1, d2, d3) -> (d0, d1, d2, d3)", "(d0, d1, d2, d3) -> (d0, d1, 0, 0)"]:
        return False
    infos = [memref_info(v, dynamic=True) for v in op.operands]
    if any(i is None or i[0] != 4 or i[1] != "f32" or not i[2] for i in infos) or \
            not all(static_but_batch(v) for v in op.operands) or \
            not str(op.operands[1].type).endswith("x1x1xf32>"):
        return False
    block = op.regions[0].blocks[0]
    return yields_sum(list(block.operations), *block.arguments)


@register_pass
@dataclass(frozen=True)
class PoolOffload(PythonPass):
    name = "mlirc-pool-offload"
    description = "Replace NCHW f32 max pooling and plane sums with the shim's threaded kernels"
    fold_padding: bool = True
    fold_into_conv: bool = True

    def run(self, module_op) -> None:
        module_body = module_op.regions[0].blocks[0]
        declared = declared_functions(module_body)
        pools = [op for op in ir.walk_ops(module_op) if op.name == POOL]
        sums = [op for op in ir.walk_ops(module_op) if _is_plane_sum(op)]
        with module_op.context, ir.Location.unknown():
            for op in pools:
                self._offload(op, module_body, declared)
            for op in sums:
                self._offload_plane_sum(op, module_body, declared)

    def _offload(self, op, module_body, declared: set[str]) -> None:
        source, window, output = op.operands
        infos = [memref_info(v, dynamic=True) for v in (source, output)]
        window_shape = re.fullmatch(r"memref<(\d+)x(\d+)xf32>", str(window.type))
        if any(i is None or i[0] != 4 or i[1] != "f32" or not i[2] for i in infos) or \
                window_shape is None or not (static_but_batch(source) and
                                             static_but_batch(output)):
            return  # a dynamic batch is fine: the kernel reads it from the descriptor
        kernel_h, kernel_w = map(int, window_shape.groups())
        (stride_h, stride_w), (dilation_h, dilation_w) = window_pair(op, "strides"), \
            window_pair(op, "dilations")
        padding = match_padding(op, pad_value=_is_negative_infinity) \
            if self.fold_padding else None
        initializer = fill_before(op, output, _is_negative_infinity)
        window = (kernel_h, kernel_w, stride_h, stride_w, dilation_h, dilation_w)
        if self.fold_into_conv and initializer is not None:
            callee = None
            if padding is None and window == (2, 2, 2, 2, 1, 1):
                callee = CONV_POOL_CALLEE
            elif padding is not None and (padding.pad_h, padding.pad_w) == (1, 1) and \
                    window == (3, 3, 2, 2, 1, 1):
                callee = CONV_POOL3_CALLEE
            conv = match_conv_before_pool(op, initializer, padding) if callee else None
            if conv is not None:
                folded = [op, initializer] + (padding.operations if padding else [])
                self._pool_in_conv(conv, op, callee, folded, module_body, declared)
                return
        memref, func, arith = ir.dialects.memref, ir.dialects.func, ir.dialects.arith
        generic = generic_memref_type(4, "f32")
        i64 = ir.IntegerType.get_signless(64)
        with ir.InsertionPoint(op), op.location:
            tensors = [padding.source if padding is not None else source, output]
            operands = [memref.CastOp(generic, v).result for v in tensors]
            # accumulate = 0: the -inf fill goes, the call overwrites the output
            scalars = [kernel_h, kernel_w, stride_h, stride_w, dilation_h, dilation_w,
                       padding.pad_h if padding else 0, padding.pad_w if padding else 0,
                       int(initializer is None)]
            operands += [arith.ConstantOp(i64, v).result for v in scalars]
            func.CallOp([], ir.FlatSymbolRefAttr.get(CALLEE), operands)
        if CALLEE not in declared:
            declare_shim_function(module_body, CALLEE, [generic] * 2 + [i64] * len(scalars))
            declared.add(CALLEE)
        for folded in [op] + ([initializer] if initializer is not None else []) + \
                (padding.operations if padding else []):
            folded.erase()

    @staticmethod
    def _pool_in_conv(conv, pool, callee: str, folded: list, module_body,
                      declared: set[str]) -> None:
        """The convolution call becomes `callee`, which writes the max pool
        of its result into the pool's output; the pool, the -inf fill (and
        a padded copy), `folded`, go."""
        memref, func = ir.dialects.memref, ir.dialects.func
        output = pool.operands[2]
        if ir.defining_op_name(output) == "memref.alloc":
            block = list(conv.block.operations)
            allocation = output.owner.operation
            if position(block, allocation) > position(block, conv):
                allocation.move_before(conv)
        operands = list(conv.operands)
        types = [operand.type for operand in operands]
        with ir.InsertionPoint(conv), conv.location:
            operands[2] = memref.CastOp(types[2], output).result
            call = func.CallOp([], ir.FlatSymbolRefAttr.get(callee), operands)
            for name in (KERNEL_ATTR, SITE_ATTR, SHAPE_ATTR):
                if name in conv.attributes:
                    call.attributes[name] = conv.attributes[name]
        if callee not in declared:
            declare_shim_function(module_body, callee, types)
            declared.add(callee)
        for op in [conv] + folded:
            op.erase()

    @staticmethod
    def _offload_plane_sum(op, module_body, declared: set[str]) -> None:
        """A global average pool's sum becomes mlirc_sum_planes_f32 (the
        division after it stays); a zero fill of the output before it goes."""
        memref, func, arith = ir.dialects.memref, ir.dialects.func, ir.dialects.arith
        initializer = zero_fill_before(op, op.operands[1])
        generic = generic_memref_type(4, "f32")
        i64 = ir.IntegerType.get_signless(64)
        with ir.InsertionPoint(op), op.location:
            operands = [memref.CastOp(generic, v).result for v in op.operands]
            operands.append(arith.ConstantOp(i64, int(initializer is None)).result)
            func.CallOp([], ir.FlatSymbolRefAttr.get(PLANE_SUM_CALLEE), operands)
        if PLANE_SUM_CALLEE not in declared:
            declare_shim_function(module_body, PLANE_SUM_CALLEE, [generic] * 2 + [i64])
            declared.add(PLANE_SUM_CALLEE)
        for folded in [op] + ([initializer] if initializer is not None else []):
            folded.erase()
