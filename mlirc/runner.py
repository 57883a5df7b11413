"""The one runner that executes every pipeline.

Each pass of a stage runs in turn, timed. When one fails, the stage's input IR
goes to a unique file in the dump folder, and a typed PipelineError names the
stage, the pass, the source location and a one-line command that reproduces
the failure — no wall of IR.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from . import ir
from .errors import PipelineError
from .passes import base as pass_base
from .stages import Stage


@dataclass
class StageResult:
    name: str
    text: str                      # IR after the stage; parses back unless `elided`
    seconds: float
    pass_seconds: list[tuple[str, float]] = field(default_factory=list)
    op_counts: Counter = field(default_factory=Counter)
    elided: bool = False           # weights over ir.KEPT_RESOURCE_LIMIT left out


def snapshot(name: str, module: ir.Module, seconds: float,
             pass_seconds: list | None = None) -> StageResult:
    """Records a stage's IR, with source locations, so that it parses back (a
    restart point) and failures still point at the model's source. Large
    weights are elided (see ir.KEPT_RESOURCE_LIMIT)."""
    text = ir.module_text(module, debug_info=True, resource_limit=ir.KEPT_RESOURCE_LIMIT)
    return StageResult(name, text, seconds, pass_seconds or [],
                       ir.op_counts_by_dialect(module), bool(ir.elided_resources(text)))


def default_dump_dir() -> Path:
    return Path(os.environ.get("MLIRC_DUMP_DIR") or
                Path(tempfile.gettempdir()) / "mlirc-dumps")


def run_stage(module: ir.Module, stage: Stage, input_text: str | None = None,
              dump_dir: str | Path | None = None) -> StageResult:
    """Runs `stage` on `module` in place. The failure report needs the IR from
    before the stage: `input_text` when the caller has it in full, else a copy
    taken here (cheap: weights are shared, and printed only if a pass fails)."""
    before = module.operation.clone() if input_text is None else None
    timings = []
    start = time.perf_counter()
    for index, pass_ in enumerate(stage.passes):
        pass_start = time.perf_counter()
        _run_pass(module, stage, index, input_text, before, dump_dir)
        timings.append((pass_.name, time.perf_counter() - pass_start))
    return snapshot(stage.name, module, time.perf_counter() - start, timings)


def _run_pass(module: ir.Module, stage: Stage, index: int, input_text: str | None,
              before, dump_dir) -> None:
    pass_ = stage.passes[index]
    context = module.context
    pass_base.python_pass_failures.clear()
    with context, ir.capture_diagnostics(context) as diagnostics:
        try:
            pass_manager = ir.PassManager("builtin.module")
            pass_.add_to(pass_manager)
        except ValueError as error:
            raise PipelineError(stage.name, pass_.name, "",
                                f"not a valid pass: {_first_line(str(error).split('error: ')[-1])}") from None
        try:
            pass_manager.run(module.operation)
            return
        except ir.MLIRError as error:
            # Diagnostics reach either our handler or the exception, by pass.
            diagnostics.extend(ir.diagnostics_of(error))
    if input_text is None:
        input_text = ir.module_text(before, debug_info=True)
    raise _failure_report(stage, index, input_text, diagnostics, dump_dir)


def _failure_report(stage: Stage, index: int, input_text: str,
                    diagnostics: list[ir.Diagnostic], dump_dir) -> PipelineError:
    pass_ = stage.passes[index]
    errors = [d for d in diagnostics if d.severity == "error"]
    message = _first_line(errors[0].message) if errors else "the pass failed"
    python_failures = pass_base.python_pass_failures
    if python_failures:
        _, exception = python_failures[-1]
        message = _first_line(f"{type(exception).__name__}: {exception}")
        location = getattr(exception, "location", "")
    else:
        location = next((d.location for d in errors if d.location), "")
    ir_file = _write_unique(dump_dir, stage.name, input_text)
    pipeline = ",".join(p.text for p in stage.passes[:index + 1])
    repro = (f"{_tool_command(stage.repro_tool)} "
             f"--pass-pipeline={shlex.quote(f'builtin.module({pipeline})')} {ir_file}")
    return PipelineError(stage.name, pass_.name, location, message, str(ir_file), repro)


def _first_line(text: str, limit: int = 300) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[:limit] + "..."


def _write_unique(dump_dir, stage_name: str, text: str) -> Path:
    folder = Path(dump_dir) if dump_dir else default_dump_dir()
    folder.mkdir(parents=True, exist_ok=True)
    handle, path = tempfile.mkstemp(prefix=f"{stage_name}-input-", suffix=".mlir", dir=folder)
    with os.fdopen(handle, "w") as file:
        file.write(text)
    return Path(path)


def _tool_command(tool: str) -> str:
    """The tool by name if it is on PATH, else its path beside this Python."""
    if shutil.which(tool):
        return tool
    beside = Path(sys.executable).parent / tool
    return str(beside) if beside.exists() else tool
