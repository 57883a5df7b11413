"""The kernel library (src/, its entry points in include/mlirc_kernels.h)
and the BLAS behind it.

The BLAS is OpenBLAS from the scipy-openblas32 wheel (chosen by measurement,
see docs/kernels.md), MKL with MLIRC_BLAS=mkl (after `pip install mkl`), or
any library given as MLIRC_BLAS=/path/to/libblas.so that exports
cblas_sgemm. The kernels are compiled once for the host's instruction-set
level (host.py) by build.py: at install time, or at first use.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import sys
from pathlib import Path

from ..errors import BackendError
from . import build, buildspec
from .buildspec import HEADER, PROFILE_SOURCE, SHIM_INCLUDES, SHIM_SOURCE  # noqa: F401
from .host import host


def shim_flags() -> tuple[str, ...]:
    """For the host's level (host.py): the register tiles are GCC vectors
    sized by the instruction set the level names."""
    return buildspec.shim_flags(host().machine, host().level)


def blas_library() -> Path:
    configured = os.environ.get("MLIRC_BLAS")
    if configured == "mkl":
        return mkl_library()
    if configured:
        return Path(configured)
    try:
        import scipy_openblas32
    except ImportError:
        raise BackendError("BLAS offload needs scipy-openblas32 (or MLIRC_BLAS=libblas.so); "
                           "or compile with blas=False") from None
    return Path(scipy_openblas32.get_lib_dir()) / f"lib{scipy_openblas32.get_library()}.so"


def mkl_library() -> Path:
    """MKL's single dynamic library from the `mkl` wheel (`pip install mkl`),
    which installs it into the environment's lib folder."""
    found = sorted((Path(sys.prefix) / "lib").glob("libmkl_rt.so*"))
    if not found:
        raise BackendError(f"MLIRC_BLAS=mkl: no libmkl_rt.so in {Path(sys.prefix) / 'lib'}; "
                           "install it with `pip install mkl`")
    return found[0]


@functools.cache
def load() -> list[str]:
    """Loads the BLAS (globally, so the shim's dlsym finds it) and the shim;
    returns the shared libraries a JIT or a link needs."""
    library = blas_library()
    if not library.exists():
        raise BackendError(f"BLAS library {library} does not exist")
    with single_threaded_blas_environment():
        ctypes.CDLL(str(library), mode=ctypes.RTLD_GLOBAL)
    shim = build_shim()
    ctypes.CDLL(str(shim), mode=ctypes.RTLD_GLOBAL)
    return [str(shim), str(library)]


@functools.cache
def load_profile_timers() -> str:
    """Builds and loads (globally, for the JIT to resolve) the timers that
    `mlirc profile` builds call; returns the library's path."""
    path = profile_library()
    ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
    return str(path)


def symbol(name: str, restype, argtypes: list):
    """An entry point of the kernel library (loaded first), typed for ctypes."""
    function = getattr(_kernels_handle(), name)
    function.restype, function.argtypes = restype, argtypes
    return function


# The OpenMP runtime functions generated parallel loops call, and the kernel
# library's functions that answer them on its thread pool (src/openmp.c).
OPENMP_FUNCTIONS = {f"__kmpc_{name}": f"mlirc_omp_{name}" for name in (
    "fork_call", "global_thread_num", "for_static_init_4", "for_static_init_4u",
    "for_static_init_8", "for_static_init_8u", "for_static_fini", "barrier")}


def bind_openmp(engine) -> None:
    """Binds an ExecutionEngine's references to the OpenMP runtime
    functions to the kernel library's answers (loaded first)."""
    handle = _kernels_handle()
    for kmpc, ours in OPENMP_FUNCTIONS.items():
        engine.raw_register_runtime(kmpc, ctypes.cast(getattr(handle, ours), ctypes.c_void_p))


@functools.cache
def _kernels_handle() -> ctypes.CDLL:
    return ctypes.CDLL(load()[0], mode=ctypes.RTLD_GLOBAL)


@contextlib.contextmanager
def single_threaded_blas_environment():
    """Loads the BLAS without worker threads of its own: the shim cuts GEMMs
    over its own thread pool and runs the BLAS on one thread per slice
    (src/gemm.c). OpenBLAS reads OPENBLAS_NUM_THREADS once, when loaded, and
    a worker it started, even when later told to use one thread, stalled the
    shim's calls for milliseconds now and then; the variables are restored
    right after, so child processes and other libraries do not see them."""
    names = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    saved = {name: os.environ.get(name) for name in names}
    os.environ.update({name: "1" for name in names})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def shim_fingerprint() -> str:
    """A hash of the kernels as built (their files and flags), for cache keys."""
    return buildspec.fingerprint(SHIM_SOURCE, SHIM_INCLUDES, shim_flags())


def shim_object(folder: Path | None = None) -> Path:
    """The kernels compiled once to an object file, for AOT libraries to link."""
    return build.build_object(buildspec.SHIM_NAME, SHIM_SOURCE, SHIM_INCLUDES, shim_flags(),
                              folder)


def build_shim(folder: Path | None = None) -> Path:
    """The kernels as a shared library, linked from shim_object()."""
    return build.shared_library(shim_object(folder), buildspec.SHIM_LIBRARIES)


def profile_library(folder: Path | None = None) -> Path:
    """The timers that `mlirc profile` builds call (profile_runtime.c)."""
    return build.shared_library(build.build_object(buildspec.PROFILE_NAME, PROFILE_SOURCE, (),
                                                   buildspec.PROFILE_FLAGS, folder))


def describe() -> str:
    """The BLAS in use and, for OpenBLAS, its build and the kernels it picked
    (e.g. 'OpenBLAS 0.3.34 DYNAMIC_ARCH ... SkylakeX'), for benchmark reports."""
    library = ctypes.CDLL(load()[1])
    for name in ("scipy_openblas_get_config", "openblas_get_config"):
        config = getattr(library, name, None)
        if config is not None:
            config.restype = ctypes.c_char_p
            forced = os.environ.get("OPENBLAS_CORETYPE")
            return config().decode() + (f" (OPENBLAS_CORETYPE={forced} is set)" if forced else "")
    return blas_library().name
