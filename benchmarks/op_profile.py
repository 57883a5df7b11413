"""Where mlirc's JIT spends its time on the bundled models: a per-op profile
(mlirc.profile) of each, written to benchmarks/results/profile.md.

    python benchmarks/op_profile.py [--models mlp,cnn,transformer,resnet50] [--repeat 500]
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import mlirc  # noqa: E402
from mlirc.frontends.python_file import load_model_file  # noqa: E402

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


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
                f"{platform.machine()} ({platform.processor() or 'cpu'}), "
                f"`python benchmarks/op_profile.py`. Times are per model call; shares are of "
                f"the timed ops.\n"]
    for name in args.models.split(","):
        model, inputs = load_model_file(EXAMPLES / f"{name}.py")
        repeat = max(1, args.repeat // 10) if name == "resnet50" else args.repeat
        report = mlirc.profile(model, inputs, repeat=repeat)
        section = f"## {name}\n\n{report.table(top=args.top)}\n"
        print(section, flush=True)
        sections.append(section)
    Path(args.out).write_text("\n".join(sections))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
