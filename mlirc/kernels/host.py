"""The CPU the kernels are built for and chosen by: its x86-64 level.

Kernels are compiled for a named instruction-set level, not `-march=native`,
so that the build says what it needs and a host can be told to act as a
smaller one: `MLIRC_TARGET_ISA=avx2` on an AVX-512 machine builds and picks
the AVX2 kernels, which is how the AVX2 path is measured there.

| level   | GCC `-march` | what the kernels get                               |
|---------|--------------|----------------------------------------------------|
| avx512  | x86-64-v4    | 32 zmm registers: the 16-float register tiles      |
| avx2    | x86-64-v3    | 16 ymm registers: BLAS for GEMMs, 8-wide paths     |
| generic | x86-64 / native (other machines) | correct code, BLAS for contractions |
"""

from __future__ import annotations

import functools
import os
import platform
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError

LEVELS = ("generic", "avx2", "avx512")
_MARCH = {"avx512": "x86-64-v4", "avx2": "x86-64-v3", "generic": "x86-64"}
# what a level needs of /proc/cpuinfo's flags
_NEEDS = {"avx512": {"avx512f", "avx512bw", "avx512dq", "avx512vl", "avx2", "fma"},
          "avx2": {"avx2", "fma", "bmi2"}, "generic": set()}


@dataclass(frozen=True)
class Host:
    machine: str     # platform.machine()
    level: str       # one of LEVELS
    model: str       # the CPU's model name, for reports and tuning keys

    @property
    def has_avx512(self) -> bool:
        return self.level == "avx512"

    @property
    def march_flags(self) -> tuple[str, ...]:
        """GCC flags that build the kernels for this level."""
        if self.machine != "x86_64":
            return ("-march=native",)  # aarch64 and others: the host's own
        return (f"-march={_MARCH[self.level]}", "-mtune=generic")

    def describe(self) -> str:
        return f"{self.model} ({self.machine}, kernels for {self.level})"


def _cpuinfo() -> tuple[set[str], str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set(), platform.processor() or "unknown CPU"
    flags, model = set(), "unknown CPU"
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags" and not flags:
            flags = set(value.split())
        elif key.strip() == "model name" and model == "unknown CPU":
            model = value.strip()
    return flags, model


def detected_level(flags: set[str]) -> str:
    """The highest level whose features `flags` has."""
    for level in reversed(LEVELS):
        if _NEEDS[level] <= flags:
            return level
    return "generic"


@functools.cache
def host() -> Host:
    """This machine, or the level MLIRC_TARGET_ISA asks for (never above the
    machine's own: code for features it lacks would die of SIGILL)."""
    flags, model = _cpuinfo()
    machine = platform.machine()
    level = detected_level(flags) if machine == "x86_64" else "generic"
    wanted = os.environ.get("MLIRC_TARGET_ISA")
    if wanted:
        if wanted not in LEVELS:
            raise InputError(f"MLIRC_TARGET_ISA={wanted!r}: levels are {', '.join(LEVELS)}")
        if LEVELS.index(wanted) > LEVELS.index(level):
            raise InputError(f"MLIRC_TARGET_ISA={wanted}: this CPU ({model}) only has {level}")
        level = wanted
    return Host(machine, level, model)
