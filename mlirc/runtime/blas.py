"""The BLAS that offloaded GEMMs call, and mlirc's shim in front of it.

The BLAS is OpenBLAS from the scipy-openblas32 wheel (chosen by measurement,
see README), MKL with MLIRC_BLAS=mkl (after `pip install mkl`), or any
library given as MLIRC_BLAS=/path/to/libblas.so that
exports cblas_sgemm. The shim (blas_shim.c) is compiled once with the system C
compiler into the cache folder.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import sys
from pathlib import Path

from ..errors import BackendError
from . import c_library

SHIM_SOURCE = Path(__file__).with_name("blas_shim.c")
SHIM_INCLUDES = tuple(SHIM_SOURCE.with_name(name)
                      for name in ("shim_pool.h", "shim_maxpool.h", "shim_conv.h",
                                   "shim_packed_conv.h", "shim_winograd.h",
                                   "shim_strided_conv.h",
                                   "shim_winograd4.h", "shim_buffers.h"))
# For the host, like the code the JIT and AOT backends generate: the direct
# convolution's register tiles are GCC vectors that need the host's widths.
SHIM_FLAGS = ("-O3", "-march=native")


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


@contextlib.contextmanager
def single_threaded_blas_environment():
    """Loads the BLAS without worker threads of its own: the shim cuts GEMMs
    over its own thread pool and runs the BLAS on one thread per slice
    (blas_shim.c). OpenBLAS reads OPENBLAS_NUM_THREADS once, when loaded, and
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
    """A hash of the shim as built (its files and flags), for cache keys."""
    return c_library.fingerprint(SHIM_SOURCE, SHIM_INCLUDES, SHIM_FLAGS)


def build_shim() -> Path:
    return c_library.build(SHIM_SOURCE, "mlirc_blas", libraries=("dl", "pthread"),
                           flags=SHIM_FLAGS, includes=SHIM_INCLUDES)


def shim_object() -> Path:
    """The shim compiled once to an object file, for AOT libraries to link."""
    return c_library.build(SHIM_SOURCE, "mlirc_blas", flags=SHIM_FLAGS, shared=False,
                           includes=SHIM_INCLUDES)


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
