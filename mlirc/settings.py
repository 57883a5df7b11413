"""Settings read from the environment, at the bottom of the package (every
layer may import this module; it imports nothing of mlirc's)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """Where compiled models and the built kernel library are cached
    ($MLIRC_CACHE_DIR, default ~/.cache/mlirc)."""
    return Path(os.environ.get("MLIRC_CACHE_DIR") or Path.home() / ".cache" / "mlirc")


def cache_enabled_by_default() -> bool:
    return os.environ.get("MLIRC_NO_CACHE", "") in ("", "0")
