"""Where a compiled model's time goes, op by op.

    report = mlirc.profile(model, (x,))          # or an ONNX file, like compile()
    print(report.table())

The model is compiled for the JIT with timers around each top-level op of the
entry function after BLAS offload (passes/profile.py): each timed op is one
loop nest (an elementwise or reduction linalg.generic, a pooling window, a
copy) or one BLAS call. Each timer is two clock reads, so the profiled build
is a little slower than the plain one; `wall_seconds` is measured on the
profiled build and `timed_share` says how much of it the timers cover.
"""

from __future__ import annotations

import ctypes
import json
import time
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from . import compiler
from . import ir
from .passes.profile import LABELS_ATTR, ProfileOps
from .kernels import library as kernel_library
from .runtime import inputs as input_checks
from .stages import default_pipeline

@dataclass
class ProfileEntry:
    op: str          # "linalg.generic (elementwise)", "call @mlirc_gemm_f32", ...
    type: str        # the buffer it writes
    where: str       # source line or ONNX node
    seconds: float   # per model call


@dataclass
class Profile:
    entries: list[ProfileEntry]
    wall_seconds: float  # mean per call of the profiled build, over the timed runs
    runs: int

    @property
    def timed_seconds(self) -> float:
        return sum(e.seconds for e in self.entries)

    @property
    def timed_share(self) -> float:
        return self.timed_seconds / self.wall_seconds if self.wall_seconds else 0.0

    def by_op(self) -> list[tuple[str, int, float]]:
        """(op kind, how many, seconds per call), slowest first."""
        grouped: dict[str, list[float]] = defaultdict(list)
        for entry in self.entries:
            grouped[entry.op].append(entry.seconds)
        return sorted(((op, len(s), sum(s)) for op, s in grouped.items()),
                      key=lambda row: -row[2])

    def table(self, top: int = 12) -> str:
        total = self.timed_seconds or 1.0
        lines = [f"wall {self.wall_seconds * 1e3:.3f} ms per call (profiled build, "
                 f"mean of {self.runs}); timers cover {100 * self.timed_share:.0f}%", "",
                 "| op kind | ops | ms | share |", "|---|---|---|---|"]
        lines += [f"| {op} | {count} | {seconds * 1e3:.3f} | {100 * seconds / total:.1f}% |"
                  for op, count, seconds in self.by_op()]
        lines += ["", f"| slowest ops (top {top}) | writes | source | ms | share |",
                  "|---|---|---|---|---|"]
        for entry in sorted(self.entries, key=lambda e: -e.seconds)[:top]:
            lines.append(f"| {entry.op} | `{entry.type}` | {entry.where or '?'} | "
                         f"{entry.seconds * 1e3:.3f} | {100 * entry.seconds / total:.1f}% |")
        return "\n".join(lines)


def profile(model, example_args=(), *, repeat: int = 20, warmup: int = 3,
            blas: bool = True, vectorize: bool = False, **compile_options) -> Profile:
    """Compiles `model` for the JIT with per-op timers and runs it `repeat`
    times on `example_args` (or the model's own example inputs, for ONNX:
    random ones)."""
    pipeline = default_pipeline("jit", compiler._frontend_of(model), blas, vectorize)
    # timed before the parallel stage wraps ops in tile loops
    first = "parallel" if "parallel" in pipeline.names() else "loops"
    pipeline.set_passes(first, [ProfileOps(), *pipeline[first].passes])
    runtime = ctypes.CDLL(kernel_library.load_profile_timers())
    compiled = compiler.compile(model, example_args, backend="jit", pipeline=pipeline,
                                blas=blas, cache=False, **compile_options)
    if example_args:
        arrays, _ = input_checks.flatten_arguments(compiled.signature, example_args, {})
    else:
        shapes, _ = compiled.signature.example_shapes()
        arrays = [_random_input(spec, shape)
                  for spec, shape in zip(compiled.signature.inputs, shapes)]
    labels = json.loads(ir.StringAttr(
        compiled.executable.module.operation.attributes[LABELS_ATTR]).value)
    for _ in range(warmup):
        compiled.run_flat(arrays)
    runtime.mlirc_profile_reset()
    started = time.perf_counter()
    for _ in range(repeat):
        compiled.run_flat(arrays)
    wall_seconds = (time.perf_counter() - started) / repeat
    seconds = np.zeros(len(labels), dtype=np.float64)
    calls = np.zeros(len(labels), dtype=np.int64)
    runtime.mlirc_profile_read(seconds.ctypes.data_as(ctypes.c_void_p),
                               calls.ctypes.data_as(ctypes.c_void_p),
                               ctypes.c_int64(len(labels)))
    entries = [ProfileEntry(label["op"], label["type"], label["where"], float(s) / repeat)
               for label, s in zip(labels, seconds)]
    return Profile(entries, wall_seconds, repeat)


def _random_input(spec, shape) -> np.ndarray:
    rng = np.random.default_rng(0)
    if np.issubdtype(spec.numpy_dtype, np.floating):
        return rng.standard_normal(shape).astype(spec.numpy_dtype)
    return np.zeros(shape, spec.numpy_dtype)
