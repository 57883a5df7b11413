"""Which kernel runs an offloaded op: decided here, at compile time, and
written into the IR (the call's `mlirc.kernel` attribute and, for
convolutions, its `kernel` argument), so `mlirc explore` shows it and the
library runs exactly it.

Two parts, kept apart:
- capability: whether a kernel takes a shape in the library as built for
  this host (asked of the library itself, `mlirc_conv2d_kernel_fits`, so the
  rule lives in one place);
- policy: the order of preference, and the kernels that lose to BLAS on a
  CPU level (measured; docs/kernels.md). This is data, which the cost model
  and the tuner may replace.

A user overrides the choice per op with a JSON object (the blas-offload
pass's `kernels` option, `mlirc.compile(..., kernels=...)`); `mlirc tune`
adds keys "conv2d@<problem>" (ConvShape.key()) for what it measured. Keys
"conv2d:N" / "gemm:N" (the N-th such op of the module, from 0, as
`mlirc explore` numbers them) or "conv2d" / "gemm" (each of them that can
run it; the others keep the compiler's choice), values kernel names. A
numbered op's kernel that cannot run it is an error, not a silent fallback.
"""

from __future__ import annotations

import ctypes
import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from .host import host

# enum mlirc_conv_kernel (include/mlirc_kernels.h)
CONV_KERNELS = {"im2col_blas": 0, "direct": 1, "strided": 2, "winograd_f2x2": 3,
                "winograd_f2x2_packed": 4, "winograd_f4x4": 5, "packed": 6}
GEMM_KERNELS = ("blas", "packed")
# Kernels that pack or transform the filter once, so the filter must be a constant.
NEEDS_CONSTANT_FILTER = frozenset({"winograd_f2x2_packed", "winograd_f4x4", "packed"})
# Counter indexes after the convolution kernels (enum mlirc_kernel_counter).
RUNS_GEMM_BLAS, RUNS_GEMM_PACKED, RUNS_CONV_FALLBACK = 7, 8, 9
RUN_COUNTERS = 10

# Kernels that run slower than the BLAS path they replace on a CPU level,
# so they are never chosen there (measured: docs/kernels.md). Their register
# tiles are 16-float vectors shaped for AVX-512's 32 registers; on AVX2 a
# vector spans two of its 16 and the tiles spill (the direct 3x3 tile made
# the cnn 1.5 ms against 0.6 ms with im2col + BLAS). The packed GEMM has a
# tile of its own for AVX2 (6 x 16, 8-float vectors), faster than BLAS there
# (the mlp 0.21-0.27 ms against 0.31); without AVX2 it would spill too.
# `mlirc tune` on the AVX2 path measured the strided stem kernel at 8.1 ms on
# ResNet-50's 7x7 stride-2 stem against 2.8 ms for im2col + BLAS
# (docs/tuning.md).
SLOWER_THAN_BLAS = {
    "avx512": frozenset(),
    "avx2": frozenset({"conv2d:packed", "conv2d:winograd_f2x2_packed",
                       "conv2d:winograd_f4x4", "conv2d:direct", "conv2d:strided"}),
    "generic": frozenset({"gemm:packed", "conv2d:packed", "conv2d:winograd_f2x2_packed",
                          "conv2d:winograd_f4x4", "conv2d:direct", "conv2d:strided"}),
}


@dataclass(frozen=True)
class ConvShape:
    images: int
    channels: int
    in_h: int
    in_w: int
    filters: int
    kh: int
    kw: int
    stride: tuple[int, int]
    dilation: tuple[int, int]
    padding: tuple[int, int]
    constant_filter: bool = False

    def key(self) -> str:
        """The problem as text: the tuning database's key and the IR's
        `mlirc.problem` attribute."""
        return "conv2d@" + ",".join(str(v) for v in (
            self.images, self.channels, self.in_h, self.in_w, self.filters, self.kh, self.kw,
            *self.stride, *self.dilation, *self.padding, int(self.constant_filter)))

    @staticmethod
    def from_key(key: str) -> "ConvShape":
        values = [int(v) for v in key.split("@", 1)[1].split(",")]
        if len(values) != 14:
            raise ValueError(f"not a conv2d problem: {key!r}")
        return ConvShape(*values[:7], stride=tuple(values[7:9]), dilation=tuple(values[9:11]),
                         padding=tuple(values[11:13]), constant_filter=bool(values[13]))


def conv_fits(kernel: str, shape: ConvShape) -> bool:
    """Whether the library as built for this host runs `kernel` on `shape`."""
    from . import library
    fits = library.symbol("mlirc_conv2d_kernel_fits", ctypes.c_int64, [ctypes.c_int64] * 14)
    return bool(fits(CONV_KERNELS[kernel], shape.images, shape.channels, shape.in_h,
                     shape.in_w, shape.filters, shape.kh, shape.kw, *shape.stride,
                     *shape.dilation, *shape.padding))


def allowed(op_kind: str, kernel: str) -> bool:
    """The policy's veto: `kernel` is not slower than BLAS on this host."""
    return f"{op_kind}:{kernel}" not in SLOWER_THAN_BLAS[host().level]


def choose_conv(shape: ConvShape, constant_filter: bool, winograd: bool,
                pack_weights: bool) -> str:
    """The first kernel in order of preference that the policy allows and
    the library takes: the direct kernel beats Winograd where it fits (the
    cnn's 16x16 layer: 24 against 40 us), Winograd beats im2col + GEMM on
    every shape it takes, the packed-filter GEMM beats BLAS's on constant
    filters (docs/kernels.md)."""
    order = ["direct", "strided"]
    if constant_filter and winograd:
        if pack_weights:
            order += ["winograd_f4x4", "winograd_f2x2_packed"]
        order.append("winograd_f2x2")
    if constant_filter and pack_weights:
        order.append("packed")
    for kernel in order:
        if allowed("conv2d", kernel) and conv_fits(kernel, shape):
            return kernel
    return "im2col_blas"


def choose_gemm(packable: bool) -> str:
    """`packable`: B is a constant and the shape suits the packed kernel."""
    return "packed" if packable and allowed("gemm", "packed") else "blas"


class KernelOverrides:
    """The user's per-op choices (see the module's docstring)."""

    def __init__(self, text: str = ""):
        self.choices: dict[str, str] = {}
        self.by_problem: dict[str, str] = {}  # "conv2d@<problem>" -> kernel (mlirc tune)
        if not text:
            return
        source = text
        if not text.lstrip().startswith(("{", "[")):
            path = Path(text)
            try:
                source = path.read_text()
            except OSError as error:
                raise InputError(f"kernel choices file {path}: {error.strerror}") from None
        try:
            choices = json.loads(source)
        except json.JSONDecodeError as error:
            raise InputError(f"kernel choices: not JSON ({error.msg}, line {error.lineno})") \
                from None
        if not isinstance(choices, dict):
            raise InputError("kernel choices: a JSON object of op -> kernel name")
        for key, kernel in choices.items():
            if str(key).startswith("conv2d@"):  # a tuned problem (mlirc tune)
                if not isinstance(kernel, str) or kernel not in CONV_KERNELS:
                    raise InputError(f"kernel choices: {key!r}: {kernel!r} is not a kernel")
                self.by_problem[str(key)] = kernel
                continue
            kind = str(key).split(":")[0]
            names = CONV_KERNELS if kind == "conv2d" else GEMM_KERNELS if kind == "gemm" else None
            if names is None or not isinstance(kernel, str) or kernel not in names:
                raise InputError(f"kernel choices: {key!r}: {kernel!r} is not a kernel; "
                                 f"conv2d: {', '.join(CONV_KERNELS)}; gemm: "
                                 f"{', '.join(GEMM_KERNELS)}")
            if ":" in str(key) and not str(key).split(":", 1)[1].isdigit():
                raise InputError(f"kernel choices: {key!r}: keys are 'conv2d', 'gemm', "
                                 "'conv2d:N' or 'gemm:N'")
            self.choices[str(key)] = kernel

    def tuned(self, shape: ConvShape) -> str | None:
        """The measured best kernel of this problem, if it runs here."""
        kernel = self.by_problem.get(shape.key())
        if kernel is None or (kernel in NEEDS_CONSTANT_FILTER and not shape.constant_filter) or \
                not conv_fits(kernel, shape):
            return None
        return kernel

    def get(self, kind: str, index: int) -> tuple[str | None, bool]:
        """(the user's kernel for the op or None, whether it must be run)."""
        numbered = self.choices.get(f"{kind}:{index}")
        if numbered is not None:
            return numbered, True
        return self.choices.get(kind), False


def kernel_runs() -> dict[str, int]:
    """How often each kernel ran in this process (the library's counters)."""
    from . import library
    read = library.symbol("mlirc_kernel_runs", None,
                          [ctypes.POINTER(ctypes.c_int64), ctypes.c_int64])
    counts = (ctypes.c_int64 * RUN_COUNTERS)()
    read(counts, RUN_COUNTERS)
    names = [f"conv2d:{name}" for name in CONV_KERNELS] + \
        ["gemm:blas", "gemm:packed", "conv2d:fallback"]
    return dict(zip(names, list(counts)))


def reset_kernel_runs() -> None:
    from . import library
    library.symbol("mlirc_kernel_runs_reset", None, [])()
