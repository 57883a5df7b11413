"""Which operations around a convolution its BLAS-shim call can absorb.

After bufferization torch-mlir's convolution with a bias reads

    linalg.broadcast ins(%bias) outs(%out) dimensions = [0, 2, 3]
    linalg.conv_2d_nchw_fchw ins(%in, %filter) outs(%out)
    linalg.generic ins(%out, %shortcut) outs(%out) { addf }      (ResNet blocks)
    linalg.generic ins(%out) outs(%out) { x > 0 ? x : 0 }         (ReLU)

and the shim computes all of it in one pass over the output. The searches
stay in the convolution's block and give up at the first operation that may
touch the output (or the residual) in any other way, or that hides a region
that is not a linalg payload.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import ir

_VIEWS = ("memref.cast", "memref.subview", "memref.reinterpret_cast", "memref.expand_shape",
          "memref.collapse_shape", "memref.transpose")


@dataclass
class ConvEpilogue:
    bias: object                 # the linalg.broadcast of a constant per-channel vector
    residual: object = None      # the in-place linalg.generic out = out + residual
    relu: object = None          # the in-place linalg.generic out = relu(out)
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
    index = _position(block, conv)
    aliases = _aliases(block, output)
    bias = _first_toucher(reversed(block[:index]), aliases)
    if bias is None or not _is_channel_bias(bias, output):
        return None
    epilogue = ConvEpilogue(bias)
    after = block[index + 1:]
    following = _first_toucher(after, aliases)
    residual = _residual_operand(following, output) if following is not None else None
    if residual is not None and residual not in aliases:
        # The shim reads the residual during the convolution, so nothing
        # between the two may touch it.
        position = _position(after, following)
        if _first_toucher(after[:position], _aliases(block, residual)) is None and \
                not any(len(o.operation.regions) for o in after[:position]):
            epilogue.residual, epilogue.residual_value = following, residual
            after = after[position + 1:]
            following = _first_toucher(after, aliases)
    if following is not None and _is_inplace_relu(following, output):
        epilogue.relu = following
    return epilogue


def _position(operations, operation) -> int:
    return next(i for i, o in enumerate(operations) if o.operation == operation)


def _aliases(block, value) -> list:
    """`value` and the views of it made in `block`."""
    aliases = [value]
    for candidate in block:
        if candidate.operation.name in _VIEWS and candidate.operation.operands[0] in aliases:
            aliases.append(candidate.operation.results[0])
    return aliases


def _first_toucher(operations, aliases):
    """The first of `operations` that uses one of `aliases` (None when an
    operation with regions that are not a linalg payload comes first)."""
    for candidate in operations:
        candidate = candidate.operation
        if any(operand in aliases for operand in candidate.operands):
            return candidate
        if len(candidate.regions) and not candidate.name.startswith("linalg."):
            return None
    return None


def _defining_op_name(value) -> str:
    """The name of the operation defining `value` ('' for a block argument).
    Through .operation: some op views' `name` is an attribute (get_global's)."""
    owner = value.owner
    return owner.operation.name if hasattr(owner, "operation") else ""


def _is_channel_bias(op, output) -> bool:
    if op.name != "linalg.broadcast" or len(op.operands) != 2 or op.operands[1] != output:
        return False
    source = op.operands[0]
    return (str(source.type) == f"memref<{str(output.type).split('x')[1]}xf32>"
            and _defining_op_name(source) == "memref.get_global"
            and "dimensions = [0, 2, 3]" in str(op))


def _is_zero(value) -> bool:
    if _defining_op_name(value) != "arith.constant":
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
    if [o.operation.name for o in body] != ["arith.addf", "linalg.yield"]:
        return None
    x, y = body[0].operands
    if not ((x == a and y == b) or (x == b and y == a)) or body[1].operands[0] != body[0].result:
        return None
    other = op.operands[1] if op.operands[0] == output else op.operands[0]
    return other if other.type == output.type else None


def _is_inplace_relu(op, output) -> bool:
    """out = x > 0 ? x : 0 (cmpf ugt + select) or maximumf(x, 0), in place on
    `output`: NaN passes through in both, as in the shim."""
    matched = _elementwise_payload(op, 1)
    if matched is None or list(op.operands) != [output, output]:
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
