"""MLIR text frontend: a `.mlir` file (or string) at any stage."""

from __future__ import annotations

import re
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


def parse_source(source, context: ir.Context | None = None):
    """Parses a path or MLIR text; returns (module, name for messages)."""
    text, name = read_text(source)
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
