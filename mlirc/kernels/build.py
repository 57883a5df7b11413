"""Building the C libraries that generated code calls (the kernel library,
the profile timers) with the system C compiler.

A build is keyed by a hash of its sources and flags. It is looked for first
in the package's own `prebuilt/` folder (filled at install time by
`python -m mlirc.kernels build`, which `make` and `pip install .` run), then
in the cache folder, and built there otherwise. Builders take a file lock,
so processes that start at once build once; the compiler writes to a
temporary name that is renamed into place only when it succeeded, and a
builder that dies takes its compiler with it (the child gets SIGKILL when
its parent dies), so no half-written library is ever found.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from ..errors import BackendError
from ..settings import cache_dir

PREBUILT = Path(__file__).with_name("prebuilt")


def fingerprint(source: Path, includes: tuple[Path, ...], flags: tuple[str, ...]) -> str:
    """A hash of what a build of `source` depends on: its text, the files it
    includes and the compiler flags."""
    text = b"".join(path.read_bytes() for path in (source, *includes))
    return hashlib.sha256(text + " ".join(flags).encode()).hexdigest()


def target_name(name: str, digest: str, shared: bool) -> str:
    return f"lib{name}_{digest[:16]}.so" if shared else f"{name}_{digest[:16]}.o"


def build(source: Path, name: str, libraries: tuple[str, ...] = (),
          flags: tuple[str, ...] = ("-O2",), shared: bool = True,
          includes: tuple[Path, ...] = (), folder: Path | None = None,
          progress: bool = True) -> Path:
    """The shared library (or, with shared=False, the position-independent
    object file, for linking into other libraries) built from `source` with
    `flags`, reused while the source, the files it `includes` and the flags
    are unchanged. `folder`: where to build (default: the cache's runtime
    folder; a prebuilt copy in the package is used first)."""
    file_name = target_name(name, fingerprint(source, includes, flags), shared)
    if folder is None:
        if (PREBUILT / file_name).exists():
            return PREBUILT / file_name
        folder = cache_dir() / "runtime"
    target = folder / file_name
    if target.exists():
        return target
    compiler = os.environ.get("CC", "cc")
    if not shutil.which(compiler):
        raise BackendError(f"building {source.name} needs a C compiler ('{compiler}')")
    folder.mkdir(parents=True, exist_ok=True)
    with _locked(folder / f"{file_name}.lock"):
        if target.exists():  # another process built it while we waited
            return target
        _remove_leftovers(folder, file_name)
        partial = folder / f"{file_name}.{os.getpid()}.tmp"
        kind = ["-shared"] if shared else ["-c"]
        command = [compiler, *flags, "-fPIC", *kind, "-o", str(partial), str(source),
                   *(f"-l{lib}" for lib in libraries if shared)]
        if progress:
            print(f"mlirc: building {source.name} ({' '.join(flags)}) once into {folder}",
                  file=sys.stderr, flush=True)
        result = subprocess.run(command, capture_output=True, text=True,
                                preexec_fn=_die_with_parent)
        if result.returncode != 0:
            partial.unlink(missing_ok=True)
            raise BackendError(f"building {source.name} failed: {result.stderr.strip()[:300]}")
        os.replace(partial, target)
    return target


def link(object_path: Path, libraries: tuple[str, ...] = ()) -> Path:
    """The shared library made of one object file from build(shared=False),
    beside it (or in the cache when that folder is not writable): linking
    is quick, where compiling the kernels twice is not."""
    target = object_path.with_name(f"lib{object_path.stem}.so")
    if target.exists():
        return target
    if not os.access(object_path.parent, os.W_OK):
        target = cache_dir() / "runtime" / target.name
        if target.exists():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
    compiler = os.environ.get("CC", "cc")
    with _locked(target.with_name(f"{target.name}.lock")):
        if target.exists():
            return target
        partial = target.with_name(f"{target.name}.{os.getpid()}.tmp")
        result = subprocess.run([compiler, "-shared", "-o", str(partial), str(object_path),
                                 *(f"-l{lib}" for lib in libraries)],
                                capture_output=True, text=True, preexec_fn=_die_with_parent)
        if result.returncode != 0:
            partial.unlink(missing_ok=True)
            raise BackendError(f"linking {object_path.name} failed: "
                               f"{result.stderr.strip()[:300]}")
        os.replace(partial, target)
    return target


@contextlib.contextmanager
def _locked(path: Path):
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _remove_leftovers(folder: Path, file_name: str) -> None:
    """Temporary files of builders that died (we hold the lock: none is live)."""
    for stale in folder.glob(f"{file_name}.*.tmp"):
        stale.unlink(missing_ok=True)


def _die_with_parent() -> None:
    """In the compiler's process: SIGKILL when the builder dies (Linux)."""
    try:
        libc = ctypes.CDLL(None)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
