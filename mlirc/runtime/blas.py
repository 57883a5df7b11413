"""The BLAS that offloaded GEMMs call, and mlirc's shim in front of it.

The BLAS is OpenBLAS from the scipy-openblas32 wheel (chosen by measurement,
see README), or any library given as MLIRC_BLAS=/path/to/libblas.so that
exports cblas_sgemm. The shim (blas_shim.c) is compiled once with the system C
compiler into the cache folder.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from ..errors import BackendError

SHIM_SOURCE = Path(__file__).with_name("blas_shim.c")


def blas_library() -> Path:
    configured = os.environ.get("MLIRC_BLAS")
    if configured:
        return Path(configured)
    try:
        import scipy_openblas32
    except ImportError:
        raise BackendError("BLAS offload needs scipy-openblas32 (or MLIRC_BLAS=libblas.so); "
                           "or compile with blas=False") from None
    return Path(scipy_openblas32.get_lib_dir()) / f"lib{scipy_openblas32.get_library()}.so"


@functools.cache
def load() -> list[str]:
    """Loads the BLAS (globally, so the shim's dlsym finds it) and the shim;
    returns the shared libraries a JIT or a link needs."""
    library = blas_library()
    if not library.exists():
        raise BackendError(f"BLAS library {library} does not exist")
    ctypes.CDLL(str(library), mode=ctypes.RTLD_GLOBAL)
    shim = build_shim()
    ctypes.CDLL(str(shim), mode=ctypes.RTLD_GLOBAL)
    return [str(shim), str(library)]


def build_shim() -> Path:
    from ..cache import cache_dir
    source = SHIM_SOURCE.read_bytes()
    digest = hashlib.sha256(source).hexdigest()[:16]
    target = cache_dir() / "blas" / f"libmlirc_blas_{digest}.so"
    if target.exists():
        return target
    compiler = os.environ.get("CC", "cc")
    if not shutil.which(compiler):
        raise BackendError(f"BLAS offload needs a C compiler to build its shim ('{compiler}')")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{os.getpid()}.tmp")
    result = subprocess.run([compiler, "-O2", "-fPIC", "-shared", "-o", str(partial),
                             str(SHIM_SOURCE), "-ldl"], capture_output=True, text=True)
    if result.returncode != 0:
        raise BackendError(f"building the BLAS shim failed: {result.stderr.strip()[:300]}")
    os.replace(partial, target)
    return target
