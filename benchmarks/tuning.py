"""Tuned against untuned: `mlirc tune` on each model, then the model
compiled with and without the tuning database, timed interleaved.

    python benchmarks/tuning.py [--models cnn,resnet50,resnet18] [--jobs 1]
    MLIRC_TARGET_ISA=avx2 python benchmarks/tuning.py --out .../tuning-avx2.md

For each model: the tuning run's wall time and what it found (problems,
candidates, median Spearman of predicted vs measured, per-problem speed-up
of the chosen kernel over the compiler's default), and the whole model's
latency untuned / tuned (best of 3 interleaved medians; both checked
against eager PyTorch). Writes benchmarks/results/tuning.md (or --out).
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
import mlirc  # noqa: E402
from dynamic_batch import cpu_name, median_seconds  # noqa: E402
from mlirc.analysis.tuner import tune  # noqa: E402
from mlirc.report import table  # noqa: E402


def load_model(name: str):
    """(model, example inputs): a bundled example, else a zoo model at batch 1."""
    path = ROOT / "examples" / f"{name}.py"
    if path.exists():
        from mlirc.frontends.python_file import load_model_file
        model, example = load_model_file(path)
        return model, tuple(example)
    from zoo import build
    return build(name, 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="cnn,resnet50,resnet18,squeezenet1_1,densenet121")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--db", help="tuning database (default: a fresh one)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/tuning.md"))
    args = parser.parse_args()
    db = args.db or str(Path(tempfile.mkdtemp()) / "tuning.db")
    rows, ratios = [], []
    for name in args.models.split(","):
        model, inputs = load_model(name)
        started = time.perf_counter()
        report = tune(model, inputs, db=db, jobs=args.jobs)
        tune_seconds = time.perf_counter() - started
        untuned = mlirc.compile(model, inputs, cache=False)
        tuned = mlirc.compile(model, inputs, cache=False, tuning_db=db)
        checks = [c.verify(*inputs, rtol=1e-3, atol=1e-4).passed for c in (untuned, tuned)]
        untuned_ms = tuned_ms = float("inf")
        for _ in range(3):
            untuned_ms = min(untuned_ms, 1e3 * median_seconds(lambda: untuned(*inputs),
                                                              args.repeat))
            tuned_ms = min(tuned_ms, 1e3 * median_seconds(lambda: tuned(*inputs), args.repeat))
        correlations = sorted(r.rank_correlation for r in report.problems
                              if r.rank_correlation is not None)
        spearman = f"{correlations[len(correlations) // 2]:.2f} ({len(correlations)})" \
            if correlations else "-"
        changed = sum(1 for r in report.problems if r.best != r.default)
        per_problem = math.exp(sum(math.log(r.speedup) for r in report.problems)
                               / len(report.problems))
        ratios.append(untuned_ms / tuned_ms)
        rows.append([name, len(report.problems), report.measured_now, f"{tune_seconds:.0f}",
                     spearman, changed, f"{per_problem:.2f}", f"{untuned_ms:.3f}",
                     f"{tuned_ms:.3f}", f"{untuned_ms / tuned_ms:.2f}",
                     "yes" if all(checks) else "NO"])
        print(*rows[-1], flush=True)
    header = ["model", "conv problems", "measured", "tune s", "median Spearman (n)",
              "kernels changed", "per-problem speed-up", "untuned ms", "tuned ms",
              "untuned/tuned", "match eager"]
    geomean = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
    text = table(header, rows)
    print(text)
    print(f"geometric mean untuned/tuned: {geomean:.3f}")
    Path(args.out).write_text(
        f"# Tuned vs untuned kernels\n\n`python benchmarks/tuning.py --jobs {args.jobs}`; "
        f"{cpu_name()}, {torch.get_num_threads()} threads; model latency best of 3 "
        f"interleaved medians of {args.repeat} calls.\n\n```\n{text}\n```\n\n"
        f"Geometric mean untuned/tuned latency: {geomean:.3f}.\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
