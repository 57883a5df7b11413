"""python -m fuzz [--cases N] [--seed S] [--jobs J] [--targets a,b] [--out DIR]
python -m fuzz --replay OUT/findings/crash-mlir-0000.json

Prints a table of outcomes per target; exits 1 when any case crashed, hung,
raised an untyped error or gave a wrong result (each written to OUT/findings).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from . import cases, harness


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzz")
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds a case may take")
    parser.add_argument("--targets", default=None,
                        help=f"comma-separated subset of {','.join(cases.SHARES)}")
    parser.add_argument("--out", default="fuzz-out")
    parser.add_argument("--replay", default=None, help="a findings/*.json file to run alone")
    args = parser.parse_args(argv)
    out = Path(args.out)
    seeds = out / "seeds"
    if not (seeds / "stages.json").exists():
        print(f"building the seed corpus in {seeds} ...", flush=True)
        _build_seeds(seeds)
    if args.replay:
        case = json.loads(Path(args.replay).read_text())["case"]
        result = harness.run_cases([case], seeds, out / "replay", jobs=1, timeout=args.timeout)
        finding = (result.findings or [None])[0]
        print(finding.outcome + ": " + finding.detail if finding else "no finding: " +
              json.dumps({t: dict(c) for t, c in result.counts.items()}))
        return 1 if finding else 0
    targets = args.targets.split(",") if args.targets else None
    started = time.perf_counter()
    todo = cases.generate(seeds, args.cases, args.seed, targets)
    print(f"{len(todo)} cases drawn in {time.perf_counter() - started:.0f} s; "
          f"running on {args.jobs} worker(s)", flush=True)
    summary = harness.run_cases(todo, seeds, out, jobs=args.jobs, timeout=args.timeout,
                                progress=_progress(len(todo)))
    print()
    print(summary.table())
    print(f"\n{summary.total} cases in {summary.seconds:.0f} s; "
          f"{summary.bad()} finding(s) in {out / 'findings'}")
    for result in summary.findings[:20]:
        print(f"  {result.outcome} {result.case['target']}: {result.detail[:160]}")
    return 1 if summary.bad() else 0


def _build_seeds(seeds: Path) -> None:
    # In a child: the parent stays free of torch and MLIR.
    import subprocess
    subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; "
                    "from fuzz import seeds; seeds.write(Path(sys.argv[1]))", str(seeds)],
                   check=True, cwd=harness.ROOT, env=_environment())


def _environment():
    import os
    return dict(os.environ, PYTHONPATH=str(harness.ROOT))


def _progress(total: int):
    started = time.perf_counter()

    def report(summary, result):
        done = summary.total
        if done % 50 and done != total:
            return
        elapsed = time.perf_counter() - started
        eta = elapsed / done * (total - done)
        print(f"  {done}/{total} cases, {summary.bad()} finding(s), "
              f"{elapsed:.0f} s, about {eta:.0f} s left", flush=True)
    return report


if __name__ == "__main__":
    sys.exit(main())
