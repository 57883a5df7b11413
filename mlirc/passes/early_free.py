"""Free each buffer right after its last use.

MLIR's ownership-based deallocation (`buffer-deallocation-pipeline`) frees
the temporaries a block owns at the end of that block. A model's `main` is
one straight-line block, so every activation stayed allocated until the call
returned: ResNet-50 held 30 buffers at once, and each layer wrote into
memory that nothing had touched since the previous call, after some 100 MB
of weights had streamed through the caches, so its output lines came from
memory before they were overwritten. This pass moves each `memref.dealloc`
up to just after the last operation of its block that uses the buffer, a
view of it, or (conservatively) anything computed from it; malloc then
hands the memory to a later allocation of the same call while it is still
in the caches.

A dealloc is left where it is when its buffer is not a `memref.alloc` of
the same block seen through views, or when a value derived from it is used
outside the operations of that block.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import ir
from .base import PythonPass, register_pass
from .call_folding import VIEWS, position, uses_any

# extract_strided_metadata's first result is the base buffer of its operand
_VIEWS = VIEWS + ("memref.extract_strided_metadata",)


def root_allocation(value):
    """The memref.alloc under `value`'s views, or None."""
    while True:
        name = ir.defining_op_name(value)
        if name == "memref.alloc":
            return value.owner.operation
        if name not in _VIEWS:
            return None  # a block argument, a global, a call's result...
        value = value.owner.operation.operands[0]


def _nested_in(op, ancestor) -> bool:
    while op is not None:
        if op == ancestor:
            return True
        parent = op.parent
        op = parent.operation if parent is not None else None
    return False


def _move_up(dealloc) -> bool:
    """Moves `dealloc` after the last use of its buffer in its block."""
    allocation = root_allocation(dealloc.operands[0])
    block = dealloc.block
    if allocation is None or allocation.block != block:
        return False
    operations = [op.operation for op in block.operations]
    start, end = position(operations, allocation), position(operations, dealloc)
    derived, last = list(allocation.results), start
    for index in range(start + 1, end):
        if uses_any(operations[index], derived):
            last = index
            derived.extend(operations[index].results)
    # Every use of the buffer and of what came from it lies in [alloc, last].
    users = operations[start:last + 1]
    for value in derived:
        for use in value.uses:
            owner = use.owner.operation
            if owner != dealloc and not any(_nested_in(owner, op) for op in users):
                return False
    if last + 1 == end:
        return False
    dealloc.move_after(operations[last])
    return True


@register_pass
@dataclass(frozen=True)
class FreeAfterLastUse(PythonPass):
    name = "mlirc-free-after-last-use"
    description = ("Move each memref.dealloc to just after the last use of its buffer in its "
                   "block (MLIR's deallocation frees at the end of the block)")

    def run(self, module_op) -> None:
        for dealloc in [op for op in ir.walk_ops(module_op) if op.name == "memref.dealloc"]:
            _move_up(dealloc)
