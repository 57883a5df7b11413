"""BLAS offload: linalg.matmul and linalg.batch_matmul on memrefs become calls
to mlirc's GEMM shim (kernels/src/gemm.c), which calls cblas_{s,d}gemm (with
beta = 0 when a zero fill of the output came just before: the fill goes);
linalg.conv_2d_nchw_fchw (f32) becomes a call to the shim's convolution
(a direct kernel for small channel counts, else im2col + SGEMM). The per-channel
bias broadcast that initialises a convolution's output, and a residual add and
a ReLU in place right after it, are folded into that call, and so is the
zero-filled padded copy of its input (`fold_into_conv`; call_folding.py):
the output is written once and the input is not copied. A stride-1 3x3
convolution with a constant filter may run as Winograd F(2x2, 3x3) in the
shim (`winograd`; kernels/src/winograd.c), its filter transformed once into a slot
like the packed GEMM's weights: ResNet-50's 56x56 to 14x14 layers
1.5-1.7x faster than im2col + GEMM. Other convolutions with a constant
filter run their GEMM on the packed-weights kernel (`pack_weights`), the
filter packed once the same way.

A 2-D f32 GEMM of at most PACKED_MAX_ROWS rows whose B is a constant
global (a model's weights, possibly through a transposed view) calls the
shim's packed-weights kernel instead (`pack_weights`): B is packed into the
kernel's panel layout once, at its first call, not on every call as BLAS
does; about twice OpenBLAS's speed on the mlp's and the transformer's
layers (32x512x256: 33 -> 18 us; 128x384x128: 51 -> 31 us).

Runs after bufferization. A transposed operand produced by linalg.transpose
into a temporary buffer is replaced by a memref.transpose view of its source:
the shim sees the view's strides and passes a BLAS transpose flag, so the
transpose is never materialised. Operands with other layouts are left alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .. import ir
from ..errors import InputError
from ..kernels import choice
from .base import PythonPass, register_pass
from .call_folding import (CONV, CONV_BIAS_CALL, buffer_aliases, first_toucher, match_epilogue,
                           match_gemm_bias, match_padding, position, redirect_after_add,
                           uses_any, zero_fill_before)

SHIM_PREFIX = "mlirc_"
# the shim's entry points (a module calling one needs the shim loaded)
SHIM_FUNCTIONS = ("mlirc_gemm_", "mlirc_conv2d_", "mlirc_maxpool2d_", "mlirc_sum_planes_",
                  "_mlir_memref_to_llvm_")  # the llvm stage's allocations, with BLAS on
_OPS = {"linalg.matmul": 2, "linalg.batch_matmul": 3}
# The packed-weights kernel: rows of A it is meant for (it re-reads A once per
# 32 columns of B) and the fewest columns of B worth a panel of 32.
PACKED_MAX_ROWS = 512
PACKED_MIN_COLUMNS = 32
PACKING_SLOT_PREFIX = "__mlirc_packed_weights_"
# The kernel each call runs (mlirc/kernels/choice.py), on the call for all to see.
KERNEL_ATTR = "mlirc.kernel"
# A convolution call's site ("conv2d:N") and problem (ConvShape.key()): what
# the tuner measures and its database is keyed by.
SITE_ATTR = "mlirc.site"
SHAPE_ATTR = "mlirc.problem"
# A convolution with a dynamic batch gets the kernel for one image and, where
# it differs, the kernel for this many, chosen by the batch at run time.
DYNAMIC_BATCH_MANY = 8


def memref_info(value, dynamic: bool = False) -> tuple[int, str, bool] | None:
    """(rank, element type, identity layout) of a memref value, else None;
    with `dynamic`, sizes known only at run time (`?`) are accepted too."""
    size = r"(?:\d+|\?)" if dynamic else r"\d+"
    match = re.fullmatch(rf"memref<((?:{size}x)+)(f32|f64)(, .*)?>", str(value.type))
    if not match:
        return None
    return match.group(1).count("x"), match.group(2), match.group(3) is None


def window_pair(op, key: str) -> tuple[int, int]:
    """The (h, w) of a convolution's or pooling's `strides` or `dilations`
    (dense<2> or dense<[2, 1]>)."""
    # from the attribute, not from str(op): printing one op numbers the
    # values of its whole function (quadratic over a model's convolutions)
    values = [int(x) for x in ir.DenseIntElementsAttr(op.attributes[key])]
    return values[0], values[-1]


def _packs(operands) -> bool:
    """Whether a matmul's shapes suit the packed-weights kernel (rows known
    only at run time, a dynamic batch, are taken to be few)."""
    rows = str(operands[0].type)[7:].split("x")[0]
    columns = str(operands[1].type)[7:].split("x")[1]
    return (rows == "?" or int(rows) <= PACKED_MAX_ROWS) and \
        columns != "?" and int(columns) >= PACKED_MIN_COLUMNS


def _is_constant(value, constants: set[str]) -> bool:
    """Whether `value` is a constant global, or a transposed view or a
    subview of one (a subview's offsets are static: the same elements on
    every call)."""
    if ir.defining_op_name(value) == "memref.transpose":
        value = value.owner.operands[0]
    elif ir.defining_op_name(value) == "memref.subview" and \
            len(value.owner.operands) == 1:  # no dynamic offsets, sizes or strides
        value = value.owner.operands[0]
    if ir.defining_op_name(value) != "memref.get_global":
        return False
    return ir.FlatSymbolRefAttr(value.owner.attributes["name"]).value in constants


def _slot_operand(module_body, slots: list):
    """A new zero-initialised i64 global for one call site, where the shim
    keeps a constant operand's packed copy (B's panels, a transformed conv
    filter: kernels/src/gemm.c), and its (value, type) as a call operand here."""
    name = f"{PACKING_SLOT_PREFIX}{len(slots)}"
    with ir.InsertionPoint.at_block_begin(module_body):
        ir.dialects.memref.GlobalOp(
            sym_name=name, type_=ir.TypeAttr.get(ir.Type.parse("memref<1xi64>")),
            sym_visibility="private",
            initial_value=ir.Attribute.parse("dense<0> : tensor<1xi64>"))
    slot = ir.dialects.memref.GetGlobalOp(ir.Type.parse("memref<1xi64>"), name)
    slots.append(slot)
    slot_type = generic_memref_type(1, "i64")
    return ir.dialects.memref.CastOp(slot_type, slot.result).result, slot_type


def declared_functions(module_body) -> set[str]:
    """The names of the module's functions (the shim's declarations among them)."""
    return {ir.StringAttr(op.attributes["sym_name"]).value
            for op in module_body.operations if op.operation.name == "func.func"}


def declare_shim_function(module_body, callee: str, types) -> None:
    """A private declaration of the shim function `callee`."""
    with ir.InsertionPoint.at_block_begin(module_body):
        ir.dialects.func.FuncOp(callee, ir.FunctionType.get(list(types), []),
                                visibility="private")


def generic_memref_type(rank: int, element: str):
    dims = ",".join(["?"] * rank)
    return ir.Type.parse(f"memref<{'x'.join(['?'] * rank)}x{element}, "
                         f"strided<[{dims}], offset: ?>>")


@register_pass
@dataclass(frozen=True)
class BlasOffload(PythonPass):
    name = "mlirc-blas-offload"
    description = "Replace matmul, batch_matmul and NCHW conv2d on memrefs with BLAS calls"
    fold_transposes: bool = True
    fold_into_conv: bool = True
    pack_weights: bool = True
    fold_into_gemm: bool = True
    winograd: bool = True
    # per-op kernel choices: JSON text or a JSON file (kernels/choice.py)
    kernels: str = ""

    def run(self, module_op) -> None:
        overrides = choice.KernelOverrides(self.kernels)
        counts = {"conv2d": 0, "gemm": 0}
        memref, func = ir.dialects.memref, ir.dialects.func
        module_body = module_op.regions[0].blocks[0]
        declared = declared_functions(module_body)
        candidates = [op for op in ir.walk_ops(module_op) if op.name in _OPS or op.name == CONV]
        globals_ = [op for op in module_body.operations if op.operation.name == "memref.global"]
        constants = {ir.StringAttr(op.attributes["sym_name"]).value
                     for op in globals_ if "constant" in op.attributes}
        # one packing slot per packed-weights call site, numbered after any
        # from an earlier run of the pass
        slots = [op for op in globals_ if ir.StringAttr(op.attributes["sym_name"]).value
                 .startswith(PACKING_SLOT_PREFIX)]
        with module_op.context, ir.Location.unknown():
            for op in candidates:
                kind = "conv2d" if op.name == CONV else "gemm"
                override, strict = overrides.get(kind, counts[kind])
                site = f"{kind}:{counts[kind]}"
                counts[kind] += 1
                if kind == "conv2d":
                    self._offload_conv(op, module_body, declared, constants, slots,
                                       (override, strict, overrides.tuned), site)
                else:
                    self._offload_gemm(op, module_body, declared, constants, slots,
                                       (override, strict), site)

    def _offload_gemm(self, op, module_body, declared: set[str], constants: set[str],
                      slots: list, override: tuple[str | None, bool], site: str) -> None:
        memref, func = ir.dialects.memref, ir.dialects.func
        rank = _OPS[op.name]
        infos = [memref_info(v, dynamic=True) for v in op.operands]
        # Only contiguous row-major operands: the shim reads BLAS layouts off
        # the strides, which other layouts would break.
        if len(op.operands) != 3 or any(i is None or i[0] != rank or not i[2] for i in infos) \
                or len({i[1] for i in infos}) != 1 or "indexing_maps" in op.get_asm(use_local_scope=True):
            return
        element = infos[0][1]
        operands = list(op.operands)
        zero_fill = zero_fill_before(op, operands[2])
        i64 = ir.IntegerType.get_signless(64)
        erase = [op] + ([zero_fill] if zero_fill is not None else [])
        with ir.InsertionPoint(op), op.location:
            if self.fold_transposes:  # views made here are transposed row-major
                operands[:2] = [self._fold_transpose(v, rank, op) for v in operands[:2]]
            callee = f"{SHIM_PREFIX}gemm_{element}{'_batched' if rank == 3 else ''}"
            generic = generic_memref_type(rank, element)
            packable = rank == 2 and element == "f32" and _packs(op.operands) and \
                _is_constant(operands[1], constants)
            kernel = choice.choose_gemm(self.pack_weights and packable)
            wanted, strict = override
            if wanted == "packed" and not packable:
                if strict:
                    raise InputError(f"kernel choices: {site} cannot run 'packed' (it needs "
                                     "a 2-D f32 GEMM with constant weights)")
            elif wanted is not None:
                kernel = wanted
            packed = kernel == "packed"
            epilogue = match_gemm_bias(op, list(op.operands) + operands[:2]) \
                if packed and self.fold_into_gemm else None
            if epilogue is not None and not epilogue.through_output:
                operands[2] = epilogue.target
            casts = [memref.CastOp(generic, v).result for v in operands]
            if epilogue is not None:
                # C = act(A*B + bias), written to the add's output or to C
                callee = f"{SHIM_PREFIX}gemm_f32_packed_bias"
                bias_type = generic_memref_type(1, "f32")
                relu = ir.dialects.arith.ConstantOp(i64, int(epilogue.relu is not None))
                arguments = casts + [memref.CastOp(bias_type, epilogue.bias).result, relu.result]
                types = [generic] * 3 + [bias_type, i64]
                erase = [op] + epilogue.operations + \
                    ([epilogue.initializer] if epilogue.erase_initializer else [])
            else:
                # accumulate = 0: C = A*B, the zero fill before it goes
                accumulate = ir.dialects.arith.ConstantOp(i64, int(zero_fill is None))
                arguments = casts + [accumulate.result]
                types = [generic] * 3 + [i64]
                if packed:
                    callee = f"{SHIM_PREFIX}gemm_f32_packed"
            if packed:
                slot, slot_type = _slot_operand(module_body, slots)
                arguments.append(slot)
                types.append(slot_type)
            call = func.CallOp([], ir.FlatSymbolRefAttr.get(callee), arguments)
            call.attributes[KERNEL_ATTR] = ir.StringAttr.get(kernel)
        if epilogue is not None and epilogue.through_output and \
                not redirect_after_add(epilogue, op.operands[2]):
            with ir.InsertionPoint(epilogue.add), epilogue.add.location:
                memref.CopyOp(op.operands[2], epilogue.target)
        if callee not in declared:
            declare_shim_function(module_body, callee, types)
            declared.add(callee)
        for dead in erase:
            dead.erase()

    def _offload_conv(self, op, module_body, declared: set[str], constants: set[str],
                      slots: list, override: tuple, site: str) -> None:
        """`override`: (the user's kernel or None, whether it must run, the
        tuned kernel of a ConvShape or None)."""
        infos = [memref_info(v, dynamic=True) for v in op.operands]
        # The input and output may be views whose images are row-major but
        # not packed one after the other (ShuffleNet's channel split, a group
        # of a grouped convolution): the kernels read the offset and image
        # stride from the descriptor; the filter must be contiguous.
        image, filter_, output = op.operands
        if any(i is None or i[0] != 4 or i[1] != "f32" for i in infos) or \
                not images_row_major(image) or not images_row_major(output) or \
                not (infos[1][2] or images_row_major(filter_, whole=True)) or \
                "?" in str(filter_.type):
            return  # a dynamic batch is fine: the kernels read it from the descriptor
        (stride_h, stride_w), (dilation_h, dilation_w) = window_pair(op, "strides"), \
            window_pair(op, "dilations")
        # an epilogue (bias, residual, ReLU) folds only into a whole buffer
        epilogue = match_epilogue(op) if self.fold_into_conv and infos[2][2] else None
        padding = match_padding(op, epilogue) if self.fold_into_conv else None
        if padding is not None and not images_row_major(padding.source):
            padding = None  # the kernel reads the padded copy instead
        memref, func, arith = ir.dialects.memref, ir.dialects.func, ir.dialects.arith
        generic = generic_memref_type(4, "f32")
        i64 = ir.IntegerType.get_signless(64)
        with ir.InsertionPoint(op), op.location:
            tensors = list(op.operands)
            if padding is not None:
                tensors[0] = padding.source
            if epilogue is not None and epilogue.target != tensors[2]:
                epilogue.target.owner.operation.move_before(op)  # its allocation
                tensors[2] = epilogue.target
            operands = [memref.CastOp(generic, v).result for v in tensors]
            scalars = [stride_h, stride_w, dilation_h, dilation_w,
                       padding.pad_h if padding else 0, padding.pad_w if padding else 0]
            callee, types = "mlirc_conv2d_nchw_f32", [generic] * 3
            if epilogue is not None:
                # out = act(conv + bias[f] [+ residual])
                bias_type = generic_memref_type(1, "f32")
                operands.append(memref.CastOp(bias_type, epilogue.bias_vector).result)
                types = [generic] * 3 + [bias_type]
                callee = CONV_BIAS_CALL
                if epilogue.residual is not None:
                    operands.append(memref.CastOp(generic, epilogue.residual_value).result)
                    types.append(generic)
                    callee = "mlirc_conv2d_nchw_bias_residual_f32"
                scalars.append(int(epilogue.relu is not None))
            # the kernel: chosen here, run by the library as it is told; with a
            # dynamic batch, one for few images and one for many, picked by
            # the batch at run time (an scf.if between two calls)
            constant = _is_constant(tensors[1], constants)
            choose = lambda images=None: self._conv_kernel(  # noqa: E731
                tensors, (stride_h, stride_w), (dilation_h, dilation_w), padding, constant,
                override, site, images)
            kernel, many_images, threshold = choose(), None, None
            if "?" in str(tensors[0].type).split("x")[0] and override[0] is None:
                many = choose(DYNAMIC_BATCH_MANY)
                if many != kernel:
                    threshold = next(n for n in range(2, DYNAMIC_BATCH_MANY + 1)
                                     if choose(n) == many)
                    many_images = many
            types = types + [i64] * (len(scalars) + 1) + [generic_memref_type(1, "i64")]

            def conv_call(chosen: str) -> None:
                values = operands + [arith.ConstantOp(i64, v).result
                                     for v in scalars + [choice.CONV_KERNELS[chosen]]]
                slot, _ = _slot_operand(module_body, slots)
                call = func.CallOp([], ir.FlatSymbolRefAttr.get(callee), values + [slot])
                call.attributes[KERNEL_ATTR] = ir.StringAttr.get(chosen)
                call.attributes[SITE_ATTR] = ir.StringAttr.get(site)
                call.attributes[SHAPE_ATTR] = ir.StringAttr.get(
                    self._conv_shape(tensors, (stride_h, stride_w), (dilation_h, dilation_w),
                                     padding, constant).key())

            if many_images is None:
                conv_call(kernel)
            else:
                index = ir.IndexType.get()
                batch = memref.DimOp(tensors[0], arith.ConstantOp(index, 0).result).result
                many = arith.CmpIOp(arith.CmpIPredicate.sge, batch,
                                    arith.ConstantOp(index, threshold).result).result
                branch = ir.dialects.scf.IfOp(many, [], has_else=True)
                with ir.InsertionPoint(branch.then_block):
                    conv_call(many_images)
                    ir.dialects.scf.YieldOp([])
                with ir.InsertionPoint(branch.else_block):
                    conv_call(kernel)
                    ir.dialects.scf.YieldOp([])
        if callee not in declared:
            declare_shim_function(module_body, callee, types)
            declared.add(callee)
        for folded in [op] + (epilogue.operations if epilogue else []) + \
                (padding.operations if padding else []):
            folded.erase()

    def _conv_kernel(self, tensors, stride, dilation, padding, constant: bool,
                     override: tuple, site: str, images: int | None = None) -> str:
        """The kernel of a convolution (kernels/choice.py), or the user's;
        `images`: the batch to choose for when it is dynamic."""
        shape = self._conv_shape(tensors, stride, dilation, padding, constant, images)
        wanted, strict, tuned = override
        if wanted is None:
            wanted = tuned(shape)  # measured by `mlirc tune` (not strict: a later build may differ)
        chosen = choice.choose_conv(shape, constant, self.winograd, self.pack_weights)
        if wanted is None:
            return chosen
        if wanted in choice.NEEDS_CONSTANT_FILTER and not constant:
            problem = "its filter is not a constant"
        elif not choice.conv_fits(wanted, shape):
            problem = f"this CPU's build does not take its shape ({shape})"
        else:
            return wanted
        if strict:
            raise InputError(f"kernel choices: {site} cannot run {wanted!r}: {problem}")
        return chosen

    @staticmethod
    def _conv_shape(tensors, stride, dilation, padding, constant: bool,
                    images: int | None = None) -> "choice.ConvShape":
        source, weights = (_static_shape(v) for v in tensors[:2])
        return choice.ConvShape(
            images=images or source[0], channels=source[1], in_h=source[2], in_w=source[3],
            filters=weights[0], kh=weights[2], kw=weights[3], stride=stride, dilation=dilation,
            padding=(padding.pad_h, padding.pad_w) if padding else (0, 0),
            constant_filter=constant)

    @staticmethod
    def _fold_transpose(value, rank: int, reader):
        """`value` itself, or a transposed view of the buffer it was copied
        from: the linalg.transpose into `value` that `reader` (the GEMM)
        sees, when nothing else reads what that transpose wrote. The buffer
        may be written by other transposes before and after (bufferization
        reuses one buffer for same-shaped temporaries)."""
        if ir.defining_op_name(value) != "memref.alloc":
            return value
        block = list(reader.block.operations)
        aliases = buffer_aliases(block, value)
        at = position(block, reader)
        transpose = first_toucher(reversed(block[:at]), aliases)
        if transpose is None or transpose.name != "linalg.transpose" or \
                transpose.operands[1] != value:
            return value
        for later in block[position(block, transpose) + 1:]:
            later = later.operation
            if later == reader or not uses_any(later, aliases):
                continue
            if later.name in ("linalg.transpose", "memref.dealloc") and \
                    list(later.operands)[-1] == value:
                break  # overwritten or freed: nothing after reads this transpose
            return value  # another reader needs the materialised transpose
        swap = list(range(rank - 2)) + [rank - 1, rank - 2]
        permutation = list(ir.DenseI64ArrayAttr(transpose.attributes["permutation"]))
        source = transpose.operands[0]
        info = memref_info(source)
        if permutation != swap or info is None or not info[2]:
            return value
        view_map = ir.AffineMap.get_permutation(swap)
        shape = [int(d) for d in str(value.type)[7:].split("x")[:-1]]
        source_strides = _row_major_strides([shape[i] for i in swap])
        strides = [source_strides[i] for i in swap]
        view_type = ir.Type.parse(
            f"memref<{'x'.join(map(str, shape))}x{info[1]}, strided<{strides}>>")
        view = ir.dialects.memref.TransposeOp(view_type, source, view_map).result
        transpose.erase()
        return view


def _static_shape(value) -> list[int]:
    """A memref's sizes; a dynamic batch (dim 0) counts as 1 (kernel choice)."""
    return [1 if d == "?" and index == 0 else int(d)
            for index, d in enumerate(str(value.type)[7:].split(",")[0].split("x")[:-1])]


def static_but_batch(value) -> bool:
    """Whether a memref's sizes are all static but perhaps the first."""
    return "?" not in str(value.type)[7:].split(",")[0].split("x", 1)[-1]


def images_row_major(value, whole: bool = False) -> bool:
    """Whether each image of a rank-4 [N, C, H, W] memref is row-major and
    contiguous (strides [any, H*W, W, 1]), whatever its offset and image
    stride: what the convolution kernels read; `whole`: the images are also
    packed one after the other (a contiguous view)."""
    memref_type = ir.MemRefType(value.type)
    layout = strides_and_offset(memref_type)
    if memref_type.rank != 4 or any(memref_type.is_dynamic_dim(d) for d in (1, 2, 3)) or \
            layout is None:
        return False
    strides = layout[0]
    if whole:
        return not memref_type.is_dynamic_dim(0) and \
            strides == _row_major_strides(list(memref_type.shape))
    return strides[1:] == _row_major_strides(list(memref_type.shape)[1:])


def strides_and_offset(memref_type) -> tuple[list[int], int] | None:
    """A memref type's strides and offset (dynamic ones as MLIR's sentinel),
    or None for a layout that is not strided."""
    try:
        return memref_type.get_strides_and_offset()
    except (ValueError, RuntimeError):
        return None


def _row_major_strides(shape: list[int]) -> list[int]:
    strides, running = [], 1
    for size in reversed(shape):
        strides.insert(0, running)
        running *= size
    return strides


def uses_blas(module) -> bool:
    """Whether a module calls the GEMM shim (so its runtime must be loaded)."""
    return any(op.name in ("func.func", "llvm.func") and
               any(f in ir.StringAttr(op.attributes["sym_name"]).value for f in SHIM_FUNCTIONS)
               for op in (o.operation for o in module.body.operations))
