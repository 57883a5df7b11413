"""JIT backend: the LLVM-dialect module compiled in-process by MLIR's
ExecutionEngine (opt level 3, host CPU, or the level MLIRC_TARGET_ISA
names), called through its C interface."""

from __future__ import annotations

import ctypes
import json

import numpy as np

from .. import ir
from ..errors import BackendError
from ..passes.blas_offload import uses_blas
from ..passes.parallel_tiles import uses_threads
from ..passes.profile import uses_timers
from ..kernels import library as blas
from ..runtime import memref
from . import soft_float, weights
from .target import jit_target, set_target_cpu
from ..runtime.signature import Signature


class JitExecutable:
    def __init__(self, module: ir.Module, signature: Signature, opt_level: int = 3,
                 shared_libs: list[str] | None = None, entry: str = "main",
                 external_weights: list | None = None):
        self.signature = signature
        self.module = module
        self._arguments = memref.CallArguments()
        threads = uses_threads(module)
        if uses_blas(module) or threads:
            shared_libs = list(shared_libs or []) + blas.load()
        if uses_timers(module):
            shared_libs = list(shared_libs or []) + [blas.load_profile_timers()]
        # Large weights leave the module and are bound by symbol (weights.py).
        self.weights = external_weights if external_weights is not None \
            else weights.externalize(module)
        set_target_cpu(module, jit_target())
        needs_soft_float = soft_float.needed(module)
        with ir.capture_diagnostics(module.context) as diagnostics:
            try:
                self.engine = ir.ExecutionEngine(module, opt_level=opt_level,
                                                 shared_libs=shared_libs or [])
                for symbol, buffer in self.weights:
                    self.engine.raw_register_runtime(symbol, ctypes.c_void_p(buffer.ctypes.data))
                if needs_soft_float:
                    from .aot import compiler_command
                    for symbol, address in soft_float.process_symbols(compiler_command()).items():
                        self.engine.raw_register_runtime(symbol, ctypes.c_void_p(address))
                if threads:
                    blas.bind_openmp(self.engine)
                self._function = self.engine.lookup(entry)
            except Exception as error:
                # Unresolved symbols are reported on stderr by the JIT itself.
                detail = diagnostics[0].message if diagnostics else str(error).strip()
                raise BackendError(f"the ExecutionEngine could not compile or link "
                                   f"@{entry}: {detail[:300]}") from None

    def __call__(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        outputs = [np.empty(shape, spec.numpy_dtype) for shape, spec in
                   zip(self.signature.output_shapes(inputs), self.signature.outputs)]
        self._function(self._arguments.bind(list(inputs) + outputs).packed)
        return outputs

    def payload(self) -> dict[str, bytes]:
        """The LLVM-dialect IR (loading JIT-compiles it again), and the
        externalised weights as one binary file with a JSON index."""
        files = {"llvm.mlir": ir.module_text(self.module, debug_info=True).encode()}
        if self.weights:
            index, offset = [], 0
            for symbol, buffer in self.weights:
                index.append([symbol, offset, buffer.size])
                offset += buffer.size
            files["weights.bin"] = b"".join(buffer.tobytes() for _, buffer in self.weights)
            files["weights.json"] = json.dumps(index).encode()
        return files


class JitBackend:
    name = "jit"

    def load(self, module, signature, options: dict) -> JitExecutable:
        return JitExecutable(module, signature, opt_level=options.get("opt_level", 3))

    def from_payload(self, files: dict[str, bytes], signature, folder) -> JitExecutable:
        module = ir.parse_module(files["llvm.mlir"].decode())
        bound = []
        if "weights.json" in files:
            data = files["weights.bin"]
            for symbol, offset, size in json.loads(files["weights.json"]):
                bound.append((symbol, weights.aligned_copy(data[offset:offset + size])))
        return JitExecutable(module, signature, external_weights=bound)
