"""JIT backend: the LLVM-dialect module compiled in-process by MLIR's
ExecutionEngine (opt level 3, host CPU), called through its C interface."""

from __future__ import annotations

import numpy as np

from .. import ir
from ..errors import BackendError
from ..runtime import memref
from ..runtime.signature import Signature


class JitExecutable:
    def __init__(self, module: ir.Module, signature: Signature, opt_level: int = 3,
                 shared_libs: list[str] | None = None, entry: str = "main"):
        self.signature = signature
        self.module = module
        with ir.capture_diagnostics(module.context) as diagnostics:
            try:
                self.engine = ir.ExecutionEngine(module, opt_level=opt_level,
                                                 shared_libs=shared_libs or [])
                self._function = self.engine.lookup(entry)
            except Exception as error:
                # Unresolved symbols are reported on stderr by the JIT itself.
                detail = diagnostics[0].message if diagnostics else str(error).strip()
                raise BackendError(f"the ExecutionEngine could not compile or link "
                                   f"@{entry}: {detail[:300]}") from None

    def __call__(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        outputs = [np.empty(s.shape, s.numpy_dtype) for s in self.signature.outputs]
        packed, keep_alive = memref.packed_arguments(list(inputs) + outputs)
        self._function(packed)
        del keep_alive
        return outputs

    def payload(self) -> dict[str, bytes]:
        """The LLVM-dialect IR: loading JIT-compiles it again."""
        return {"llvm.mlir": ir.module_text(self.module, debug_info=True).encode()}


class JitBackend:
    name = "jit"

    def stages(self) -> list:
        from ..stages import native_stages
        return native_stages()

    def load(self, module, signature, options: dict) -> JitExecutable:
        return JitExecutable(module, signature, opt_level=options.get("opt_level", 3))

    def from_payload(self, files: dict[str, bytes], signature, folder) -> JitExecutable:
        module = ir.parse_module(files["llvm.mlir"].decode())
        return JitExecutable(module, signature)
