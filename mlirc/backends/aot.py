"""AOT backend: the LLVM-dialect module as a C-callable shared library.

The entry point is renamed from @main (which would clash with a C program's
main) to the model's name, compiled position-independent by MLIR's
ExecutionEngine, dumped to an object file and linked with the system C
compiler. A generated header declares `_mlir_ciface_<name>`.

The library is for the CPUs of its `target_cpu` (kernels/host.py): every
function carries the target's `target_cpu`/`target_features`, which LLVM
generates code for instead of the host's, and the kernels linked in are
the portable library (src/dispatch.c), which picks its copy for the CPU it
is loaded on. The kernel choice in the IR was made for this host; a kernel
that the loading CPU's copy lacks runs as im2col + BLAS, with a warning.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from .. import ir
from ..version import __version__
from ..errors import BackendError
from ..passes.blas_offload import uses_blas
from ..passes.parallel_tiles import uses_threads
from ..kernels import build as kernels_build
from ..kernels import library as blas
from ..runtime import memref
from ..runtime.signature import Signature
from . import c_sources, soft_float, weights
from .target import set_target_cpu

ENTRY = "main"


def rename_entry(module: ir.Module, name: str) -> None:
    """Renames @main and its C-interface wrappers to use `name`."""
    body = module.body
    with module.context:
        table = ir.SymbolTable(module.operation)
        for old in (f"_mlir__mlir_ciface_{ENTRY}", f"_mlir_ciface_{ENTRY}",
                    f"_mlir_{ENTRY}", ENTRY):
            if old in table:
                new = old[: len(old) - len(ENTRY)] + name
                ir.SymbolTable.replace_all_symbol_uses(old, new, module.operation)
                ir.SymbolTable.set_symbol_name(table[old], new)
    del body


def kernels_object(target: str) -> Path:
    """The kernels an aot library links: the portable library for an x86-64
    level, the host's own build for "host"."""
    return blas.shim_object() if target == "host" else kernels_build.portable_object()


def bind_openmp_calls(objects: Path) -> None:
    """Renames the model object's references to the OpenMP runtime
    (__kmpc_*) to the kernel library's functions that answer them, so the
    library neither needs nor shadows a real OpenMP runtime."""
    renames = [f"--redefine-sym={kmpc}={ours}" for kmpc, ours in blas.OPENMP_FUNCTIONS.items()]
    objcopy = os.environ.get("OBJCOPY", "objcopy")
    try:
        result = subprocess.run([objcopy, *renames, str(objects)], capture_output=True, text=True)
    except FileNotFoundError:
        raise BackendError(f"'{objcopy}' (binutils) is needed to link a multi-threaded "
                           "library; install binutils or set OBJCOPY") from None
    if result.returncode != 0:
        raise BackendError(f"{objcopy} failed on {objects.name}: {result.stderr.strip()[:300]}")


def compiler_command() -> str:
    compiler = os.environ.get("CC", "cc")
    if not shutil.which(compiler):
        raise BackendError(f"no C compiler: '{compiler}' is not on PATH (set CC)")
    return compiler


class AotExecutable:
    def __init__(self, library: Path, name: str, signature: Signature, files: dict[str, bytes]):
        self.signature = signature
        self.name = name
        self.files = files
        self.library_path = library
        self._library = ctypes.CDLL(str(library))
        self._function = getattr(self._library, f"_mlir_ciface_{name}")
        arguments = len(signature.inputs) + len(signature.outputs)
        self._function.argtypes = [ctypes.c_void_p] * arguments
        self._function.restype = None
        self._arguments = memref.CallArguments()

    def __call__(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        outputs = [np.empty(shape, spec.numpy_dtype) for shape, spec in
                   zip(self.signature.output_shapes(inputs), self.signature.outputs)]
        self._function(*self._arguments.bind(list(inputs) + outputs).addresses)
        return outputs

    def payload(self) -> dict[str, bytes]:
        return dict(self.files)


class AotBackend:
    name = "aot"

    def load(self, module, signature, options: dict) -> AotExecutable:
        name = options.get("name") or "model"
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise BackendError(f"'{name}' is not a valid C identifier for the entry point")
        rename_entry(module, name)
        target = options.get("target_cpu") or "host"
        set_target_cpu(module, target)
        folder = Path(tempfile.mkdtemp(prefix="mlirc-aot-"))
        objects = folder / f"{name}.o"
        library = folder / f"lib{name}.so"
        # Large weights go into the library as raw bytes (weights.s) rather
        # than through LLVM, which took 50 s and 2.5 GB for ResNet-50's.
        bound = weights.externalize(module)
        threads = uses_threads(module)
        kernels = uses_blas(module) or threads
        extra_objects, symbols = [], {}
        if soft_float.needed(module):
            soft_float_object, symbols = soft_float.build(folder, compiler_command())
            extra_objects.append(str(soft_float_object))
        _emit_object(module, options, kernels, threads, bound, objects, symbols)
        if not objects.exists():
            raise BackendError("code generation failed: the ExecutionEngine wrote no object "
                               "file (unresolved symbols are listed on stderr)")
        if threads:
            bind_openmp_calls(objects)
        # -Bsymbolic: the model calls its own kernels even in a process that
        # has loaded mlirc's host kernels, whose names are the same.
        link = [compiler_command(), "-shared", "-Wl,-Bsymbolic", "-o", str(library),
                str(objects), *extra_objects, "-lm"]
        if bound:
            link.append(str(weights.write_assembly(bound, folder)))
        if kernels:
            # The shim goes into the library; the BLAS is found through rpath.
            blas_library = blas.blas_library()
            # --no-as-needed: the shim finds cblas with dlsym, so nothing would
            # otherwise keep the BLAS among the library's dependencies.
            link += [str(kernels_object(target)), "-ldl", "-lpthread", "-Wl,--no-as-needed",
                     str(blas_library), f"-Wl,-rpath,{blas_library.parent}"]
        result = subprocess.run(link, capture_output=True, text=True)
        if result.returncode != 0:
            raise BackendError(f"linking lib{name}.so failed: {result.stderr.strip()[:300]}")
        files = {
            f"lib{name}.so": library.read_bytes(),
            f"{name}.h": c_sources.header(name, signature, __version__).encode(),
            "main.c": c_sources.example_program(name, signature).encode(),
            "Makefile": c_sources.makefile(name).encode(),
        }
        return AotExecutable(library, name, signature, files)

    def from_payload(self, files: dict[str, bytes], signature, folder: Path) -> AotExecutable:
        (library_name,) = [f for f in files if f.startswith("lib") and f.endswith(".so")]
        name = library_name[3:-3]
        return AotExecutable(folder / library_name, name, signature, files)


def _emit_object(module, options: dict, kernels: bool, threads: bool, bound: list,
                 objects: Path, symbols: dict[str, int] | None = None) -> None:
    """Compiles the module with MLIR's ExecutionEngine and dumps its object
    file; the engine links what it compiles, so the GEMM shim, the weights
    and `symbols` (name -> address) must resolve."""
    try:
        engine = ir.ExecutionEngine(module, opt_level=options.get("opt_level", 3),
                                    shared_libs=blas.load() if kernels else [],
                                    enable_pic=True)
        for symbol, buffer in bound:
            engine.raw_register_runtime(symbol, ctypes.c_void_p(buffer.ctypes.data))
        for symbol, address in (symbols or {}).items():
            engine.raw_register_runtime(symbol, ctypes.c_void_p(address))
        if threads:
            blas.bind_openmp(engine)
        engine.dump_to_object_file(str(objects))
    except Exception as error:
        raise BackendError(f"code generation failed: {str(error).strip()[:300]}") from None
