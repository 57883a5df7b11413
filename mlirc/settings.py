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


def usable_cores() -> int:
    """The CPUs this process may run on (its affinity mask)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def thread_count() -> int:
    """The threads compiled models run on, as the kernel library's pool reads
    them (kernels/src/pool.c): MLIRC_NUM_THREADS when it is a positive
    number, else the usable cores (the pool also caps them at the cgroup's
    CPU quota)."""
    try:
        configured = int(os.environ.get("MLIRC_NUM_THREADS", ""))
    except ValueError:
        configured = 0
    return configured if configured > 0 else usable_cores()
