"""The tuning database: what `mlirc tune` measured, kept in SQLite.

One row per (problem, machine, versions, candidate): the measured seconds
and the cost model's prediction. `problem` is an op's problem key
(`ConvShape.key()`, e.g. "conv2d@1,64,56,56,64,3,3,1,1,1,1,1,1,1"),
`machine` the CPU model, the ISA level mlirc targets and the usable cores,
`versions` mlirc's and torch-mlir's. A compile reads the best measured
candidate of each problem for this machine and these versions
(`mlirc.compile(..., tuning_db=PATH)`, `--tuning-db`).

Nothing read back is trusted: a file that is not this database is an
InputError naming it, and rows with an unknown kernel or a time that is not
a positive finite number are ignored.
"""

from __future__ import annotations

import math
import os
import sqlite3
import time
from pathlib import Path

from ..errors import InputError

SCHEMA = """CREATE TABLE IF NOT EXISTS measurements (
    problem TEXT NOT NULL, machine TEXT NOT NULL, versions TEXT NOT NULL,
    candidate TEXT NOT NULL, seconds REAL NOT NULL, predicted REAL,
    measured_at REAL NOT NULL,
    PRIMARY KEY (problem, machine, versions, candidate))"""


def machine_key() -> str:
    from ..kernels.host import host
    info = host()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{info.model}|{info.level}|{cores} cores"


def versions_key() -> str:
    from importlib import metadata

    from ..version import __version__
    try:
        torch_mlir = metadata.version("torch-mlir")
    except metadata.PackageNotFoundError:
        torch_mlir = "?"
    return f"mlirc {__version__}|torch-mlir {torch_mlir}"


class TuningDB:
    def __init__(self, path, machine: str | None = None, versions: str | None = None):
        self.path = Path(path)
        self.machine = machine or machine_key()
        self.versions = versions or versions_key()
        if self.path.is_dir():
            raise InputError(f"tuning database {self.path}: is a folder")
        try:
            self.connection = sqlite3.connect(self.path, timeout=30)
            self.connection.execute(SCHEMA)
            columns = {row[1] for row in self.connection.execute(
                "PRAGMA table_info(measurements)")}
        except sqlite3.Error as error:
            raise InputError(f"tuning database {self.path}: not a readable mlirc tuning "
                             f"database ({error})") from None
        if not {"problem", "machine", "versions", "candidate", "seconds"} <= columns:
            raise InputError(f"tuning database {self.path}: its measurements table has "
                             f"other columns ({', '.join(sorted(columns))})")

    def close(self) -> None:
        self.connection.close()

    def record(self, problem: str, candidate: str, seconds: float,
               predicted: float | None = None) -> None:
        with self.connection:
            self.connection.execute(
                "INSERT OR REPLACE INTO measurements VALUES (?, ?, ?, ?, ?, ?, ?)",
                (problem, self.machine, self.versions, candidate, float(seconds),
                 None if predicted is None else float(predicted), time.time()))

    def measured(self, problem: str) -> dict[str, tuple[float, float | None]]:
        """candidate -> (seconds, predicted) for this machine and versions."""
        rows = self.connection.execute(
            "SELECT candidate, seconds, predicted FROM measurements WHERE problem = ? "
            "AND machine = ? AND versions = ?", (problem, self.machine, self.versions))
        return {candidate: (seconds, predicted) for candidate, seconds, predicted in rows
                if _valid(candidate, seconds)}

    def best_choices(self) -> dict[str, str]:
        """problem -> the fastest candidate measured on this machine."""
        best: dict[str, tuple[float, str]] = {}
        rows = self.connection.execute(
            "SELECT problem, candidate, seconds FROM measurements WHERE machine = ? "
            "AND versions = ?", (self.machine, self.versions))
        for problem, candidate, seconds in rows:
            if _valid(candidate, seconds) and isinstance(problem, str) and \
                    problem.startswith("conv2d@") and \
                    (problem not in best or seconds < best[problem][0]):
                best[problem] = (seconds, candidate)
        return {problem: candidate for problem, (_, candidate) in best.items()}


def _valid(candidate, seconds) -> bool:
    from ..kernels.choice import CONV_KERNELS
    return candidate in CONV_KERNELS and isinstance(seconds, (int, float)) and \
        math.isfinite(seconds) and seconds > 0


def kernel_choices(path) -> dict[str, str]:
    """The `kernels=` entries a compile gets from the database at `path`
    (none when the file does not exist yet)."""
    if not Path(path).exists():
        raise InputError(f"tuning database {path}: no such file (run `mlirc tune` first)")
    database = TuningDB(path)
    try:
        return database.best_choices()
    finally:
        database.close()
