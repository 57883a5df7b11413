"""The CPU that native code is generated for, when it is not the host.

MLIR's ExecutionEngine generates code for the CPU it runs on. LLVM takes a
function's own `target-cpu` and `target-features` attributes over that, so
marking every function of the LLVM-dialect module is how `aot` libraries
are made for an x86-64 level, and how the JIT acts as a smaller CPU when
MLIRC_TARGET_ISA asks it to (kernels/host.py).
"""

from __future__ import annotations

from .. import ir
from ..kernels.buildspec import MARCH
from ..kernels.host import host


def set_target_cpu(module: ir.Module, target: str) -> None:
    """Marks every LLVM function for `target` (an x86-64 level), so that
    LLVM uses its instruction set instead of the host's. A function's
    features replace the host's list (which would keep AVX-512); SSE2 is in
    every level, so the list adds nothing to the target's own."""
    if target == "host":
        return
    with module.context:
        cpu = ir.StringAttr.get(target)
        features = ir.Attribute.parse('#llvm.target_features<["+sse2"]>')
        for op in module.body.operations:
            if op.operation.name == "llvm.func":
                op.operation.attributes["target_cpu"] = cpu
                op.operation.attributes["target_features"] = features


def jit_target() -> str:
    """"host", or the level MLIRC_TARGET_ISA lowers this machine to."""
    here = host()
    if here.machine != "x86_64" or here.level == here.machine_level:
        return "host"
    return MARCH[here.level]
