"""mlirc against PyTorch eager, torch.compile, ONNX Runtime and IREE on the
bundled models, ResNet-50 (random weights) and a 1024^3 f32 matmul.

    python benchmarks/peers.py [--models mlp,cnn] [--rounds 7] [--out benchmarks/results]

Prints one ratio table (eager = 1.00; lower is faster), writes it as markdown
and JSON, saves a bar chart PNG and appends mlirc's ratios to ONNX Runtime,
with the commit and the CPU, to history.csv (`--note` says what changed).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import platform
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from mlirc import bench  # noqa: E402
from mlirc.frontends.python_file import load_model_file  # noqa: E402
from mlirc.report import table  # noqa: E402

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
MODELS = ["mlp", "cnn", "transformer", "resnet50", "matmul"]


def chart(rows: list[list[str]], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    models = list(dict.fromkeys(r[0] for r in rows))
    runners = list(dict.fromkeys(r[1] for r in rows))
    figure, axes = plt.subplots(figsize=(11, 4.5))
    width = 0.8 / len(runners)
    for index, runner in enumerate(runners):
        values = [next((float(r[3]) for r in rows if r[0] == m and r[1] == runner and r[3] != "-"),
                       0.0) for m in models]
        axes.bar([m + index * width for m in range(len(models))], values, width, label=runner)
    axes.axhline(1.0, color="black", linewidth=0.8)
    axes.set_xticks([m + 0.4 - width / 2 for m in range(len(models))], models)
    axes.set_ylabel("latency / eager PyTorch (lower is faster)")
    axes.set_yscale("log")
    axes.legend(fontsize=8, ncol=3)
    axes.set_title(f"mlirc vs peers ({platform.machine()}, {time.strftime('%Y-%m-%d')})")
    figure.tight_layout()
    figure.savefig(path, dpi=120)


HISTORY_COLUMNS = ["date", "time", "commit", "cpu", "isa", "code", "mlp_vs_ort", "cnn_vs_ort",
                   "transformer_vs_ort", "resnet50_vs_ort", "matmul_jit_vs_torch_mm_gflops",
                   "aot_vs_ort"]


def latency(rows: list[list[str]], model: str, runner: str) -> float | None:
    for row in rows:
        if row[0] == model and row[1] == runner and row[2] != "-":
            return float(row[2])
    return None


def commit() -> str:
    """The short hash of HEAD, with '+' when the tree has changes."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, text=True,
                              capture_output=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=root, text=True, capture_output=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""
    return head + ("+" if dirty else "")


def append_history(path: Path, rows: list[list[str]], extra: dict, note: str,
                   code: str) -> None:
    """One line per run: mlirc-jit / ONNX Runtime per model, aot where given."""
    from mlirc.kernels.host import host
    machine = host()
    ratios, aot = {}, []
    for model in ["mlp", "cnn", "transformer", "resnet50"]:
        ort = latency(rows, model, "onnxruntime")
        for runner in ["mlirc-jit", "mlirc-aot"]:
            mine = latency(rows, model, runner)
            if ort and mine:
                if runner == "mlirc-jit":
                    ratios[model] = f"{mine / ort:.2f}"
                else:
                    aot.append(f"{model} {mine / ort:.2f}")
    rates = extra.get("matmul_gflops", {})
    matmul = (f"{rates['mlirc-jit'] / rates['eager']:.2f}"
              if rates.get("mlirc-jit") and rates.get("eager") else "")
    new = not path.exists()
    with path.open("a", newline="") as handle:
        writer = csv.writer(handle)
        if new:
            writer.writerow(HISTORY_COLUMNS)
        writer.writerow([time.strftime("%Y-%m-%d"), time.strftime("%H:%M"), code,
                         f"{machine.model}, {os.cpu_count()} cores", machine.level, note,
                         *(ratios.get(m, "") for m in ["mlp", "cnn", "transformer", "resnet50"]),
                         matmul, "; ".join(aot)])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--runners", default=",".join(bench.RUNNERS))
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    parser.add_argument("--note", default="", help="what this run's code changed (history.csv)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    code = commit()  # before this run's own files change the tree
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows, extra = [], {}
    for name in args.models.split(","):
        model, inputs = load_model_file(EXAMPLES / f"{name}.py")
        print(f"{name}:", flush=True)
        calls = max(1, args.calls // 5) if name == "resnet50" else args.calls
        results = bench.benchmark(model, inputs, args.runners.split(","), args.rounds, calls)
        rows += bench.table(name, results)
        if name == "matmul":
            extra["matmul_gflops"] = bench.gflops(2 * 1024 ** 3, results)
    text = table(bench.HEADERS, rows, "llrrrrl")
    print("\n" + text)
    if "matmul_gflops" in extra:
        rates = extra["matmul_gflops"]
        print("\n1024^3 matmul GFLOP/s: " + ", ".join(f"{k} {v:.1f}" for k, v in rates.items()))
    from mlirc.kernels import library as blas
    from mlirc.kernels.host import host
    stamp = f"{time.strftime('%Y-%m-%d %H:%M')}, {host().describe()}, " \
            f"{os.cpu_count()} cores; BLAS: {blas.describe()}"
    print(f"\n{stamp}")
    (out / "peers.md").write_text(f"Measured {stamp}; median of {args.rounds} interleaved "
                                  f"rounds.\n\n```\n{text}\n```\n")
    (out / "peers.json").write_text(json.dumps({"when": stamp, "rows": rows, **extra}, indent=1))
    chart(rows, out / "peers.png")
    append_history(out / "history.csv", rows, extra, args.note, code)
    print(f"\nwrote {out}/peers.md, peers.json, peers.png; appended to {out}/history.csv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
