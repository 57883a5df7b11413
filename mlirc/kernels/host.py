"""The CPU the kernels are built for and chosen by: its x86-64 level.

Kernels are compiled for a named instruction-set level, not `-march=native`,
so that the build says what it needs and a host can be told to act as a
smaller one: `MLIRC_TARGET_ISA=avx2` on an AVX-512 machine builds and picks
the AVX2 kernels, and the JIT generates its code for that level too
(backends/target.py), which is how the AVX2 path is measured there. `aot`
libraries are generated for a level, `target_cpu` below, and link the
portable kernels; a native artifact records the level it needs and is
refused on a lesser CPU, see artifact.py.

| level   | GCC `-march` | what the kernels get                                    |
|---------|--------------|---------------------------------------------------------|
| avx512  | x86-64-v4    | 32 zmm registers: the 16-float register tiles           |
| avx2    | x86-64-v3    | 16 ymm registers: the packed GEMM's 6x16 tile, BLAS     |
|         |              | (im2col, Winograd's points) for convolutions            |
| generic | x86-64, or native off x86 | correct code, BLAS for contractions        |
"""

from __future__ import annotations

import functools
import os
import platform
from dataclasses import dataclass

from ..errors import InputError
from .buildspec import (LEVELS, MARCH, cpu_flags_and_model, detected_level,  # noqa: F401
                        machine_level, march_flags)


@dataclass(frozen=True)
class Host:
    machine: str     # platform.machine()
    level: str       # one of LEVELS: what mlirc builds and generates for
    model: str       # the CPU's model name, for reports and tuning keys
    machine_level: str = ""  # the machine's own level, whatever MLIRC_TARGET_ISA says

    @property
    def has_avx512(self) -> bool:
        return self.level == "avx512"

    @property
    def march_flags(self) -> tuple[str, ...]:
        """GCC flags that build the kernels for this level."""
        return march_flags(self.machine, self.level)

    def describe(self) -> str:
        return f"{self.model} ({self.machine}, kernels for {self.level})"


@functools.cache
def host() -> Host:
    """This machine, or the level MLIRC_TARGET_ISA asks for (never above the
    machine's own: code for features it lacks would die of SIGILL)."""
    flags, model = cpu_flags_and_model()
    machine = platform.machine()
    level = own = machine_level(machine, flags)
    wanted = os.environ.get("MLIRC_TARGET_ISA")
    if wanted:
        if wanted not in LEVELS:
            raise InputError(f"MLIRC_TARGET_ISA={wanted!r}: levels are {', '.join(LEVELS)}")
        if LEVELS.index(wanted) > LEVELS.index(level):
            raise InputError(f"MLIRC_TARGET_ISA={wanted}: this CPU ({model}) only has {level}")
        level = wanted
    return Host(machine, level, model, own)


# What `aot` libraries are generated for (`target_cpu`): an x86-64 level by
# its GCC/LLVM name, or "host" (this CPU, as the JIT does).
AOT_TARGETS = {march: level for level, march in MARCH.items()}


def aot_target(requested: str | None) -> str:
    """The target of an `aot` library: `requested`, checked, or by default
    x86-64-v3 on x86-64 hosts with AVX2 (any AVX2 machine runs it; its
    kernels use AVX-512 where there is some) and "host" elsewhere."""
    here = host()
    if requested in (None, ""):
        if here.machine != "x86_64":
            return "host"
        return "x86-64-v3" if here.level != "generic" else "x86-64"
    if requested == "host":
        return requested
    if here.machine != "x86_64" or requested not in AOT_TARGETS:
        choices = ", ".join(["host", *AOT_TARGETS] if here.machine == "x86_64" else ["host"])
        raise InputError(f"target_cpu={requested!r}: choose one of {choices}")
    if LEVELS.index(AOT_TARGETS[requested]) > LEVELS.index(here.level):
        raise InputError(f"target_cpu={requested}: this CPU ({here.model}) only has "
                         f"{here.level}, so the library could not run here")
    return requested


def target_level(target: str) -> str:
    """The CPU level a machine needs to run code for `target`."""
    return host().level if target == "host" else AOT_TARGETS[target]
