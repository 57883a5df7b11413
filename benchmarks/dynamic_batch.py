"""A model compiled once with a dynamic batch against static compiles at
each batch size, on the bundled models and the zoo's (benchmarks/zoo.py:
torchvision and Hugging Face models, random weights; `make bench-deps`).

    python benchmarks/dynamic_batch.py [--models mlp,cnn,transformer,resnet50,resnet18]
        [--batches 1,8] [--backend jit] [--repeat 20]

For each model and batch: latency of the dynamic compile / latency of a
static compile at that batch (target: at most 1.15), both checked against
eager PyTorch first, medians of interleaved rounds in one process. Prints a
table and writes benchmarks/results/dynamic-batch.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import mlirc  # noqa: E402
from mlirc.frontends.python_file import load_model_file  # noqa: E402
from mlirc.report import table  # noqa: E402


def median_seconds(function, repeat: int) -> float:
    for _ in range(3):
        function()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        samples.append(time.perf_counter() - start)
    return sorted(samples)[len(samples) // 2]


def cpu_name() -> str:
    try:
        lines = subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines()
        model = next(line.split(":", 1)[1].strip() for line in lines if "Model name" in line)
        flags = next(line for line in lines if line.startswith("Flags"))
        isa = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "SSE"
        forced = os.environ.get("MLIRC_TARGET_ISA")
        return f"{model} ({isa}" + (f", code for {forced} by MLIRC_TARGET_ISA" if forced
                                    else "") + ")"
    except (OSError, StopIteration):
        return platform.processor()


def load_model(name: str):
    """(model, example inputs): a bundled example, else a zoo model."""
    path = ROOT / "examples" / f"{name}.py"
    if path.exists():
        model, example = load_model_file(path)
        return model, tuple(example)
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from zoo import build
    return build(name, 2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="mlp,cnn,transformer,resnet50")
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--backend", default="jit")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/dynamic-batch.md"))
    args = parser.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    rows = []
    for name in args.models.split(","):
        model, example = load_model(name)
        with_batch = lambda batch: tuple(  # noqa: E731
            torch.randn(batch, *t.shape[1:], dtype=t.dtype) if t.is_floating_point()
            else t[:1].repeat(batch, *[1] * (t.dim() - 1)) for t in example)
        dynamic = {index: {0: ("batch", 1, 64)} for index in range(len(example))}
        started = time.perf_counter()
        try:
            compiled_dynamic = mlirc.compile(model, with_batch(2), backend=args.backend,
                                             dynamic_shapes=dynamic, cache=False)
        except mlirc.MlircError as error:  # one model's failure does not stop the rest
            rows.append([name, "-", "-", "-", "-", "-", f"error: {str(error)[:120]}"])
            print(*rows[-1], flush=True)
            continue
        dynamic_seconds = time.perf_counter() - started
        for batch in batches:
            inputs = with_batch(batch)
            compiled_static = mlirc.compile(model, inputs, backend=args.backend, cache=False)
            checks = [compiled.verify(*inputs, rtol=1e-3, atol=1e-4).passed
                      for compiled in (compiled_dynamic, compiled_static)]
            static_ms = dynamic_ms = float("inf")
            for _ in range(3):  # interleaved rounds
                static_ms = min(static_ms, 1e3 * median_seconds(
                    lambda: compiled_static(*inputs), args.repeat))
                dynamic_ms = min(dynamic_ms, 1e3 * median_seconds(
                    lambda: compiled_dynamic(*inputs), args.repeat))
            rows.append([name, batch, f"{static_ms:.3f}", f"{dynamic_ms:.3f}",
                         f"{dynamic_ms / static_ms:.2f}",
                         "yes" if all(checks) else "NO", f"{dynamic_seconds:.1f}"])
            print(*rows[-1], flush=True)
    header = ["model", "batch", "static ms", "dynamic ms", "dynamic/static",
              "both match eager", "dynamic compile s"]
    text = table(header, rows)
    print(text)
    Path(args.out).write_text(
        f"# Dynamic batch vs static compiles\n\n`python benchmarks/dynamic_batch.py "
        f"--backend {args.backend}`; {cpu_name()}, {torch.get_num_threads()} threads; "
        f"best of 3 interleaved medians of {args.repeat} calls.\n\n```\n{text}\n```\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
