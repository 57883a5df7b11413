"""Which operations around a convolution or a GEMM its BLAS-shim call can
absorb.

A GEMM's output is zero-filled first (`linalg.matmul` accumulates); the call
overwrites it instead (beta = 0), one pass over the output fewer.

After bufferization torch-mlir's padded convolution with a bias reads

    %padded = memref.alloc()                                     (the input, padded)
    linalg.fill ins(%zero) outs(%padded)
    memref.copy %input, memref.subview %padded[0, 0, ph, pw] [...] [1, 1, 1, 1]
    linalg.broadcast ins(%bias) outs(%out) dimensions = [0, 2, 3]
    linalg.conv_2d_nchw_fchw ins(%padded, %filter) outs(%out)
    linalg.generic ins(%out, %shortcut) outs(%out) { addf }      (ResNet blocks)
    linalg.generic ins(%out) outs(%out or %fresh) { x > 0 ? x : 0 }   (ReLU)

and the shim computes all of it in one pass over the output. The searches
stay in the convolution's block and give up at the first operation that may
touch the output (or the residual) in any other way, or that hides a region
that is not a linalg payload.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .. import ir

CONV = "linalg.conv_2d_nchw_fchw"
# blas-offload's call for relu(conv + bias): a pool after it may fold in
CONV_BIAS_CALL = "mlirc_conv2d_nchw_bias_f32"

# operations whose result is their first operand's memory seen another way
VIEWS = ("memref.cast", "memref.subview", "memref.reinterpret_cast", "memref.expand_shape",
         "memref.collapse_shape", "memref.transpose")


@dataclass
class ConvEpilogue:
    bias: object                 # the linalg.broadcast of a constant per-channel vector
    target: object               # where the call writes: the output, or the ReLU's buffer
    residual: object = None      # the in-place linalg.generic out = out + residual
    relu: object = None          # the linalg.generic target = relu(out)
    residual_value: object = None

    @property
    def bias_vector(self):
        return self.bias.operands[0]

    @property
    def operations(self) -> list:
        return [op for op in (self.bias, self.residual, self.relu) if op is not None]


def match_epilogue(conv) -> ConvEpilogue | None:
    """The bias broadcast (required: the shim then overwrites the output) and
    the residual add and ReLU that follow `conv`, or None."""
    output = conv.operands[2]
    block = list(conv.block.operations)
    index = position(block, conv)
    aliases = buffer_aliases(block, output)
    bias = first_toucher(reversed(block[:index]), aliases)
    if bias is None or not _is_channel_bias(bias, output):
        return None
    epilogue = ConvEpilogue(bias, target=output)
    after = block[index + 1:]
    following = first_toucher(after, aliases)
    residual = _residual_operand(following, output) if following is not None else None
    if residual is not None and residual not in aliases:
        # The shim reads the residual during the convolution, so nothing
        # between the two may touch it.
        at = position(after, following)
        if first_toucher(after[:at], buffer_aliases(block, residual)) is None and \
                not any(len(o.operation.regions) for o in after[:at]):
            epilogue.residual, epilogue.residual_value = following, residual
            after = after[at + 1:]
            following = first_toucher(after, aliases)
    if following is not None and _is_relu(following, output, output):
        epilogue.relu = following
    elif following is not None and _is_relu_into_fresh_buffer(following, output, block, index):
        # The call writes relu(...) straight into the ReLU's buffer; the
        # pre-ReLU values in `output` are never read.
        epilogue.relu, epilogue.target = following, following.operands[1]
    return epilogue


def _is_relu_into_fresh_buffer(relu, output, block, conv_index) -> bool:
    """A ReLU from `output` into a buffer allocated between the convolution
    and the ReLU and not used before it, after which `output` is dead (only
    overwritten, deallocated or not used again). The caller moves the
    allocation before the convolution."""
    target = relu.operands[1] if len(relu.operands) == 2 else None
    if target is None or target.type != output.type or \
            not _is_relu(relu, output, target) or \
            ir.defining_op_name(output) != "memref.alloc" or \
            ir.defining_op_name(target) != "memref.alloc":
        return False
    allocation = target.owner.operation
    start, relu_index = position(block, allocation), position(block, relu)
    if not conv_index < start < relu_index or \
            first_toucher(block[start + 1:relu_index], buffer_aliases(block, target)) is not None:
        return False
    later = first_toucher(block[relu_index + 1:], buffer_aliases(block, output))
    if later is None:
        # Nothing reads it again in this block; a use elsewhere (or a region
        # that hides one) keeps the ReLU.
        return all(use.owner.operation.block == relu.block for use in output.uses) and \
            not any(_hides_uses(o) for o in block[relu_index + 1:])
    return later.name == "memref.dealloc" or (
        later.name in ("linalg.fill", "linalg.broadcast")
        and later.operands[len(later.operands) - 1] == output
        and all(operand != output for operand in list(later.operands)[:-1]))


@dataclass
class PaddedInput:
    source: object               # the unpadded input
    pad_h: int
    pad_w: int
    operations: list             # the copy, subview, fill, alloc (and dealloc) to erase


def match_padding(conv, epilogue: ConvEpilogue | None = None,
                  pad_value=None) -> PaddedInput | None:
    """The zero padding of `conv`'s input, when the padded buffer exists only
    for it: allocated, zero-filled, the source copied into its interior,
    read by the convolution (and deallocated). `conv` may be another
    consumer, a pooling, whose padding `pad_value` (a test of the fill's
    value, zero by default) recognises.

    The source may be the convolution's own output buffer when `epilogue`
    (folded into the same call) starts with the bias broadcast that
    overwrites it: bufferization reuses a block's buffer that way in ResNet
    (copy %out into the padding, broadcast the bias into %out, convolve).
    The shim reads all of an image's input before it writes that image's
    output on every path that pads (kernels/src/conv.c), so the call may read and
    write the one buffer."""
    padded = conv.operands[0]
    if ir.defining_op_name(padded) != "memref.alloc":
        return None
    by_name: dict[str, list] = {}
    for use in padded.uses:
        by_name.setdefault(use.owner.operation.name, []).append(use.owner.operation)
    if set(by_name) - {"memref.dealloc"} != {"linalg.fill", "memref.subview", conv.name} or \
            any(len(ops) != 1 for ops in by_name.values()):
        return None
    fill, subview = by_name["linalg.fill"][0], by_name["memref.subview"][0]
    if list(fill.operands)[1:] != [padded] or not (pad_value or _is_zero)(fill.operands[0]):
        return None
    view_users = [use.owner.operation for use in subview.results[0].uses]
    if len(view_users) != 1 or view_users[0].name != "memref.copy" or \
            view_users[0].operands[1] != subview.results[0]:
        return None
    copy = view_users[0]
    source = copy.operands[0]
    # a dynamic batch (?) stays a string: it must be the same one throughout
    batch = r"(\d+|\?)"
    layout = re.fullmatch(rf"memref<{batch}x(\d+)x(\d+)x(\d+)xf32, strided<\[\d+, \d+, \d+, 1\], "
                          r"offset: (\d+)>>", str(subview.results[0].type))
    source_shape = re.fullmatch(rf"memref<{batch}x(\d+)x(\d+)x(\d+)xf32>", str(source.type))
    padded_shape = re.fullmatch(rf"memref<{batch}x(\d+)x(\d+)x(\d+)xf32>", str(padded.type))
    if not (layout and source_shape and padded_shape):
        return None
    n, c, h, w = _sizes(source_shape.groups())
    pn, pc, ph_total, pw_total = _sizes(padded_shape.groups())
    pad_h, pad_w = (ph_total - h) // 2, (pw_total - w) // 2
    # Symmetric padding of H and W only: the view starts at [0, 0, pad_h, pad_w].
    if (pn, pc) != (n, c) or (ph_total - h) % 2 or (pw_total - w) % 2 or \
            tuple(_sizes(layout.groups()[:4])) != (n, c, h, w) or \
            int(layout.group(5)) != pad_h * pw_total + pad_w:
        return None
    # In order in one block, and nothing writes the source between the copy
    # and the convolution (the shim reads it then), the convolution included,
    # but for the operations the call absorbs.
    block = list(conv.block.operations)
    output = conv.operands[2]
    overwrites_source = epilogue is not None and source == output
    if source in buffer_aliases(block, output) and not overwrites_source:
        return None
    positions = [position(block, op) for op in (fill, subview, copy, conv)]
    if positions != sorted(positions):
        return None
    absorbed = [op.operation for op in epilogue.operations] if epilogue is not None else []
    between = [op for op in block[positions[2] + 1:positions[3]]
               if op.operation not in absorbed]
    if first_toucher(between, buffer_aliases(block, source)) is not None or \
            any(_hides_uses(o) for o in between):
        return None
    erase = [copy, subview, fill] + by_name.get("memref.dealloc", []) + [padded.owner.operation]
    return PaddedInput(source, pad_h, pad_w, erase)


def _sizes(groups) -> list:
    """Regex groups of sizes as ints, a dynamic '?' kept as it is."""
    return [group if group == "?" else int(group) for group in groups]


@dataclass
class GemmEpilogue:
    add: object                  # linalg.generic: target = C + bias[column]
    bias: object                 # the bias vector, a global
    target: object               # the add's output
    initializer: object          # the fill or copy that zeroed C
    erase_initializer: bool      # nothing else reads C's zeros
    relu: object = None          # linalg.generic: target = relu(target), in place
    through_output: bool = False  # the call writes C, not target (see match_gemm_bias)

    @property
    def operations(self) -> list:
        return [op for op in (self.add, self.relu) if op is not None]


def match_gemm_bias(matmul, inputs) -> GemmEpilogue | None:
    """For a matmul into a zeroed C followed by a bias add (and a ReLU): the
    call can compute act(A*B + bias) itself. It writes the add's output at
    once, unless that buffer is one of the matmul's inputs (bufferization
    reuses a dead input for the next layer's output) or is used before the
    add: then it writes C, and the add becomes a copy of C. C itself must be
    dead after the add (or be the add's output)."""
    output = matmul.operands[2]
    block = list(matmul.block.operations)
    index = position(block, matmul)
    aliases = buffer_aliases(block, output)
    zeroed = _zero_initializer(block[:index], output, block)
    if zeroed is None:
        return None
    initializer, read_between = zeroed
    after = block[index + 1:]
    add = first_toucher(after, aliases)
    if add is None or not _is_row_bias_add(add, output):
        return None
    bias, target = add.operands[1], add.operands[2]
    add_index = position(after, add)
    rest = after[add_index + 1:]
    target_aliases = buffer_aliases(block, target)
    if target not in aliases:
        later = first_toucher(rest, aliases)
        if later is not None and later.name != "memref.dealloc":
            return None
        if later is None and (any(_hides_uses(o) for o in rest) or
                              any(use.owner.operation.block != matmul.block
                                  for use in output.uses)):
            return None
    epilogue = GemmEpilogue(add, bias, target, initializer, not read_between)
    following = first_toucher(rest, target_aliases)
    if following is not None and _is_relu(following, target, target):
        epilogue.relu = following
    if target not in aliases:
        input_aliases = [a for value in inputs for a in buffer_aliases(block, value)]
        used_before = first_toucher(after[:add_index], target_aliases) is not None or \
            any(_hides_uses(o) for o in after[:add_index])
        epilogue.through_output = target in input_aliases or used_before
        if not epilogue.through_output and not _available_at(target, matmul, block):
            # the add's output is allocated after the matmul: allocate it
            # before, or write C and copy
            owner = target.owner
            if ir.defining_op_name(target) == "memref.alloc" and not owner.operands:
                owner.operation.move_before(matmul)
            else:
                epilogue.through_output = True
    return epilogue


def _available_at(value, op, block) -> bool:
    """Whether `value` is defined before `op` (or outside its block)."""
    owner = value.owner
    if not hasattr(owner, "operation") or owner.operation.block != op.block:
        return True  # a block argument, or defined in an enclosing block
    return position(block, owner.operation) < position(block, op)


def redirect_after_add(epilogue, output) -> bool:
    """When the folded call writes C (`output`) instead of the add's target:
    make the target's uses after the add read C instead, so no copy is
    needed. Only when both are plain allocations in one block, every later
    use is in that block, and C's deallocation comes after them (the
    target's deallocations stay). Returns whether it did."""
    block = list(epilogue.add.operation.block.operations)
    target = epilogue.target
    if ir.defining_op_name(target) != "memref.alloc" or \
            ir.defining_op_name(output) != "memref.alloc" or target.type != output.type:
        return False
    add_index = position(block, epilogue.add)
    later = []
    for use in target.uses:
        owner = use.owner.operation
        if owner.block != epilogue.add.operation.block:
            return False
        if owner.name in VIEWS:
            # a view used after the add would still read the old buffer
            if any(view_use.owner.operation.block != owner.block or
                   position(block, view_use.owner.operation) > add_index
                   for view_use in owner.results[0].uses):
                return False
            continue
        folded_relu = epilogue.relu is not None and owner == epilogue.relu.operation
        if position(block, owner) > add_index and owner.name != "memref.dealloc" and \
                not folded_relu:
            later.append((owner, use.operand_number))
    deallocs = [use.owner.operation for use in output.uses
                if use.owner.operation.name == "memref.dealloc"]
    if later and any(position(block, d) < max(position(block, o) for o, _ in later)
                     for d in deallocs):
        return False
    for owner, number in later:
        owner.operands[number] = output
    return True


def _zero_initializer(before, value, block):
    """(the last write of `value` before, when it makes `value` all zeros: a
    zero fill, or a copy from a buffer so zeroed; whether something read
    `value` after it), else None."""
    aliases = buffer_aliases(block, value)
    read_between = False
    for op in reversed(before):
        op = op.operation
        if _hides_uses(op):
            return None
        if not any(operand in aliases for operand in op.operands):
            continue
        if op.name == "linalg.fill" and list(op.operands)[1:] == [value] and \
                _is_zero(op.operands[0]):
            return op, read_between
        if op.name == "memref.copy" and op.operands[1] == value and \
                op.operands[0] not in aliases:
            source = position(before, op)
            zeroed = _zero_initializer(before[:source], op.operands[0], block)
            return (op, read_between) if zeroed is not None else None
        reads_only = (op.name == "memref.copy" and op.operands[1] not in aliases) or \
            (op.name.startswith("linalg.") and op.operands[len(op.operands) - 1] not in aliases)
        if not reads_only:
            return None
        read_between = True
    return None


def _is_row_bias_add(op, output) -> bool:
    """`op` is target = output + bias[column] with bias a global."""
    if op.name != "linalg.generic" or len(op.operands) != 3 or op.operands[0] != output or \
            op.operands[2].type != output.type:
        return False
    maps = [str(ir.AffineMapAttr(m).value) for m in ir.ArrayAttr(op.attributes["indexing_maps"])]
    if maps != ["(d0, d1) -> (d0, d1)", "(d0, d1) -> (d1)", "(d0, d1) -> (d0, d1)"]:
        return False
    bias = op.operands[1]
    if ir.defining_op_name(bias) != "memref.get_global" or \
            not re.fullmatch(r"memref<\d+xf32>", str(bias.type)):
        return False
    block = op.regions[0].blocks[0]
    return yields_sum(list(block.operations), *list(block.arguments)[:2])


def yields_sum(body, a, b) -> bool:
    """A linalg payload that is just yield a + b (either order)."""
    if [o.operation.name for o in body] != ["arith.addf", "linalg.yield"]:
        return False
    x, y = body[0].operands
    return ((x == a and y == b) or (x == b and y == a)) and body[1].operands[0] == body[0].result


def zero_fill_before(op, output):
    """The linalg.fill of zeros into exactly `output` that is the last thing
    to touch it before `op`, or None. `op` overwrites all of `output`, so the
    fill can go."""
    return fill_before(op, output, _is_zero)


def fill_before(op, output, is_value):
    """The linalg.fill of a value that `is_value` accepts into exactly
    `output`, when it is the last thing to touch `output` before `op`; or None."""
    block = list(op.block.operations)
    fill = first_toucher(reversed(block[:position(block, op)]), buffer_aliases(block, output))
    if fill is None or fill.name != "linalg.fill" or list(fill.operands)[1:] != [output] or \
            not is_value(fill.operands[0]):
        return None
    return fill


def uses_any(op, values) -> bool:
    """Whether `op` or an operation nested in it has one of `values` as operand."""
    if any(operand in values for operand in op.operands):
        return True
    return any(any(operand in values for operand in nested.operands)
               for nested in ir.walk_ops(op))


def position(operations, operation) -> int:
    return next(i for i, o in enumerate(operations) if o.operation == operation)


def buffer_aliases(block, value) -> list:
    """`value` and the views of it made in `block`."""
    aliases = [value]
    for candidate in block:
        if candidate.operation.name in VIEWS and candidate.operation.operands[0] in aliases:
            aliases.append(candidate.operation.results[0])
    return aliases


def _hides_uses(op) -> bool:
    """Whether `op` has regions that may use values without naming them as
    its operands (a linalg payload only sees its own block arguments)."""
    op = op.operation
    return bool(len(op.regions)) and not op.name.startswith("linalg.")


def first_toucher(operations, aliases):
    """The first of `operations` that uses one of `aliases` (None when an
    operation that hides uses comes first)."""
    for candidate in operations:
        candidate = candidate.operation
        if any(operand in aliases for operand in candidate.operands):
            return candidate
        if _hides_uses(candidate):
            return None
    return None


def _is_channel_bias(op, output) -> bool:
    if op.name != "linalg.broadcast" or len(op.operands) != 2 or op.operands[1] != output:
        return False
    source = op.operands[0]
    return (str(source.type) == f"memref<{str(output.type).split('x')[1]}xf32>"
            and ir.defining_op_name(source) == "memref.get_global"
            and list(ir.DenseI64ArrayAttr(op.attributes["dimensions"])) == [0, 2, 3])


def _is_zero(value) -> bool:
    if ir.defining_op_name(value) != "arith.constant":
        return False
    try:
        return ir.FloatAttr(value.owner.attributes["value"]).value == 0.0
    except ValueError:  # not a float constant
        return False


def _elementwise_payload(op, inputs: int):
    """(payload ops, input block arguments) of an all-identity linalg.generic
    with `inputs` inputs, or None."""
    if op.name != "linalg.generic" or len(op.operands) != inputs + 1:
        return None
    maps = [ir.AffineMapAttr(m).value for m in ir.ArrayAttr(op.attributes["indexing_maps"])]
    if any(m != ir.AffineMap.get_identity(m.n_dims) for m in maps):
        return None  # all-identity maps: elementwise (a reduction needs a projection)
    block = op.regions[0].blocks[0]
    return list(block.operations), list(block.arguments)[:inputs]


def _residual_operand(op, output):
    """R when `op` is out = out + R (either order) in place on `output`."""
    matched = _elementwise_payload(op, 2)
    if matched is None or op.operands[2] != output or output not in list(op.operands)[:2]:
        return None
    body, (a, b) = matched
    if not yields_sum(body, a, b):
        return None
    other = op.operands[1] if op.operands[0] == output else op.operands[0]
    return other if other.type == output.type else None


def _is_relu(op, source, target) -> bool:
    """`op` is target = x > 0 ? x : 0 (cmpf ugt + select) or maximumf(x, 0)
    with x from `source`: NaN passes through in both, as in the shim."""
    matched = _elementwise_payload(op, 1)
    if matched is None or list(op.operands) != [source, target]:
        return False
    body, (x,) = matched
    names = [o.operation.name for o in body]
    if names == ["arith.maximumf", "linalg.yield"]:
        return (body[0].operands[0] == x and _is_zero(body[0].operands[1])
                and body[1].operands[0] == body[0].result)
    if names != ["arith.cmpf", "arith.select", "linalg.yield"]:
        return False
    compare, select, yielded = body
    return (ir.IntegerAttr(compare.attributes["predicate"]).value == 9  # ugt
            and compare.operands[0] == x and _is_zero(compare.operands[1])
            and select.operands[0] == compare.result and select.operands[1] == x
            and _is_zero(select.operands[2]) and yielded.operands[0] == select.result)


def match_conv_before_pool(pool, initializer, padding: PaddedInput | None = None):
    """The shim call `relu(conv + bias)` (blas-offload's) whose output only
    `pool` reads, when the call may write the pooled output instead: the
    convolution's buffer is then never needed. `initializer` is the -inf
    fill of the pool's output, which goes with the pool. With `padding`
    (the pool's -inf padded copy of its input, which goes too) the copy is
    the one reader of the call's output."""
    source, output = pool.operands[0], pool.operands[2]
    reader = pool
    if padding is not None:
        source, reader = padding.source, padding.operations[0]  # the memref.copy
    if ir.defining_op_name(source) != "memref.alloc":
        return None
    block = list(pool.block.operations)
    aliases = buffer_aliases(block, source)
    call = first_toucher(reversed(block[:position(block, reader)]), aliases)
    if call is None or call.name != "func.call" or \
            ir.FlatSymbolRefAttr(call.attributes["callee"]).value != CONV_BIAS_CALL or \
            call.operands[2] not in aliases[1:] or \
            any(operand in aliases for i, operand in enumerate(call.operands) if i != 2):
        return None
    # Nothing but the call, the pool (or its padded copy) and deallocations
    # uses the buffer.
    readers = [use.owner.operation for alias in aliases for use in alias.uses]
    if any(op.name not in VIEWS + ("memref.dealloc", "func.call", reader.name) or
           (op.name == "func.call" and op != call) or (op.name == reader.name and op != reader)
           for op in readers):
        return None
    # The call writes the pooled output earlier than the pool did: the call
    # must not read it, nor anything in between touch it (but its -inf
    # fill, which goes).
    if any(operand in buffer_aliases(block, output) for operand in call.operands):
        return None
    start, end = position(block, call), position(block, pool)
    # ... and it must exist there (an allocation after the call can move)
    maker = output.owner.operation if ir.defining_op_name(output) else None
    if maker is not None and maker.block == pool.block and maker.name != "memref.alloc" and \
            position(block, maker) > start:
        return None
    folded = [initializer] + (padding.operations if padding is not None else [])
    between = [op for op in block[start + 1:end] if op.operation not in folded]
    if first_toucher(between, buffer_aliases(block, output)) is not None or \
            any(_hides_uses(op) for op in between):
        return None
    return call
