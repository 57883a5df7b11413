"""The tuning database: what `mlirc tune` measured, kept in SQLite.

One row per (problem, machine, versions, candidate, threads): the measured
seconds and the cost model's prediction. `threads` is how many the
measurement ran on (a process pool gives each worker a share of the cores);
a compile prefers rows measured on as many threads as it will run on. `problem` is an op's problem key
(`ConvShape.key()`, e.g. "conv2d@1,64,56,56,64,3,3,1,1,1,1,1,1,1"),
`machine` the CPU model, the ISA level mlirc targets and the usable cores,
`versions` mlirc's and torch-mlir's. The tuner's decision per problem goes
into a second table, `choices`; a compile reads the decisions for this
machine and these versions (`mlirc.compile(..., tuning_db=PATH)`,
`--tuning-db`).

Nothing read back is trusted: a file that is not this database is an
InputError naming it, and rows with an unknown kernel or a time that is not
a positive finite number are ignored.
"""

from __future__ import annotations

import math
import sqlite3
import time
from pathlib import Path

from ..errors import InputError
from ..settings import thread_count, usable_cores

SCHEMA = """CREATE TABLE IF NOT EXISTS measurements (
    problem TEXT NOT NULL, machine TEXT NOT NULL, versions TEXT NOT NULL,
    candidate TEXT NOT NULL, threads INTEGER NOT NULL, seconds REAL NOT NULL,
    predicted REAL, measured_at REAL NOT NULL,
    PRIMARY KEY (problem, machine, versions, candidate, threads));
CREATE TABLE IF NOT EXISTS choices (
    problem TEXT NOT NULL, machine TEXT NOT NULL, versions TEXT NOT NULL,
    threads INTEGER NOT NULL, kernel TEXT NOT NULL,
    PRIMARY KEY (problem, machine, versions, threads));
CREATE TABLE IF NOT EXISTS iree_roots (
    problem TEXT PRIMARY KEY, matcher TEXT NOT NULL, operand_types TEXT NOT NULL,
    translation_info TEXT NOT NULL)"""


def machine_key() -> str:
    from ..kernels.host import host
    info = host()
    return f"{info.model}|{info.level}|{usable_cores()} cores"


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
            self.connection.executescript(SCHEMA)
            columns = {row[1] for row in self.connection.execute(
                "PRAGMA table_info(measurements)")}
        except sqlite3.Error as error:
            raise InputError(f"tuning database {self.path}: not a readable mlirc tuning "
                             f"database ({error})") from None
        if not {"problem", "machine", "versions", "candidate", "threads", "seconds"} <= columns:
            raise InputError(f"tuning database {self.path}: its measurements table has "
                             f"other columns ({', '.join(sorted(columns))})")

    def close(self) -> None:
        self.connection.close()

    def record(self, problem: str, candidate: str, seconds: float,
               predicted: float | None = None, threads: int = 1) -> None:
        with self.connection:
            self.connection.execute(
                "INSERT OR REPLACE INTO measurements VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (problem, self.machine, self.versions, candidate, int(threads),
                 float(seconds), None if predicted is None else float(predicted), time.time()))

    def measured(self, problem: str, threads: int | None = None
                 ) -> dict[str, tuple[float, float | None]]:
        """candidate -> (seconds, predicted) for this machine and versions,
        measured on `threads` threads (any, when None: the fastest)."""
        rows = self.connection.execute(
            "SELECT candidate, seconds, predicted, threads FROM measurements WHERE problem = ? "
            "AND machine = ? AND versions = ?", (problem, self.machine, self.versions))
        found: dict[str, tuple[float, float | None]] = {}
        for candidate, seconds, predicted, used in rows:
            if _valid(candidate, seconds) and (threads is None or used == threads) and \
                    (candidate not in found or seconds < found[candidate][0]):
                found[candidate] = (seconds, predicted)
        return found

    def choose(self, problem: str, kernel: str, threads: int) -> None:
        """Records the tuner's decision for a problem (the fastest candidate,
        unless the compiler's default is within the noise margin of it)."""
        with self.connection:
            self.connection.execute("INSERT OR REPLACE INTO choices VALUES (?, ?, ?, ?, ?)",
                                    (problem, self.machine, self.versions, int(threads),
                                     kernel))

    def best_choices(self, threads: int | None = None) -> dict[str, str]:
        """problem -> the tuner's kernel on this machine: the decision made
        on `threads` threads where the problem has one, else any."""
        from ..kernels.choice import CONV_KERNELS
        rows = [row for row in self.connection.execute(
            "SELECT problem, kernel, threads FROM choices WHERE machine = ? AND versions = ?",
            (self.machine, self.versions))
            if row[1] in CONV_KERNELS and isinstance(row[0], str)
            and row[0].startswith("conv2d@")]
        chosen: dict[str, str] = {}
        for problem, kernel, used in sorted(rows, key=lambda row: row[2] == threads):
            chosen[problem] = kernel  # rows on `threads` come last and win
        return chosen

    def remember_root(self, problem: str, matcher: str, operand_types: list[str],
                      translation_info: str) -> None:
        """What a tuning spec needs to find an IREE dispatch root again."""
        with self.connection:
            self.connection.execute("INSERT OR REPLACE INTO iree_roots VALUES (?, ?, ?, ?)",
                                    (problem, matcher, "\n".join(operand_types),
                                     translation_info))

    def iree_spec_entries(self, threads: int | None = None) -> list[tuple[str, list[str], str]]:
        """(matcher, operand types, compilation_info) of each IREE root the
        tuner gave a config on this machine (decisions on `threads` threads
        where there are some)."""
        from .iree_dispatch import LoweringConfig
        rows = self.connection.execute(
            "SELECT c.problem, c.kernel, c.threads, r.matcher, r.operand_types, "
            "r.translation_info FROM choices c JOIN iree_roots r ON c.problem = r.problem "
            "WHERE c.machine = ? AND c.versions = ?", (self.machine, self.versions))
        chosen: dict[str, tuple[str, list[str], str]] = {}
        for problem, key, used, matcher, types, translation in sorted(
                rows, key=lambda row: row[2] == threads):
            config = LoweringConfig.from_key(key)
            if config is None or not str(translation).startswith(
                    "#iree_codegen.translation_info<"):
                continue
            info = (f"#iree_codegen.compilation_info<lowering_config = {config.attribute()}, "
                    f"translation_info = {translation}>")
            chosen[problem] = (matcher, str(types).split("\n"), info)
        return list(chosen.values())


def _valid(candidate, seconds) -> bool:
    from ..kernels.choice import CONV_KERNELS
    from .iree_dispatch import LoweringConfig
    known = candidate in CONV_KERNELS or LoweringConfig.from_key(candidate) is not None
    return known and isinstance(seconds, (int, float)) and \
        math.isfinite(seconds) and seconds > 0


def kernel_choices(path) -> dict[str, str]:
    """The `kernels=` entries a compile gets from the database at `path`
    (none when the file does not exist yet)."""
    if not Path(path).exists():
        raise InputError(f"tuning database {path}: no such file (run `mlirc tune` first)")
    database = TuningDB(path)
    try:
        return database.best_choices(thread_count())
    finally:
        database.close()


def iree_spec_flags(db_path) -> list[str]:
    """The iree-compile flag that applies the database's IREE choices for
    this machine (none when it holds none), the spec written once under the
    cache folder by its content."""
    import hashlib

    from ..settings import cache_dir
    from .iree_dispatch import tuning_spec
    if not Path(db_path).exists():
        raise InputError(f"tuning database {db_path}: no such file (run `mlirc tune` first)")
    database = TuningDB(db_path)
    try:
        entries = database.iree_spec_entries(thread_count())
    finally:
        database.close()
    if not entries:
        return []
    text = tuning_spec(entries)
    path = cache_dir() / "iree-specs" / f"{hashlib.sha256(text.encode()).hexdigest()[:20]}.mlir"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        partial.write_text(text)
        partial.replace(path)
    return [f"--iree-codegen-tuning-spec-path={path}"]
