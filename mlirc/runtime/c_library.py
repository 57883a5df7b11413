"""Small C runtimes that generated code calls (the BLAS shim, the profile
timers), compiled once with the system C compiler into the cache folder,
keyed by a hash of their source."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from ..errors import BackendError


def fingerprint(source: Path, includes: tuple[Path, ...], flags: tuple[str, ...]) -> str:
    """A hash of what a build of `source` depends on: its text, the files it
    includes and the compiler flags."""
    text = b"".join(path.read_bytes() for path in (source, *includes))
    return hashlib.sha256(text + " ".join(flags).encode()).hexdigest()


def build(source: Path, name: str, libraries: tuple[str, ...] = (),
          flags: tuple[str, ...] = ("-O2",), shared: bool = True,
          includes: tuple[Path, ...] = ()) -> Path:
    """The shared library (or, with shared=False, the position-independent
    object file, for linking into other libraries) built from `source` with
    `flags`, reused while the source, the files it `includes` and the flags
    are unchanged."""
    from ..cache import cache_dir
    digest = fingerprint(source, includes, flags)[:16]
    target = cache_dir() / "runtime" / (f"lib{name}_{digest}.so" if shared
                                        else f"{name}_{digest}.o")
    if target.exists():
        return target
    compiler = os.environ.get("CC", "cc")
    if not shutil.which(compiler):
        raise BackendError(f"building {source.name} needs a C compiler ('{compiler}')")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{os.getpid()}.tmp")
    kind = ["-shared"] if shared else ["-c"]
    result = subprocess.run([compiler, *flags, "-fPIC", *kind, "-o", str(partial), str(source),
                             *(f"-l{lib}" for lib in libraries if shared)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise BackendError(f"building {source.name} failed: {result.stderr.strip()[:300]}")
    os.replace(partial, target)  # atomic: concurrent builders agree
    return target
