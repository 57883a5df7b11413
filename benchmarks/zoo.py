"""mlirc on real models it was not written for: torchvision classifiers and
Hugging Face transformers built from their configs, random weights, against
eager PyTorch, torch.compile, ONNX Runtime, OpenVINO and mlirc's backends.

    python benchmarks/zoo.py [--models resnet18,gpt2] [--batches 1,8]
        [--threads 0,1] [--runners eager,onnxruntime,mlirc-jit] [--rounds 5]

Each (model, batch, threads) runs in its own process, so a model that one
runner cannot handle, or that crashes, costs only its own row; threads 0 is
every runner's default, 1 caps every runner at one thread. Outputs are
checked against eager (bench.py). Prints the latency of each runner over
ONNX Runtime's (lower is faster) and the geometric mean, and writes
benchmarks/results/zoo.{md,json,png}. Needs `make bench-deps` (torchvision
without its CUDA operators, transformers, openvino).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

VISION = ["resnet18", "resnet50", "mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0",
          "squeezenet1_1", "shufflenet_v2_x1_0", "densenet121", "regnet_y_400mf",
          "convnext_tiny", "vit_b_16", "swin_t"]
TEXT = ["bert", "gpt2", "distilbert"]
MODELS = VISION + TEXT
SEQUENCE = 128
RUNNERS = ["eager", "torch.compile", "onnxruntime", "openvino", "mlirc-jit", "mlirc-aot",
           "mlirc-iree-cpu"]


def last_hidden_state(model):
    """A transformer whose one output is its last hidden state (the runners
    compare and time one tensor, not a ModelOutput)."""
    import torch

    class LastHiddenState(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, input_ids):
            # an explicit mask: without one, GPT-2's mask code calls
            # aten::diff, which the ONNX exporter lacks
            mask = torch.ones_like(input_ids)
            return self.model(input_ids=input_ids, attention_mask=mask).last_hidden_state
    return LastHiddenState()


def build(name: str, batch: int):
    """(model in eval mode, example inputs), random weights, seeded."""
    import torch
    from torchvision_cpu import import_torchvision
    torch.manual_seed(0)
    # also before transformers, which imports torchvision when it is there
    models = import_torchvision().models
    if name in VISION:
        model = getattr(models, name)(weights=None)
        return model.eval(), (torch.randn(batch, 3, 224, 224),)
    import transformers
    if name == "bert":
        model = transformers.BertModel(transformers.BertConfig())
    elif name == "gpt2":
        model = transformers.GPT2Model(transformers.GPT2Config())
    elif name == "distilbert":
        model = transformers.DistilBertModel(transformers.DistilBertConfig())
    else:
        raise SystemExit(f"zoo: unknown model '{name}' (choose from {', '.join(MODELS)})")
    model.config.use_cache = False
    ids = torch.randint(0, model.config.vocab_size, (batch, SEQUENCE))
    # the wrapper in eval mode too: an exporter that restores the wrapper's
    # mode after tracing would otherwise switch the model's dropout on
    return last_hidden_state(model.eval()).eval(), (ids,)


def run_one(name: str, batch: int, threads: int, runners: list[str], rounds: int,
            calls: int) -> dict:
    """In the child process: one model's results as JSON-able rows."""
    import warnings
    warnings.filterwarnings("ignore")
    import torch
    if threads:
        torch.set_num_threads(threads)
    from mlirc import bench
    model, inputs = build(name, batch)
    results = bench.benchmark(model, inputs, runners, rounds, calls,
                              log=lambda line: print(line, file=sys.stderr, flush=True),
                              threads=threads or None)
    return {r.name: {"ms": r.latency * 1000 if r.samples else None, "error": r.error,
                     "compile_s": r.compile_seconds, "max_error": r.max_error}
            for r in results}


def child(args) -> int:
    rows = run_one(args.one, args.batch, args.thread, args.runners.split(","), args.rounds,
                   args.calls)
    print(json.dumps(rows, default=lambda v: None if isinstance(v, float) and math.isnan(v)
                     else str(v)))
    return 0


def measure(name: str, batch: int, threads: int, args) -> dict:
    env = dict(os.environ)
    if threads:
        env.update(MLIRC_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    command = [sys.executable, __file__, "--one", name, "--batch", str(batch),
               "--thread", str(threads), "--runners", args.runners, "--rounds",
               str(args.rounds), "--calls", str(args.calls)]
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True,
                              timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {args.timeout} s"}
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {done.returncode}: {last[:160]}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def ratio_table(results: list[dict], runners: list[str]) -> tuple[list[str], list[list[str]]]:
    """Rows of latency / ONNX Runtime latency per runner, and geometric means."""
    shown = [r for r in runners if r != "onnxruntime"]
    headers = ["model", "batch", "threads", "ORT ms", *shown]
    rows, logs = [], {r: [] for r in shown}
    for entry in results:
        runs = entry["runs"]
        ort = (runs.get("onnxruntime") or {}).get("ms")
        row = [entry["model"], str(entry["batch"]), str(entry["threads"] or "default"),
               f"{ort:.2f}" if ort else "-"]
        for runner in shown:
            run = runs.get(runner) or {}
            if "error" in runs and not run:
                row.append("failed")
            elif run.get("ms") and ort:
                value = run["ms"] / ort
                logs[runner].append(math.log(value))
                mismatch = run.get("max_error") is not None and run["max_error"] > 1
                row.append(f"{value:.2f}" + ("!" if mismatch else ""))
            else:
                row.append("error" if run.get("error") else "-")
        rows.append(row)
    rows.append(["geomean", "", "", "", *(f"{math.exp(sum(v) / len(v)):.2f}" if v else "-"
                                          for v in logs.values())])
    return headers, rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--batches", default="1")
    parser.add_argument("--threads", default="0,1", help="0: every runner's default")
    parser.add_argument("--runners", default=",".join(RUNNERS))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=3)
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per model")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--thread", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        return child(args)
    runners = args.runners.split(",")
    if "onnxruntime" not in runners:
        raise SystemExit("zoo: the table is relative to ONNX Runtime: keep it in --runners")
    results = []
    for name in args.models.split(","):
        if name not in MODELS:
            raise SystemExit(f"zoo: unknown model '{name}' (choose from {', '.join(MODELS)})")
        for batch in map(int, args.batches.split(",")):
            for threads in map(int, args.threads.split(",")):
                started = time.perf_counter()
                runs = measure(name, batch, threads, args)
                results.append({"model": name, "batch": batch, "threads": threads, "runs": runs})
                print(f"{name} batch {batch} threads {threads or 'default'}: "
                      f"{time.perf_counter() - started:.0f} s"
                      + (f" ({runs['error']})" if "error" in runs else ""), flush=True)
    from mlirc.kernels.host import host
    from mlirc.report import table
    headers, rows = ratio_table(results, runners)
    text = table(headers, rows, "lll" + "r" * (len(headers) - 3))
    stamp = (f"{time.strftime('%Y-%m-%d %H:%M')}, {host().describe()}, {os.cpu_count()} cores; "
             f"median of {args.rounds} rounds; latency / ONNX Runtime's, lower is faster; "
             "'!' marks outputs that differ from eager beyond rtol 1e-4 / atol 1e-5")
    print(f"\n{text}\n\n{stamp}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "zoo.md").write_text(f"Measured {stamp}.\n\n```\n{text}\n```\n")
    (out / "zoo.json").write_text(json.dumps({"when": stamp, "results": results}, indent=1,
                                             default=str))
    chart(headers, rows[:-1], out / "zoo.png")
    print(f"wrote {out}/zoo.md, zoo.json, zoo.png")
    return 0


def chart(headers: list[str], rows: list[list[str]], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    runners = headers[4:]
    labels = [f"{r[0]} b{r[1]} t{r[2]}" for r in rows]
    figure, axes = plt.subplots(figsize=(max(8, len(rows) * 0.8), 4.5))
    width = 0.8 / max(1, len(runners))
    for index, runner in enumerate(runners):
        values = []
        for row in rows:
            text = row[4 + index].rstrip("!")
            values.append(float(text) if text.replace(".", "", 1).isdigit() else 0.0)
        axes.bar([i + index * width for i in range(len(rows))], values, width, label=runner)
    axes.axhline(1.0, color="black", linewidth=0.8)
    axes.set_xticks([i + 0.4 - width / 2 for i in range(len(rows))], labels, rotation=60,
                    ha="right", fontsize=7)
    axes.set_ylabel("latency / ONNX Runtime (lower is faster)")
    axes.set_yscale("log")
    axes.legend(fontsize=8, ncol=3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


if __name__ == "__main__":
    sys.exit(main())
