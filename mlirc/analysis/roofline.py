"""`mlirc analyze`: each linalg op of a model on this machine's roofline.

    report = mlirc.analyze(model, (x,), measure=True)
    print(report.table())
    report.plot("roofline.png")

For each op of the `linalg` stage (analysis/opcost.py): its loops, work,
compulsory bytes and arithmetic intensity, and the time the roofline allows
(work at the peak rate, or bytes at the bandwidth of where they live,
whichever is longer: the last-level cache for an op whose data fits in half
of it, else memory; analysis/machine.py). With `measure`, the model also runs under the
profiler (mlirc/profiler.py) and each source line's measured time is set
against what the roofline allows for its ops: the profiler times the ops
after fusion and offload, which map to source lines, not to single linalg
ops.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from dataclasses import dataclass

from .machine import Machine, machine
from .opcost import OpCost, analyze_text


@dataclass
class SourceLine:
    where: str
    ops: int
    flops: float
    bytes: float
    attainable_seconds: float
    measured_seconds: float | None

    @property
    def achieved_gflops(self) -> float | None:
        if not self.measured_seconds:
            return None
        return self.flops / self.measured_seconds / 1e9

    @property
    def roofline_share(self) -> float | None:
        """Attainable time over measured time: 1.0 is on the roofline."""
        if not self.measured_seconds:
            return None
        return self.attainable_seconds / self.measured_seconds


@dataclass
class Analysis:
    machine: Machine
    ops: list[OpCost]
    measured: dict[str, float] | None = None  # source line -> seconds per call
    measured_wall: float | None = None

    def attainable_seconds(self, op: OpCost) -> float:
        if op.kind == "constant":
            return 0.0
        return max(op.flops / (self.machine.peak_gflops * 1e9),
                   op.bytes / (self.machine.bandwidth_for(op.bytes) * 1e9))

    def bound(self, op: OpCost) -> str:
        if op.kind == "constant":
            return "-"
        if op.flops / (self.machine.peak_gflops * 1e9) >= self.attainable_seconds(op):
            return "compute"
        return "cache" if self.machine.bandwidth_for(op.bytes) != self.machine.bandwidth_gbs \
            else "memory"

    def by_source_line(self) -> list[SourceLine]:
        grouped: dict[str, list[OpCost]] = defaultdict(list)
        for op in self.ops:
            grouped[op.where].append(op)
        lines = [SourceLine(where, len(ops), sum(o.flops for o in ops),
                            sum(o.bytes for o in ops),
                            sum(self.attainable_seconds(o) for o in ops),
                            (self.measured or {}).get(where))
                 for where, ops in grouped.items()]
        return sorted(lines, key=lambda line: -(line.measured_seconds or line.attainable_seconds))

    def table(self, top: int = 20) -> str:
        total_flops = sum(op.flops for op in self.ops)
        total_bytes = sum(op.bytes for op in self.ops)
        bound_seconds = sum(self.attainable_seconds(op) for op in self.ops)
        lines = [self.machine.describe(),
                 f"{len(self.ops)} linalg ops: {total_flops / 1e9:.3f} GFLOP, "
                 f"{total_bytes / 1e6:.2f} MB compulsory traffic; roofline time "
                 f"{bound_seconds * 1e3:.3f} ms"]
        if self.measured_wall:
            lines[-1] += f"; measured {self.measured_wall * 1e3:.3f} ms per call"
        lines += ["", "| # | op | kind | loops | iterators | GFLOP | MB | FLOP/B | bound | "
                      "roofline ms | source |", "|---|---|---|---|---|---|---|---|---|---|---|"]
        heaviest = sorted(self.ops, key=lambda o: -self.attainable_seconds(o))[:top]
        for op in sorted(heaviest, key=lambda o: o.index):
            iterators = "".join("p" if i == "parallel" else "r" for i in op.iterators)
            lines.append(
                f"| {op.index} | {op.name.replace('linalg.', '')} | {op.kind} | "
                f"{'x'.join(map(str, op.loops))} | {iterators} | {op.flops / 1e9:.4f} | "
                f"{op.bytes / 1e6:.3f} | {op.intensity:.2f} | {self.bound(op)} | "
                f"{self.attainable_seconds(op) * 1e3:.4f} | {_short(op.where)} |")
        if self.measured is not None:
            lines += ["", "| source line | ops | GFLOP | roofline ms | measured ms | "
                          "GFLOP/s | of roofline |", "|---|---|---|---|---|---|---|"]
            for line in self.by_source_line()[:top]:
                measured = "-" if line.measured_seconds is None else \
                    f"{line.measured_seconds * 1e3:.4f}"
                achieved = "-" if line.achieved_gflops is None else f"{line.achieved_gflops:.1f}"
                share = "-" if line.roofline_share is None else f"{100 * line.roofline_share:.0f}%"
                lines.append(f"| {_short(line.where)} | {line.ops} | {line.flops / 1e9:.4f} | "
                             f"{line.attainable_seconds * 1e3:.4f} | {measured} | {achieved} | "
                             f"{share} |")
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {"machine": self.machine.__dict__,
                "ops": [{**op.__dict__, "intensity": op.intensity, "bound": self.bound(op),
                         "attainable_seconds": self.attainable_seconds(op)} for op in self.ops],
                "measured": self.measured, "measured_wall": self.measured_wall}

    def plot(self, path) -> str:
        """Writes the roofline PNG: the machine's two ceilings, each op where
        its intensity puts it (hollow: what the roofline allows), and with
        measurements each source line at its achieved rate (filled)."""
        from ..errors import InputError
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            raise InputError("the roofline plot needs matplotlib (pip install matplotlib)") \
                from None
        figure, axes = plt.subplots(figsize=(8, 5.5))
        intensities = [op.intensity for op in self.ops if op.flops > 0] or [1.0]
        low, high = min(min(intensities), self.machine.ridge) / 4, \
            max(max(intensities), self.machine.ridge) * 4
        xs = [low, self.machine.ridge, high]
        axes.plot(xs, [self.machine.attainable_gflops(x) for x in xs], "k-", lw=1.5,
                  label="roofline (memory)")
        if self.machine.cache_bandwidth_gbs:
            cache_ridge = self.machine.peak_gflops / self.machine.cache_bandwidth_gbs
            cache_xs = [min(low, cache_ridge), cache_ridge, high]
            axes.plot(cache_xs, [self.machine.attainable_gflops(
                x, self.machine.cache_bandwidth_gbs) for x in cache_xs], "k--", lw=1,
                label="roofline (last-level cache)")
        colours = {"contraction": "tab:blue", "convolution": "tab:red",
                   "elementwise": "tab:green", "reduction": "tab:orange"}
        for kind, colour in colours.items():
            points = [op for op in self.ops if op.kind == kind and op.flops > 0]
            if points:
                axes.scatter([op.intensity for op in points],
                             [self.machine.attainable_gflops(
                                 op.intensity, self.machine.bandwidth_for(op.bytes))
                              for op in points],
                             facecolors="none", edgecolors=colour, label=f"{kind} (bound)")
        if self.measured:
            measured = [line for line in self.by_source_line()
                        if line.achieved_gflops and line.flops > 0 and line.bytes > 0]
            axes.scatter([line.flops / line.bytes for line in measured],
                         [line.achieved_gflops for line in measured], c="k", s=14,
                         label="measured (per source line)")
        axes.set_xscale("log")
        axes.set_yscale("log")
        axes.set_xlabel("arithmetic intensity (FLOP / byte of compulsory traffic)")
        axes.set_ylabel("GFLOP/s")
        axes.set_title(self.machine.describe(), fontsize=8)
        axes.legend(fontsize=7)
        figure.tight_layout()
        figure.savefig(path, dpi=110)
        plt.close(figure)
        return str(path)


def analyze(model, example_args=(), *, measure: bool = False, repeat: int = 10,
            **compile_options) -> Analysis:
    """The roofline analysis of `model` (anything `mlirc.compile` takes)."""
    from .. import compiler
    compiled = compiler.compile(model, example_args, stop_at="linalg", cache=False,
                                **compile_options)
    report = Analysis(machine(), analyze_text(compiled.full_text("linalg")))
    if measure:
        from ..profiler import profile
        profiled = profile(model, example_args, repeat=repeat, **compile_options)
        seconds: dict[str, float] = defaultdict(float)
        for entry in profiled.entries:
            seconds[entry.where] += entry.seconds
        report.measured = dict(seconds)
        report.measured_wall = profiled.wall_seconds
    return report


def write_json(report: Analysis, path) -> None:
    with open(path, "w") as handle:
        json.dump(report.to_json(), handle, indent=1)


def _short(where: str) -> str:
    """file.py:line of a source location (the path left out)."""
    if not where:
        return "?"
    return os.path.basename(where) if "/" in where else where
