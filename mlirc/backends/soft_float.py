"""bf16 conversion routines for AOT libraries.

LLVM lowers an f32 -> bf16 truncation to a call of `__truncsfbf2` (f64 ->
bf16: `__truncdfbf2`), which compiler-rt and GCC 13's libgcc provide but
GCC 12's does not: the ExecutionEngine that emits the object cannot resolve
it, and the object is never written. These definitions (round to nearest
even, NaN kept quiet) are registered in that engine and linked into the
library. `_Float16` has the same calling convention as `__bf16` (the low 16
bits of the first floating-point register) and GCC 12 knows it.

The JIT needs them too on CPUs without AVX512-BF16 (every AVX2 machine),
where LLVM calls the routine instead of using an instruction.
"""

from __future__ import annotations

import ctypes
import subprocess
from pathlib import Path

from ..errors import BackendError

SYMBOLS = ("__truncsfbf2", "__truncdfbf2")

SOURCE = r"""
#include <stdint.h>
#include <string.h>

static _Float16 bits_as_half(uint16_t bits) {
  _Float16 value;
  memcpy(&value, &bits, sizeof value);
  return value;
}

_Float16 __truncsfbf2(float x) {
  uint32_t bits;
  memcpy(&bits, &x, sizeof bits);
  if ((bits & 0x7fffffffu) > 0x7f800000u)
    return bits_as_half((uint16_t)((bits >> 16) | 0x40u));
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return bits_as_half((uint16_t)(bits >> 16));
}

_Float16 __truncdfbf2(double x) {
  /* through f32, keeping the bits f32 rounding would lose in the sticky bit */
  float rounded = (float)x;
  uint32_t bits;
  memcpy(&bits, &rounded, sizeof bits);
  if ((double)rounded != x && (bits & 0xffffu) == 0x8000u)
    bits += ((double)rounded < x) == (x > 0) ? 1u : 0xffffffffu;
  memcpy(&rounded, &bits, sizeof bits);
  return __truncsfbf2(rounded);
}
"""


def needed(module) -> bool:
    """Whether the (LLVM-dialect) module computes with bf16 values."""
    from .. import ir
    return any("bf16" in str(result.type) for op in ir.walk_ops(module.operation)
               for result in op.results)


def build(folder: Path, compiler: str) -> tuple[Path, dict[str, int]]:
    """Compiles the routines in `folder`: returns the object to link into the
    library and each symbol's address in this process (for the engine)."""
    source = folder / "soft_float.c"
    source.write_text(SOURCE)
    obj, shared = folder / "soft_float.o", folder / "libsoft_float.so"
    for command in ([compiler, "-O2", "-fPIC", "-c", str(source), "-o", str(obj)],
                    [compiler, "-shared", str(obj), "-o", str(shared)]):
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise BackendError(f"building the bf16 routines failed: {result.stderr[:300]}")
    library = ctypes.CDLL(str(shared))
    return obj, {name: ctypes.cast(getattr(library, name), ctypes.c_void_p).value
                 for name in SYMBOLS}


_PROCESS_BUILD: dict[str, int] | None = None


def process_symbols(compiler: str) -> dict[str, int]:
    """The routines built once per process (for the JIT): name -> address."""
    global _PROCESS_BUILD
    if _PROCESS_BUILD is None:
        import tempfile
        _, _PROCESS_BUILD = build(Path(tempfile.mkdtemp(prefix="mlirc-soft-float-")), compiler)
    return _PROCESS_BUILD
