"""Runs fuzz cases in worker processes and counts what happened.

Each worker (`python -m fuzz.worker`) runs cases one after another and answers
one JSON line per case. A worker that dies mid-case is a *crash*, one that
does not answer within the timeout is a *hang* (it is killed); either way a
fresh worker takes the next case. Everything that is not `ok`, `typed` or
`changed` is a finding, written to `OUT/findings/` with a command that replays
it alone.
"""

from __future__ import annotations

import json
import os
import queue
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

# ok: ran and matched the reference; typed: refused with an mlirc error;
# changed: a mutation that changes the program ran and gave other numbers.
GOOD_OUTCOMES = ("ok", "typed", "changed")
BAD_OUTCOMES = ("crash", "hang", "untyped", "wrong")
ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Result:
    case: dict
    outcome: str
    detail: str = ""
    seconds: float = 0.0


class Worker:
    """One worker process; restarted after a crash or hang."""

    def __init__(self, seeds: Path, log: Path):
        self.seeds, self.log = seeds, log
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        environment = dict(os.environ, PYTHONPATH=str(ROOT), MLIRC_NUM_THREADS="1")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "fuzz.worker", str(self.seeds)], cwd=ROOT,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=open(self.log, "w"), env=environment)

    def run(self, case: dict, timeout: float) -> Result:
        if self.process is None or self.process.poll() is not None:
            self.start()
        started = time.perf_counter()
        try:
            self.process.stdin.write((json.dumps(case) + "\n").encode())
            self.process.stdin.flush()
        except BrokenPipeError:
            pass
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        line = self.process.stdout.readline() if ready else b""
        seconds = time.perf_counter() - started
        if line:
            answer = json.loads(line)
            return Result(case, answer["outcome"], answer.get("detail", ""), seconds)
        if not ready:
            self.stop()
            return Result(case, "hang", f"no answer in {timeout:.0f} s", seconds)
        code = self.process.wait()
        self.process = None
        return Result(case, "crash", f"{_status(code)}; {self._log_tail()}", seconds)

    def _log_tail(self) -> str:
        try:
            lines = self.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(lines[-3:])[-400:]

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


def _status(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit {code}"


@dataclass
class Summary:
    counts: dict = field(default_factory=lambda: defaultdict(Counter))
    findings: list = field(default_factory=list)
    seconds: float = 0.0
    folder: Path | None = None  # where findings are written as they come

    def add(self, result: Result) -> None:
        self.counts[result.case["target"]][result.outcome] += 1
        if result.outcome in BAD_OUTCOMES:
            if self.folder is not None:
                name = f"{result.outcome}-{result.case['target']}-{len(self.findings):04d}.json"
                (self.folder / name).write_text(json.dumps(
                    {"case": result.case, "outcome": result.outcome,
                     "detail": result.detail}, indent=1))
            self.findings.append(result)

    @property
    def total(self) -> int:
        return sum(sum(c.values()) for c in self.counts.values())

    def bad(self) -> int:
        return len(self.findings)

    def table(self) -> str:
        columns = GOOD_OUTCOMES + BAD_OUTCOMES
        rows = [f"| target | cases | {' | '.join(columns)} |",
                "|---|" + "---:|" * (len(columns) + 1)]
        totals = Counter()
        for target in sorted(self.counts):
            counts = self.counts[target]
            totals.update(counts)
            rows.append(f"| {target} | {sum(counts.values())} | "
                        + " | ".join(str(counts[c]) for c in columns) + " |")
        rows.append(f"| **all** | {sum(totals.values())} | "
                    + " | ".join(str(totals[c]) for c in columns) + " |")
        return "\n".join(rows)


def run_cases(cases: list[dict], seeds: Path, out: Path, jobs: int = 2,
              timeout: float = 120.0, progress=None) -> Summary:
    """Runs `cases` on `jobs` workers; writes findings and summary.json to `out`."""
    out.mkdir(parents=True, exist_ok=True)
    todo: queue.Queue = queue.Queue()
    for case in cases:
        todo.put(case)
    findings = out / "findings"
    shutil.rmtree(findings, ignore_errors=True)  # a previous run's
    findings.mkdir()
    summary, lock = Summary(folder=findings), threading.Lock()
    started = time.perf_counter()

    def drain(index: int) -> None:
        worker = Worker(seeds, out / f"worker-{index}.log")
        try:
            while True:
                try:
                    case = todo.get_nowait()
                except queue.Empty:
                    return
                result = worker.run(case, timeout)
                with lock:
                    summary.add(result)
                    if progress:
                        progress(summary, result)
        finally:
            worker.stop()

    threads = [threading.Thread(target=drain, args=(i,)) for i in range(max(1, jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    summary.seconds = time.perf_counter() - started
    _write(summary, out)
    return summary


def _write(summary: Summary, out: Path) -> None:
    (out / "summary.json").write_text(json.dumps({
        "cases": summary.total, "seconds": round(summary.seconds, 1),
        "counts": {t: dict(c) for t, c in summary.counts.items()},
        "findings": [f"{r.outcome} {r.case['target']}: {r.detail[:300]}"
                     for r in summary.findings]}, indent=1))
