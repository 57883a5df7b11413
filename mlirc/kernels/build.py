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
    return _prebuilt_or_built(
        buildspec.object_name(name, source, includes, flags), folder, source.name,
        f"{source.name} ({' '.join(flags)})",
        lambda target, announce: buildspec.compile_object(source, target, flags, announce))


def portable_object() -> Path:
    """The portable kernel library (x86-64): a copy of the kernels per CPU
    level behind entry points that pick one when loaded (src/dispatch.c),
    prebuilt, cached, or built now."""
    what = "the portable kernel library"
    return _prebuilt_or_built(
        buildspec.portable_object_name(), None, what,
        f"{what} ({', '.join(buildspec.LEVELS)})",
        lambda target, announce: buildspec.build_portable(target.parent, announce))


def _prebuilt_or_built(file_name: str, folder: Path | None, what: str, announced: str,
                       build) -> Path:
    """`file_name` from the package's prebuilt/ folder, or from `folder`
    (default: the cache's runtime folder), where `build(target, announce)`
    makes it when it is missing; build errors become BackendErrors."""
    if folder is None:
        if (PREBUILT / file_name).exists():
            return PREBUILT / file_name
        folder = cache_dir() / "runtime"
    target = folder / file_name
    if target.exists():
        return target
    compiler = os.environ.get("CC", "cc")
    if not shutil.which(compiler):
        raise BackendError(f"building {what} needs a C compiler ('{compiler}')")

    def announce():
        print(f"mlirc: building {announced} once into {folder}", file=sys.stderr, flush=True)
    try:
        return build(target, announce)
    except buildspec.BuildFailed as error:
        raise BackendError(f"building {what} failed: {error}") from None


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

