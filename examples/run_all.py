"""Compiles every bundled model with mlirc, runs it, checks it against eager
PyTorch and prints one table. This is what `make run` does.

    python examples/run_all.py [--backend jit] [--repeat 50]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import mlirc  # noqa: E402
from mlirc.frontends.python_file import load_model_file  # noqa: E402
from mlirc.report import table  # noqa: E402

EXAMPLES = Path(__file__).resolve().parent
MODELS = ["mlp", "cnn", "transformer"]


def median_seconds(function, repeat: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        function()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        samples.append(time.perf_counter() - start)
    return sorted(samples)[len(samples) // 2]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="jit")
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(torch.get_num_threads())

    rows, all_passed = [], True
    for name in MODELS:
        model, inputs = load_model_file(EXAMPLES / f"{name}.py")
        print(f"compiling {name} ...", flush=True)
        compiled = mlirc.compile(model, inputs, backend=args.backend)
        report = compiled.verify(*inputs, rtol=1e-4, atol=1e-5)
        all_passed &= report.passed
        arrays = [t.numpy() for t in inputs]
        with torch.no_grad():
            eager = median_seconds(lambda: model(*inputs), args.repeat)
        native = median_seconds(lambda: compiled(*arrays), args.repeat)
        rows.append([name, f"{compiled.compile_seconds:.2f}", f"{report.max_abs_error:.2e}",
                     "PASS" if report.passed else "FAIL",
                     f"{native * 1000:.3f}", f"{eager * 1000:.3f}", f"{native / eager:.2f}"])

    print()
    print(table(["model", "compile s", "max abs err", "verify", f"mlirc {args.backend} ms",
                 "eager ms", "mlirc/eager"], rows))
    print(f"\nlatency: median of {args.repeat} runs; verify: rtol=1e-4, atol=1e-5 against eager PyTorch")
    return 0 if all_passed else 1


if __name__ == "__main__":
    sys.exit(main())
