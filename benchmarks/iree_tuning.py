"""IREE with mlirc's tile sizes against IREE's own, on zoo models.

    python benchmarks/iree_tuning.py [--models resnet18,bert] [--jobs 2]
        [--rounds 5] [--out benchmarks/results/iree-tuning.md]

For each model (in its own process): `mlirc tune --backend iree-cpu` into a
fresh database (every dispatch root's candidates measured alone), then the
model compiled by iree-cpu with IREE's configs and with the tuned ones
(a tuning spec), both checked against eager and timed interleaved in one
process (median of 10 calls, best of `rounds`). Prints and writes the
table: latencies, their ratio (above 1 = tuned faster), the tuning run's
wall time, and the cost model's median rank correlation. Names the CPU and
the ISA level (MLIRC_TARGET_ISA=avx2 measures IREE's AVX2 code too).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

MODELS = ["resnet18", "squeezenet1_1", "mobilenet_v2", "resnet50", "bert", "distilbert"]


def measure_one(name: str, jobs: int, rounds: int) -> dict:
    import torch

    import mlirc
    from mlirc.analysis import iree_tuner
    from zoo import build
    model, args = build(name, 1)
    with torch.no_grad():
        expected = model(*args)
    database = Path(tempfile.mkdtemp(prefix="mlirc-iree-tuning-")) / "tuning.db"
    started = time.perf_counter()
    report = iree_tuner.tune(model, args, db=database, jobs=jobs, validate=False)
    tune_seconds = time.perf_counter() - started
    default = mlirc.compile(model, args, backend="iree-cpu", cache=False)
    tuned = mlirc.compile(model, args, backend="iree-cpu", cache=False, tuning_db=database)
    errors = {}
    for label, compiled in (("default", default), ("tuned", tuned)):
        got = torch.as_tensor(compiled(*args))
        errors[label] = float((got - expected).abs().max())
        if not torch.allclose(got, expected, rtol=1e-4, atol=1e-4):
            raise SystemExit(f"{name}: {label} output differs from eager by {errors[label]}")
    best = {"default": math.inf, "tuned": math.inf}
    for _ in range(rounds):  # interleaved: both see the same phases of a busy host
        for label, compiled in (("default", default), ("tuned", tuned)):
            best[label] = min(best[label], compiled.time(*args, repeat=10))
    correlations = sorted(r.rank_correlation for r in report.problems
                          if r.rank_correlation is not None)
    return {"model": name, "default_ms": best["default"] * 1e3,
            "tuned_ms": best["tuned"] * 1e3, "speedup": best["default"] / best["tuned"],
            "tune_s": tune_seconds, "roots": len(report.problems),
            "measured": report.measured_now, "failed": len(report.failed),
            "spearman": correlations[len(correlations) // 2] if correlations else None,
            "max_error": max(errors.values()),
            "table": report.table()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/iree-tuning.md"))
    parser.add_argument("--one", help=argparse.SUPPRESS)  # a worker: one model, JSON out
    options = parser.parse_args()
    if options.one:
        print("RESULT " + json.dumps(measure_one(options.one, options.jobs, options.rounds)))
        return
    from mlirc.analysis.machine import machine
    from mlirc.kernels.host import host
    rows = []
    for name in options.models.split(","):
        started = time.perf_counter()
        run = subprocess.run([sys.executable, __file__, "--one", name, "--jobs",
                              str(options.jobs), "--rounds", str(options.rounds)],
                             capture_output=True, text=True)
        found = [line for line in run.stdout.splitlines() if line.startswith("RESULT ")]
        if not found:
            why = (run.stderr.strip().splitlines() or ["no output"])[-1][:200]
            print(f"{name}: failed ({why})", flush=True)
            rows.append({"model": name, "error": why})
            continue
        row = json.loads(found[0][len("RESULT "):])
        rows.append(row)
        print(f"{name}: IREE {row['default_ms']:.2f} ms, tuned {row['tuned_ms']:.2f} ms "
              f"({row['speedup']:.2f}x); tuning {row['tune_s']:.0f} s "
              f"({time.perf_counter() - started:.0f} s in all)", flush=True)
    info = host()
    lines = [f"# IREE (iree-cpu) with mlirc's tile sizes vs IREE's own", "",
             f"{machine().describe()}; mlirc and IREE generate for {info.level} "
             f"(machine: {info.machine_level}); `python benchmarks/iree_tuning.py --models "
             f"{options.models} --jobs {options.jobs} --rounds {options.rounds}`", "",
             "| model | IREE configs ms | mlirc's ms | speed-up | tune s | roots | candidates "
             "| failed | median Spearman |", "|---|---|---|---|---|---|---|---|---|"]
    speedups = []
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['model']} | failed: {row['error']} |")
            continue
        speedups.append(row["speedup"])
        rho = "-" if row["spearman"] is None else f"{row['spearman']:.2f}"
        lines.append(f"| {row['model']} | {row['default_ms']:.2f} | {row['tuned_ms']:.2f} | "
                     f"{row['speedup']:.2f}x | {row['tune_s']:.0f} | {row['roots']} | "
                     f"{row['measured']} | {row['failed']} | {rho} |")
    if speedups:
        geomean = math.exp(sum(math.log(s) for s in speedups) / len(speedups))
        lines += ["", f"geometric mean speed-up: {geomean:.2f}x over {len(speedups)} models"]
    lines += ["", "## Per-dispatch reports", ""]
    for row in rows:
        if "table" in row:
            lines += [f"### {row['model']}", "", row["table"], ""]
    Path(options.out).parent.mkdir(parents=True, exist_ok=True)
    Path(options.out).write_text("\n".join(lines) + "\n")
    (Path(options.out).with_suffix(".json")).write_text(json.dumps(rows, indent=1))
    print("\n".join(lines[:len(rows) + 8]))
    print(f"wrote {options.out}")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main()
