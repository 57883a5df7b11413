"""This machine's roofline: its peak arithmetic rate and memory bandwidth,
measured once by micro-benchmarks and cached per machine.

- peak: an f32 matrix product (1024^3, numpy's BLAS on all the cores it
  uses), best of several runs: the rate well-tuned code reaches here, not
  the datasheet's;
- bandwidth: a copy of 128 MiB (read + write counted), best of several
  runs: the rate data streams from and to memory; and a copy of a quarter
  of the last-level cache (its size read from sysfs): the rate from there.

The cache key is the CPU model, its feature flags, the usable core count and
the ISA level mlirc targets (`MLIRC_TARGET_ISA`), so another machine, or the
AVX2 path of this one, measures afresh. A cached file that does not read as
positive numbers is measured again, never trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass

from ..settings import cache_dir, usable_cores

FORMAT = 2


@dataclass(frozen=True)
class Machine:
    cpu: str
    level: str                # the ISA level mlirc generates code for
    cores: int
    peak_gflops: float        # f32 operations per second / 1e9
    bandwidth_gbs: float      # bytes per second / 1e9, from and to memory
    last_level_cache: int = 0         # bytes (0: unknown)
    cache_bandwidth_gbs: float = 0.0  # a copy that stays in the last-level cache

    def bandwidth_for(self, working_set: float) -> float:
        """The bandwidth data of this many bytes streams at: from the
        last-level cache when it fits in half of it (weights and activations
        stay there from call to call), else from memory."""
        if self.cache_bandwidth_gbs and working_set <= self.last_level_cache / 2:
            return self.cache_bandwidth_gbs
        return self.bandwidth_gbs

    @property
    def ridge(self) -> float:
        """The arithmetic intensity (operations per byte) above which an op
        can be compute-bound."""
        return self.peak_gflops / self.bandwidth_gbs

    def attainable_gflops(self, intensity: float, bandwidth: float | None = None) -> float:
        return min(self.peak_gflops, intensity * (bandwidth or self.bandwidth_gbs))

    def describe(self) -> str:
        return (f"{self.cpu} ({self.level}, {self.cores} cores): peak "
                f"{self.peak_gflops:.1f} GFLOP/s (f32 GEMM), memory "
                f"{self.bandwidth_gbs:.1f} GB/s, last-level cache "
                f"{self.last_level_cache >> 20} MiB at {self.cache_bandwidth_gbs:.1f} GB/s "
                f"(copies); ridge {self.ridge:.1f} FLOP/byte")


def machine(refresh: bool = False) -> Machine:
    """This machine's roofline, from the cache or measured now (about 2 s)."""
    from ..kernels.host import host
    info = host()
    cores = usable_cores()
    key = hashlib.sha256(json.dumps([FORMAT, info.model, _cpu_flags(), cores, info.level])
                         .encode()).hexdigest()[:16]
    path = cache_dir() / "machine" / f"{key}.json"
    if not refresh:
        cached = _read(path)
        if cached is not None:
            return cached
    cache = _last_level_cache()
    measured = Machine(info.model, info.level, cores, _peak_gflops(),
                       _bandwidth_gbs(128 << 20), cache,
                       _bandwidth_gbs(cache // 4) if cache else 0.0)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(json.dumps(asdict(measured)))
    os.replace(temporary, path)
    return measured


def _read(path) -> Machine | None:
    try:
        data = json.loads(path.read_text())
        found = Machine(str(data["cpu"]), str(data["level"]), int(data["cores"]),
                        float(data["peak_gflops"]), float(data["bandwidth_gbs"]),
                        int(data["last_level_cache"]), float(data["cache_bandwidth_gbs"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not (0 < found.peak_gflops < 1e6 and 0 < found.bandwidth_gbs < 1e5):
        return None
    return found


def _cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith(("flags", "Features")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def _best_seconds(run, repeat: int) -> float:
    run()
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


def _peak_gflops(size: int = 1024) -> float:
    import numpy as np
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    out = np.empty((size, size), dtype=np.float32)
    seconds = _best_seconds(lambda: np.matmul(a, b, out=out), 5)
    return 2.0 * size ** 3 / seconds / 1e9


def _bandwidth_gbs(size: int) -> float:
    """A copy of `size` bytes split in source and target halves."""
    import numpy as np
    source = np.ones(max(size // 8, 1024), dtype=np.float32)
    target = np.empty_like(source)
    repeat = 5 if size > (64 << 20) else 50
    seconds = _best_seconds(lambda: np.copyto(target, source), repeat)
    return 2.0 * source.nbytes / seconds / 1e9


def _last_level_cache() -> int:
    """The largest data cache of CPU 0, from sysfs (0 where there is none)."""
    import glob
    largest = 0
    for folder in glob.glob("/sys/devices/system/cpu/cpu0/cache/index*"):
        try:
            with open(f"{folder}/type") as kind, open(f"{folder}/size") as size:
                if kind.read().strip() == "Instruction":
                    continue
                text = size.read().strip().upper()
        except OSError:
            continue
        scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
        digits = text.rstrip("KMG")
        if digits.isdigit():
            largest = max(largest, int(digits) * scale)
    return largest
