"""Building the C libraries that generated code calls (the kernel library,
the profile timers) with the system C compiler; what and how: buildspec.py.

A build is named by a hash of its sources and flags. It is looked for first
in the package's own `prebuilt/` folder (filled at install time: by
setup.py when a wheel is built, by `python -m mlirc.kernels build`, which
`make` runs), then in the cache folder, and built there otherwise. Builders
take a file lock, so processes that start at once build once; a killed
build leaves neither a compiler running nor a half-written library.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from ..errors import BackendError
from ..settings import cache_dir
from . import buildspec
from .buildspec import PREBUILT


def build_object(name: str, source: Path, includes: tuple[Path, ...],
                 flags: tuple[str, ...], folder: Path | None = None) -> Path:
    """`source` compiled with `flags` (the prebuilt copy, a cached one, or
    built now into `folder`, default the cache's runtime folder)."""
    file_name = buildspec.object_name(name, source, includes, flags)
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

    def announce():
        print(f"mlirc: building {source.name} ({' '.join(flags)}) once into {folder}",
              file=sys.stderr, flush=True)
    try:
        return buildspec.compile_object(source, target, flags, announce)
    except buildspec.BuildFailed as error:
        raise BackendError(f"building {source.name} failed: {error}") from None


def shared_library(object_path: Path, libraries: tuple[str, ...] = ()) -> Path:
    """The shared library of one object file, beside it (or in the cache
    when that folder is not writable): linking is quick, where compiling
    the kernels twice is not."""
    target = object_path.with_name(f"lib{object_path.stem}.so")
    if target.exists():
        return target
    if not os.access(object_path.parent, os.W_OK):
        target = cache_dir() / "runtime" / target.name
    try:
        return buildspec.link_shared(object_path, target, libraries)
    except buildspec.BuildFailed as error:
        raise BackendError(f"linking {object_path.name} failed: {error}") from None


def portable_object() -> Path:
    """The portable kernel library (x86-64): a copy of the kernels per CPU
    level behind entry points that pick one when loaded (src/dispatch.c),
    prebuilt, cached, or built now."""
    file_name = buildspec.portable_object_name()
    if (PREBUILT / file_name).exists():
        return PREBUILT / file_name
    folder = cache_dir() / "runtime"
    compiler = os.environ.get("CC", "cc")
    if not (folder / file_name).exists() and not shutil.which(compiler):
        raise BackendError(f"building the portable kernel library needs a C compiler "
                           f"('{compiler}')")

    def announce():
        print(f"mlirc: building the portable kernel library ({', '.join(buildspec.LEVELS)}) "
              f"once into {folder}", file=sys.stderr, flush=True)
    try:
        return buildspec.build_portable(folder, announce)
    except buildspec.BuildFailed as error:
        raise BackendError(f"building the portable kernel library failed: {error}") from None
