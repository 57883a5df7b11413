"""Write a residual convolution's output over its residual.

blas-offload folds ResNet's `relu(conv(x) + bias + shortcut)` into one shim
call that reads the shortcut and writes a fresh buffer. The shortcut (the
block's input) is usually dead after that call: mlirc-free-after-last-use
puts its dealloc right behind it. The output then goes into the shortcut's
buffer instead: the call overwrites lines it has just read, already in the
cache, where a fresh buffer's lines come from memory first, and the call
works in one buffer fewer.

The shim reads each residual element before it writes the output element at
the same place, in one task, on every path (its BLAS path computes into a
scratch product when the two are one buffer), so the call is correct in
place. The rewrite needs, in one block:

    %out = memref.alloc() : T                  (nothing else uses %out before the call)
    call @mlirc_conv2d_nchw_bias_residual_f32(%in, %w, view(%out), %b, view(%res), ...)
    memref.dealloc %res                        (right after: the call was its last use)

with %res a memref.alloc of the same type T that the input does not read;
uses of %out become uses of %res, and the dealloc goes (%out's own dealloc,
later, frees %res).
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import ir
from .base import PythonPass, register_pass
from .call_folding import VIEWS, position
from .early_free import root_allocation

RESIDUAL_CALL = "mlirc_conv2d_nchw_bias_residual_f32"
# the call's operands: input, filter, output, bias, residual, ...
INPUT, OUTPUT, RESIDUAL = 0, 2, 4


def _callee(op) -> str:
    if op.name != "func.call":
        return ""
    return ir.FlatSymbolRefAttr(op.attributes["callee"]).value


def _same(first, second) -> bool:
    """Whether two operations (either may be None) are the same one."""
    return first is not None and second is not None and first == second


def _used_before(allocation, call, operations) -> bool:
    """Whether anything between `allocation` and `call` uses the buffer other
    than through views that only `call` reads."""
    start, end = position(operations, allocation), position(operations, call)
    views = set()
    for op in operations[start + 1:end]:
        if not any(operand == allocation.results[0] or operand in views
                   for operand in op.operands):
            continue
        if op.name in VIEWS and all(use.owner.operation == call for use in op.results[0].uses):
            views.add(op.results[0])
            continue
        return True
    return False


def _write_over_residual(call) -> bool:
    output = root_allocation(call.operands[OUTPUT])
    residual = root_allocation(call.operands[RESIDUAL])
    if output is None or residual is None or _same(output, residual):
        return False
    block = call.block
    if not (output.block == block and residual.block == block):
        return False
    if output.results[0].type != residual.results[0].type:
        return False
    if _same(root_allocation(call.operands[INPUT]), residual):
        return False  # a 1x1 layer reads its input in place while it writes
    operations = [op.operation for op in block.operations]
    index = position(operations, call)
    following = operations[index + 1] if index + 1 < len(operations) else None
    if following is None or following.name != "memref.dealloc" or \
            not _same(root_allocation(following.operands[0]), residual):
        return False
    if _used_before(output, call, operations):
        return False
    output.results[0].replace_all_uses_with(residual.results[0])
    output.erase()
    following.erase()
    return True


@register_pass
@dataclass(frozen=True)
class ResidualInPlace(PythonPass):
    name = "mlirc-residual-in-place"
    description = ("Write a residual convolution call's output into its residual's buffer "
                   "when the call is that buffer's last use")

    def run(self, module_op) -> None:
        calls = [op for op in ir.walk_ops(module_op) if _callee(op) == RESIDUAL_CALL]
        for call in calls:
            _write_over_residual(call)
