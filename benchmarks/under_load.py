"""mlirc against ONNX Runtime on the bundled models, on a quiet machine and
with a background process keeping one core busy (as a server sharing its
cores would).

    python benchmarks/under_load.py [--models mlp,cnn,transformer,resnet50] [--rounds 5]

For each model: mlirc `jit` latency / ONNX Runtime latency quiet and under
load (both runners interleaved in one process, default threads), and how
much worse mlirc's ratio gets under load (target: at most 1.5x). Writes
benchmarks/results/under-load.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from mlirc import bench  # noqa: E402
from mlirc.frontends.python_file import load_model_file  # noqa: E402
from mlirc.report import table  # noqa: E402

RUNNERS = ["onnxruntime", "mlirc-jit"]


def busy_process() -> subprocess.Popen:
    """A process that keeps one core busy until killed."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def ratios(model, inputs, rounds: int, calls: int) -> float:
    results = {r.name: r for r in bench.benchmark(model, inputs, RUNNERS, rounds, calls,
                                                  log=lambda *_: None)}
    for result in results.values():
        if result.error:
            raise SystemExit(f"{result.name}: {result.error}")
    return results["mlirc-jit"].latency, results["onnxruntime"].latency


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default="mlp,cnn,transformer,resnet50")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = parser.parse_args(argv)
    rows = []
    for name in args.models.split(","):
        model, inputs = load_model_file(ROOT / "examples" / f"{name}.py")
        calls = max(1, args.calls // 5) if name == "resnet50" else args.calls
        quiet = ratios(model, inputs, args.rounds, calls)
        load = busy_process()
        try:
            time.sleep(0.5)
            loaded = ratios(model, inputs, args.rounds, calls)
        finally:
            load.kill()
            load.wait()
        quiet_ratio, loaded_ratio = quiet[0] / quiet[1], loaded[0] / loaded[1]
        rows.append([name, f"{quiet[0] * 1e3:.3f}", f"{quiet[1] * 1e3:.3f}", f"{quiet_ratio:.2f}",
                     f"{loaded[0] * 1e3:.3f}", f"{loaded[1] * 1e3:.3f}", f"{loaded_ratio:.2f}",
                     f"{loaded_ratio / quiet_ratio:.2f}"])
        print(" | ".join(rows[-1]), flush=True)
    headers = ["model", "mlirc ms", "ORT ms", "ratio", "mlirc ms (load)", "ORT ms (load)",
               "ratio (load)", "load / quiet"]
    text = table(headers, rows, "lrrrrrrr")
    from mlirc.kernels.host import host
    stamp = (f"{time.strftime('%Y-%m-%d %H:%M')}, {host().describe()}, {os.cpu_count()} cores, "
             f"MLIRC_TARGET_ISA={os.environ.get('MLIRC_TARGET_ISA', 'host')}")
    print(f"\n{text}\n\n{stamp}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "under-load.md").write_text(
        f"Measured {stamp}; default threads, median of {args.rounds} interleaved rounds; "
        "load: one process spinning on one core.\n\n```\n" + text + "\n```\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
