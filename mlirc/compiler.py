"""`mlirc.compile`: from a model (or saved IR) through the stages to a runnable model."""

from __future__ import annotations

import re
import time
from pathlib import Path

from . import artifact, ir
from . import cache as compile_cache
from .analysis.support import unsupported_ops_error
from .backends import get_backend
from .errors import InputError, PipelineError
from .frontends import mlir_text
from .frontends import onnx as onnx_frontend
from .frontends import torch as torch_frontend
from .runner import StageResult, run_stage, snapshot
from .runtime.compiled_model import CompiledModel
from .stages import Pipeline, default_pipeline


def compile(model, example_args=(), *, backend: str = "jit",
            stop_at: str | None = None, start_from: str | None = None,
            dump_dir: str | Path | None = None, pipeline: Pipeline | None = None,
            opt_level: int = 3, name: str | None = None,
            input_shapes: dict | None = None,
            iree_flags: tuple[str, ...] = (), cache: bool | None = None,
            on_stage=None) -> CompiledModel:
    """Compiles `model` for `backend`.

    model: a torch.nn.Module (with `example_args`), an ONNX model (path or
      ModelProto), or a path to / text of a `.mlir` module at stage
      `start_from` (default: the first stage).
    stop_at: the last stage to run; the result then holds IR but cannot run.
    dump_dir: write each stage's IR there as `NN-stage.mlir`.
    pipeline: a custom Pipeline (see `mlirc.default_pipeline`).
    input_shapes: ONNX only: {input name: shape} fixing dynamic dimensions.
    name: the C entry point of the aot backend (`_mlir_ciface_<name>`).
    iree_flags: extra iree-compile flags for the iree-* backends.
    cache: reuse and store compiled artifacts (default: on unless
      MLIRC_NO_CACHE=1); not used with stop_at, dump_dir or on_stage, which
      want every stage run.
    on_stage: called with each StageResult as it completes (progress).
    """
    started = time.perf_counter()
    frontend = "onnx" if onnx_frontend.is_onnx_source(model) else "torch"
    pipeline = pipeline or default_pipeline(backend, frontend)
    if stop_at is not None:
        pipeline.index(stop_at)  # fails early on an unknown name
    context = ir.new_context()
    reference = None

    if _is_torch_module(model):
        if start_from not in (None, pipeline.names()[0]):
            raise InputError("start_from applies to .mlir input, not to a torch module")
        import_start = time.perf_counter()
        module, signature = torch_frontend.import_module(model, example_args, context)
        first = snapshot(pipeline.names()[0], module, time.perf_counter() - import_start)
        start_from, reference = pipeline.names()[0], model
    elif frontend == "onnx":
        import_start = time.perf_counter()
        module, signature = onnx_frontend.import_model(model, context, input_shapes)
        first = snapshot(pipeline.names()[0], module, time.perf_counter() - import_start)
        start_from = pipeline.names()[0]
    elif isinstance(model, (str, Path)):
        module, signature, _ = mlir_text.import_text(model, context)
        start_from = start_from or pipeline.names()[0]
        pipeline.index(start_from)
        first = snapshot(start_from, module, 0.0)
    else:
        raise InputError(f"cannot compile a {type(model).__name__}: expected a "
                         "torch.nn.Module, an ONNX model, or a path to (or text of) "
                         "a .mlir module")

    results = [first]
    _dump(dump_dir, pipeline, first)
    if on_stage:
        on_stage(first)
    options = {"opt_level": opt_level, "name": name, "iree_flags": list(iree_flags)}
    source_hash = artifact.sha256(first.text.encode())
    key = None
    if (cache if cache is not None else compile_cache.enabled_by_default()) \
            and stop_at is None and dump_dir is None and on_stage is None:
        fingerprint = getattr(get_backend(backend), "fingerprint",
                              lambda *_: "")(options, signature)
        key = compile_cache.cache_key(first.text, pipeline.between(start_from, None),
                                      backend, options, fingerprint)
        hit = compile_cache.lookup(key) if key else None
        if hit is not None:
            hit.stages, hit.reference = [first], reference
            hit.compile_seconds = time.perf_counter() - started
            hit.extra.update(cache_hit=True, source_ir_sha256=source_hash)
            return hit
    for stage in pipeline.between(start_from, stop_at):
        try:
            result = run_stage(module, stage, results[-1].text, dump_dir)
        except PipelineError as failure:
            # Name the unsupported ops rather than the first legalization error.
            error = unsupported_ops_error(stage.name, results[-1].text)
            raise (error or failure) from None
        results.append(result)
        _dump(dump_dir, pipeline, result)
        if on_stage:
            on_stage(result)

    stopped = stop_at is not None and stop_at != pipeline.names()[-1]
    executable = None
    if not stopped:
        executable = get_backend(backend).load(module, signature, options)
    compiled = CompiledModel(signature, backend, results, executable, reference,
                             stopped_at=stop_at if stopped else None,
                             compile_seconds=time.perf_counter() - started,
                             extra={"options": options, "cache_hit": False,
                                    "source_ir_sha256": source_hash})
    if key:
        compile_cache.store(key, compiled, source_hash)
    return compiled


def _is_torch_module(model) -> bool:
    try:
        import torch
    except ImportError:
        return False
    return isinstance(model, torch.nn.Module)


def _dump(dump_dir, pipeline: Pipeline, result: StageResult) -> None:
    if dump_dir is None:
        return
    folder = Path(dump_dir)
    folder.mkdir(parents=True, exist_ok=True)
    index = pipeline.index(result.name)
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", result.name)
    (folder / f"{index:02d}-{safe}.mlir").write_text(result.text)
