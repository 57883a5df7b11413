"""Where mlirc's JIT spends its time on the bundled models: a per-op profile
(mlirc.profile) of each, written to benchmarks/results/profile.md.

    python benchmarks/op_profile.py [--models mlp,cnn,transformer,resnet50] [--repeat 500]

A name that is not a bundled example is built by benchmarks/zoo.py at batch 1
(`--models mobilenet_v2,shufflenet_v2_x1_0 --out ...`).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import mlirc  # noqa: E402
from mlirc.frontends.python_file import load_model_file  # noqa: E402
from mlirc.kernels.host import host  # noqa: E402

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load_model(name: str):
    """(model, example inputs): a bundled example, else a zoo model at batch 1."""
    path = EXAMPLES / f"{name}.py"
    if path.exists():
        return load_model_file(path)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from zoo import build  # torchvision / transformers: `make bench-deps`
    return build(name, 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="mlp,cnn,transformer,resnet50")
    # calls per model, ResNet-50 a tenth of them: means over many calls, so
    # that a rare stall (a core lost for a 4 ms scheduler tick) weighs little
    parser.add_argument("--repeat", type=int, default=500)
    parser.add_argument("--top", type=int, default=8)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "profile.md"))
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    sections = [f"# Per-op profile of mlirc-jit\n\nMeasured {time.strftime('%Y-%m-%d')} on "
                f"{host().describe()}, {os.cpu_count()} cores, "
                f"`python benchmarks/op_profile.py`. Times are per model call; shares are of "
                f"the timed ops.\n"]
    for name in args.models.split(","):
        model, inputs = load_model(name)
        repeat = args.repeat if name in ("mlp", "cnn", "transformer") else max(1, args.repeat // 10)
        report = mlirc.profile(model, inputs, repeat=repeat)
        section = f"## {name}\n\n{report.table(top=args.top)}\n"
        print(section, flush=True)
        sections.append(section)
    Path(args.out).write_text("\n".join(sections))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
