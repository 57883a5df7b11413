"""The compilation cache: artifacts keyed by a content hash of the source IR,
the pipeline, the backend options and the tool versions.

Entries are artifact folders (see artifact.py) that also keep every stage's
IR, so a hit looks like a fresh compile; they are written atomically. An entry
that fails its manifest or hash checks is deleted and rebuilt, never loaded.
Location: $MLIRC_CACHE_DIR, else ~/.cache/mlirc. Off with cache=False,
`--no-cache` or MLIRC_NO_CACHE=1.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import shutil
import sys
import time

from .artifact import tool_versions
from .settings import cache_dir, cache_enabled_by_default
from .kernels import library as blas
from .errors import ArtifactError
from .passes import PythonPass


def enabled_by_default() -> bool:
    return cache_enabled_by_default()


def _pass_modules(pass_type) -> list:
    """The module defining a Python pass and the mlirc.passes modules it
    imports names from."""
    module = inspect.getmodule(pass_type)
    siblings = {value.__module__ for value in vars(module).values()
                if callable(value) and getattr(value, "__module__", "").startswith("mlirc.passes.")}
    return [module] + [sys.modules[name] for name in sorted(siblings - {module.__name__})]


def cache_key(source_ir: str, stages, backend: str, options: dict,
              fingerprint: str = "") -> str | None:
    """The entry's key, or None when the pipeline cannot be hashed (a Python
    pass whose source code cannot be read, so a change would go unseen)."""
    digest = hashlib.sha256()
    digest.update(source_ir.encode())
    for stage in stages:
        digest.update(f"\0stage {stage.name}\0".encode())
        for pass_ in stage.passes:
            digest.update(pass_.text.encode())
            if isinstance(pass_, PythonPass):
                # The whole module, and the mlirc modules it imports from
                # (blas_offload's matching lives in call_folding.py).
                try:
                    for module in _pass_modules(type(pass_)):
                        digest.update(inspect.getsource(module).encode())
                except (OSError, TypeError):
                    return None
    # The C runtime that AOT libraries embed and JIT code calls, as built.
    digest.update(blas.shim_fingerprint().encode())
    digest.update(json.dumps({"backend": backend, "options": options,
                              "fingerprint": fingerprint,
                              "versions": tool_versions()}, sort_keys=True,
                             default=str).encode())
    return digest.hexdigest()


def lookup(key: str):
    """The cached CompiledModel for `key`, or None. Corrupt entries are removed."""
    from .runtime.compiled_model import load
    entry = cache_dir() / key
    if not entry.exists():
        return None
    try:
        return load(entry)
    except (ArtifactError, OSError):
        shutil.rmtree(entry, ignore_errors=True)
        return None


# A staging folder (artifact.write builds an entry in `.<key>-XXXX` and
# renames it) older than this was left by a killed compile.
STALE_STAGING_SECONDS = 3600


def remove_stale_staging(folder) -> None:
    """Removes staging folders that a compile killed mid-write left behind."""
    now = time.time()
    try:
        for entry in folder.iterdir():
            if entry.name.startswith(".") and entry.is_dir() and \
                    now - entry.stat().st_mtime > STALE_STAGING_SECONDS:
                shutil.rmtree(entry, ignore_errors=True)
    except OSError:
        pass  # a missing or unreadable cache folder holds nothing to clean


def store(key: str, compiled, source_ir_hash: str) -> None:
    from .artifact import write
    remove_stale_staging(cache_dir())
    try:
        write(cache_dir() / key, compiled.backend, compiled.signature,
              compiled.executable.payload(), source_ir_hash, compiled.extra.get("options"),
              stages=compiled.stages)
    except OSError:
        pass  # a read-only or full disk must not fail the compilation
