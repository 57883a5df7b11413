"""MLIR text frontend: a `.mlir` file (or string) at any stage."""

from __future__ import annotations

import hashlib
import re
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from .. import ir
from ..errors import InputError
from ..runtime import signature as sig


def looks_like_mlir_text(source) -> bool:
    return isinstance(source, str) and ("func.func" in source or "module" in source) \
        and "\n" in source


def read_text(source) -> tuple[str, str]:
    """(text, name for messages) of a path or MLIR text."""
    if isinstance(source, (str, Path)) and not looks_like_mlir_text(str(source)):
        path = Path(source)
        if not path.exists():
            raise InputError(f"no such file: {path}")
        if not path.is_file():
            raise InputError(f"{path}: not a file")
        try:
            return path.read_text(encoding="utf-8"), str(path)
        except UnicodeDecodeError as error:
            raise InputError(f"{path}: not MLIR text (byte {error.start} is not UTF-8)") from None
        except OSError as error:
            raise InputError(f"{path}: cannot read: {error.strerror or error}") from None
    return str(source), "<string>"


def is_stablehlo(source) -> bool:
    """Whether MLIR text (or a file holding it) is in the StableHLO dialect."""
    try:
        text, _ = read_text(source)
    except (InputError, OSError):
        return False
    return re.search(r"\bstablehlo\.[a-z_]+\b", text) is not None and "!torch." not in text


def import_text(source, context: ir.Context | None = None):
    """Parses a path or MLIR text; returns (module, Signature, name)."""
    module, name = parse_source(source, context)
    return module, sig.read(module), name


# The last line of every .mlir file mlirc writes as a restart point (stage
# dumps, `mlirc compile -o`): a digest of the text above it. Text that carries
# a matching one was printed by MLIR's own printer and is parsed in process;
# any other text is parsed first in a child process (parse_child.py), because
# MLIR's parser aborts or segfaults on some malformed input (an alignment-0
# resource blob, `permutation = [1,.0]`) and would take the caller with it.
TRUST_MARK = "// mlirc-printed sha256:"

# Texts this process has already seen parse safely in a child.
_checked_digests: set[str] = set()


def restart_point(text: str) -> str:
    """`text` with the mark that lets mlirc parse it again without a child."""
    body = text if text.endswith("\n") else text + "\n"
    return f"{body}{TRUST_MARK}{hashlib.sha256(body.encode()).hexdigest()}\n"


def _printed_by_mlirc(text: str) -> bool:
    body, mark, digest = text.rstrip("\n").rpartition("\n" + TRUST_MARK)
    if not mark:
        return False
    return hashlib.sha256((body + "\n").encode()).hexdigest() == digest.strip()


def _seconds_to_parse(size: int) -> float:
    return 60.0 + 30.0 * size / (100 << 20)


def check_parse_in_child(text: str, name: str, path: Path | None = None) -> None:
    """Raises InputError when MLIR's parser (or, for llvm-dialect text, the
    translation to LLVM IR) dies or hangs on `text`; returns when it does not."""
    digest = hashlib.sha256(text.encode()).hexdigest()
    if digest in _checked_digests:
        return
    child = Path(__file__).with_name("parse_child.py")
    with tempfile.TemporaryDirectory(prefix="mlirc-parse-") as folder:
        if path is None:
            path = Path(folder) / "input.mlir"
            path.write_text(text, encoding="utf-8")
        try:
            done = subprocess.run([sys.executable, "-I", str(child), str(path)],
                                  capture_output=True, timeout=_seconds_to_parse(len(text)))
        except subprocess.TimeoutExpired:
            raise InputError(f"cannot parse {name}: the MLIR parser did not finish in "
                             f"{_seconds_to_parse(len(text)):.0f} s") from None
    if done.returncode != 0:
        raise InputError(f"cannot parse {name}: the MLIR parser {_death(done)} on this "
                         "text (checked in a child process; the text is malformed)")
    _checked_digests.add(digest)


def _death(done: subprocess.CompletedProcess) -> str:
    if done.returncode < 0:
        try:
            return f"crashed ({signal.Signals(-done.returncode).name})"
        except ValueError:
            return f"crashed (signal {-done.returncode})"
    last = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
    return f"failed (exit {done.returncode}: {last[0][:200]})"


def parse_source(source, context: ir.Context | None = None):
    """Parses a path or MLIR text; returns (module, name for messages)."""
    text, name = read_text(source)
    if not _printed_by_mlirc(text):
        check_parse_in_child(text, name, Path(source) if name != "<string>" else None)
    missing = ir.elided_resources(text)
    if missing:
        raise InputError(f"{name} lacks the data of {len(missing)} weight(s) (e.g. "
                         f"{sorted(missing)[0]}): stage IR kept in memory leaves weights over "
                         "1 MiB out; write restartable stages with dump_dir / --dump-dir")
    context = context or ir.new_context()
    try:
        module = ir.parse_module(text, context)
    except ir.MLIRError as error:
        first = error.error_diagnostics[0] if error.error_diagnostics else None
        line = ir.source_location(first.location).replace("-:", "line ") if first else ""
        message = first.message.strip().splitlines()[0] if first else "parse error"
        raise InputError(f"cannot parse {name}{', ' + line if line else ''}: {message}") from None
    return module, name
