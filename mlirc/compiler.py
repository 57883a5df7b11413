"""`mlirc.compile`: from a model (or saved IR) through the stages to a runnable model."""

from __future__ import annotations

import dataclasses
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import ir
from . import cache as compile_cache
from .analysis.support import unsupported_ops_error
from .backends import get_backend
from .errors import InputError, PipelineError, UnsupportedOpsError
from .frontends import jax as jax_frontend
from .frontends import mlir_text
from .frontends import onnx as onnx_frontend
from .frontends import torch as torch_frontend
from .kernels import choice
from .kernels.host import aot_target
from .passes.blas_offload import BlasOffload
from .runner import StageResult, run_stage, snapshot
from .runtime.compiled_model import CompiledModel
from .runtime.signature import Signature
from .stages import Pipeline, default_pipeline


@dataclass
class Imported:
    module: ir.Module
    signature: Signature
    first: StageResult        # the IR the pipeline starts from
    reference: object = None  # the framework model, for verify()
    onnx_opset: int = 0       # read at import: lowering drops the importer's attribute
    frontend: str = ""
    onnx_nodes: dict = field(default_factory=dict)  # ONNX node name -> op type


def _check_arguments(model, opt_level, pipeline, dump_dir, blas, vectorize) -> None:
    """Typed errors for arguments of the wrong kind, before any work."""
    if isinstance(model, (str, Path)) and not str(model).strip():
        raise InputError("the model is an empty path")
    if isinstance(opt_level, bool) or not isinstance(opt_level, int) or not 0 <= opt_level <= 3:
        raise InputError(f"opt_level must be an int from 0 to 3, not {opt_level!r}")
    if pipeline is not None and not isinstance(pipeline, Pipeline):
        hint = " (to stop at a stage, pass stop_at=)" if isinstance(pipeline, str) else ""
        raise InputError(f"pipeline must be a mlirc.Pipeline, not {type(pipeline).__name__}"
                         + hint)
    if dump_dir is not None and Path(dump_dir).exists() and not Path(dump_dir).is_dir():
        raise InputError(f"dump_dir {dump_dir} exists and is not a folder")
    for flag, value in (("blas", blas), ("vectorize", vectorize)):
        if not isinstance(value, bool):
            raise InputError(f"{flag} must be True or False, not {value!r}")


def compile(model, example_args=(), *, backend: str = "jit",
            stop_at: str | None = None, start_from: str | None = None,
            dump_dir: str | Path | None = None, pipeline: Pipeline | None = None,
            opt_level: int = 3, blas: bool = True, vectorize: bool = False,
            name: str | None = None,
            input_shapes: dict | None = None, dynamic_shapes=None,
            iree_flags: tuple[str, ...] = (), cache: bool | None = None,
            kernels: dict | str | Path | None = None, target_cpu: str | None = None,
            tuning_db: str | Path | None = None, on_stage=None) -> CompiledModel:
    """Compiles `model` for `backend`.

    model: a torch.nn.Module (with `example_args`), an ONNX model (path or
      ModelProto), a JAX function (with `example_args`), or a path to / text
      of a `.mlir` module (torch-mlir stages or StableHLO) at stage
      `start_from` (default: the first stage).
    stop_at: the last stage to run; the result then holds IR but cannot run.
    dump_dir: write each stage's IR there as `NN-stage.mlir`.
    pipeline: a custom Pipeline (see `mlirc.default_pipeline`).
    opt_level: LLVM optimisation level of the native backends; above 0, an
        eval-mode PyTorch model's Conv -> BatchNorm pairs are also folded
        before export.
    blas: offload matmuls to BLAS (native backends; the `blas` stage).
    vectorize: add the `vectorized` stage (transform-dialect tiling and
        vectorization of elementwise ops and row reductions; native backends).
    input_shapes: ONNX only: {input name: shape} fixing dynamic dimensions.
    dynamic_shapes: PyTorch only: sizes that may change from call to call,
      as torch.export's `dynamic_shapes` (torch.export.Dim) or the short
      form {input name or position: {axis: "symbol" or ("symbol", min, max)}}
      (one symbol name is one size). The compiled code takes those sizes at
      run time; calls check them against the bounds.
    name: the C entry point of the aot backend (`_mlir_ciface_<name>`).
    iree_flags: extra iree-compile flags for the iree-* backends.
    cache: reuse and store compiled artifacts with their stage IR (default:
      on unless MLIRC_NO_CACHE=1); not used with stop_at, dump_dir or
      on_stage, which want every stage run.
    kernels: the kernel of offloaded ops, per op ({"conv2d:3": "im2col_blas",
      "gemm": "blas"}, or a JSON file of that): see mlirc/kernels/choice.py;
      the choice shows in the IR as each call's `mlirc.kernel`.
    tuning_db: a tuning database written by `mlirc tune`: each convolution
      runs the kernel measured fastest for its problem on this machine
      (choices in `kernels` win; without a blas stage nothing changes); on
      iree-cpu, IREE's dispatches get the tile sizes `mlirc tune --backend
      iree-cpu` measured fastest (a tuning spec).
    target_cpu: aot only: the CPUs the library's code is for. "x86-64-v3"
      (the default on x86-64 machines with AVX2) runs on every AVX2 machine,
      its kernels picking their AVX-512 copy where the CPU has it;
      "x86-64-v4" (AVX-512), "x86-64" (any), or "host" (this CPU's own).
    on_stage: called with each StageResult as it completes (progress).
    """
    started = time.perf_counter()
    _check_arguments(model, opt_level, pipeline, dump_dir, blas, vectorize)
    frontend = _frontend_of(model)
    pipeline = pipeline or default_pipeline(backend, frontend, blas, vectorize)
    if tuning_db is not None and "blas" in pipeline.names():
        kernels = _with_tuned_choices(tuning_db, kernels)
    if kernels is not None:
        pipeline = with_kernel_choices(pipeline, kernels)
    if stop_at is not None:
        pipeline.index(stop_at)  # fails early on an unknown name
    imported = _import(model, example_args, frontend, pipeline, start_from, input_shapes,
                       opt_level=opt_level, dynamic_shapes=dynamic_shapes)
    _refuse_zero_size_inputs(imported.signature)
    if dump_dir is not None and imported.first.elided:  # dumps are restart points: in full
        imported.first.text = ir.module_text(imported.module, debug_info=True)
    _report(imported.first, pipeline, dump_dir, on_stage)
    options = {"opt_level": opt_level, "name": name, "iree_flags": list(iree_flags)}
    if tuning_db is not None and backend == "iree-cpu":
        from .analysis.tuning_db import iree_spec_flags
        options["iree_flags"] = iree_spec_flags(tuning_db) + options["iree_flags"]
    if backend == "aot":
        options["target_cpu"] = aot_target(target_cpu)
    elif target_cpu is not None:
        raise InputError(f"target_cpu= is an option of the aot backend, not of '{backend}'")
    source_hash = ir.module_digest(imported.module)

    key = None
    if (cache if cache is not None else compile_cache.enabled_by_default()) \
            and stop_at is None and dump_dir is None and on_stage is None:
        fingerprint = getattr(get_backend(backend), "fingerprint",
                              lambda *_: "")(options, imported.signature)
        key = compile_cache.cache_key(source_hash,
                                      pipeline.between(imported.first.name, None),
                                      backend, options, fingerprint)
        hit = compile_cache.lookup(key) if key else None
        if hit is not None:
            hit.stages = hit.stages or [imported.first]
            hit.reference = imported.reference
            hit.compile_seconds = time.perf_counter() - started
            hit.extra.update(cache_hit=True, source_ir_sha256=source_hash)
            return hit

    imported, results = _run_stages_expanding_onnx_functions(
        model, imported, pipeline, stop_at, dump_dir, on_stage, example_args, start_from,
        input_shapes)

    executable = None
    if stop_at is None:
        executable = get_backend(backend).load(imported.module, imported.signature, options)
    compiled = CompiledModel(imported.signature, backend, results, executable,
                             imported.reference, stopped_at=stop_at,
                             compile_seconds=time.perf_counter() - started,
                             extra={"options": options, "cache_hit": False,
                                    "source_ir_sha256": source_hash,
                                    "module": imported.module if stop_at else None})
    if key:
        compile_cache.store(key, compiled, source_hash)
    return compiled


def _with_tuned_choices(tuning_db, kernels) -> dict:
    """The database's best kernel per problem, under the user's own choices."""
    from .analysis.tuning_db import kernel_choices
    tuned = kernel_choices(tuning_db)
    if kernels is None:
        return tuned
    user = choice.KernelOverrides(json.dumps(kernels) if isinstance(kernels, dict)
                                  else str(kernels))
    return {**tuned, **user.by_problem, **user.choices}


def with_kernel_choices(pipeline: Pipeline, kernels: dict | str | Path) -> Pipeline:
    """A copy of `pipeline` whose blas-offload pass takes the user's kernels."""
    text = json.dumps(kernels) if isinstance(kernels, dict) else str(kernels)
    choice.KernelOverrides(text)  # a bad choice fails here, before any work
    pipeline = pipeline.copy()
    stages = [stage for stage in pipeline if any(isinstance(p, BlasOffload) for p in stage.passes)]
    if not stages:
        raise InputError("kernels= needs the blas stage (native backends with blas=True)")
    for stage in stages:
        stage.passes = [dataclasses.replace(p, kernels=text) if isinstance(p, BlasOffload) else p
                        for p in stage.passes]
    return pipeline


def _import(model, example_args, frontend: str, pipeline: Pipeline, start_from,
            input_shapes, expand: set[str] = frozenset(), opt_level: int = 3,
            dynamic_shapes=None) -> Imported:
    first_stage = pipeline.names()[0]
    if start_from not in (None, first_stage) and not isinstance(model, (str, Path)):
        raise InputError("start_from applies to .mlir input only")
    context = ir.new_context()
    started = time.perf_counter()
    reference, onnx_opset, onnx_nodes = None, 0, {}
    if frontend == "torch" and _is_torch_module(model):
        module, signature = torch_frontend.import_module(model, example_args, context,
                                                         fold_batch_norm=opt_level > 0,
                                                         dynamic_shapes=dynamic_shapes)
        reference = model
    elif dynamic_shapes is not None:
        raise InputError("dynamic_shapes= applies to PyTorch models (ONNX: symbolic "
                         "dimensions are fixed with input_shapes=)")
    elif frontend == "onnx":
        module, signature, onnx_nodes = onnx_frontend.import_model(model, context,
                                                                   input_shapes, expand)
        onnx_opset = onnx_frontend.imported_opset(module)
    elif frontend == "jax":
        module, signature = jax_frontend.import_function(model, example_args, context)
    elif isinstance(model, (str, Path)):
        module, signature, _ = mlir_text.import_text(model, context)
        first_stage = start_from or first_stage
        pipeline.index(first_stage)
    else:
        hint = " (JAX functions need `pip install jax`)" if callable(model) else ""
        raise InputError(f"cannot compile a {type(model).__name__}: expected a "
                         "torch.nn.Module, an ONNX model, a JAX function, or a path to "
                         f"(or text of) a .mlir module{hint}")
    first = snapshot(first_stage, module, time.perf_counter() - started)
    return Imported(module, signature, first, reference, onnx_opset, frontend, onnx_nodes)



def _refuse_zero_size_inputs(signature) -> None:
    """An input with no elements crashes torch-mlir's lowering (a division by
    zero in the linalg stage); refused until that holds."""
    for index, spec in enumerate(signature.inputs):
        if 0 in spec.shape:
            name = signature.input_names[index] if index < len(signature.input_names) else index
            raise InputError(f"input {name} has shape {list(spec.shape)}: inputs with no "
                             "elements (a 0 dimension) cannot be compiled")


def _run_stages(imported: Imported, pipeline: Pipeline, stop_at, dump_dir,
                on_stage) -> list[StageResult]:
    results = [imported.first]
    for stage in pipeline.between(imported.first.name, stop_at):
        try:
            previous = results[-1]
            result = run_stage(imported.module, stage,
                               None if previous.elided else previous.text, dump_dir)
            if dump_dir is not None and result.elided:  # dumps are restart points: in full
                result.text = ir.module_text(imported.module, debug_info=True)
        except PipelineError as failure:
            # Name the unsupported ops rather than the first legalization error.
            error = unsupported_ops_error(stage.name, results[-1].text)
            raise (error or failure) from None
        results.append(result)
        _report(result, pipeline, dump_dir, on_stage)
    return results


# Expanded function bodies may use newer function ops in turn (SwiGLU -> Swish).
MAX_EXPANSION_ROUNDS = 4


def _run_stages_expanding_onnx_functions(model, imported: Imported, pipeline: Pipeline,
                                         stop_at, dump_dir, on_stage, example_args,
                                         start_from, input_shapes
                                         ) -> tuple[Imported, list[StageResult]]:
    """Runs the stages; when an ONNX model uses ops that cannot be lowered but
    that ONNX defines as functions, imports it again with those expanded into
    their definitions. If that does not help, the first error is the one to
    report: it names the ops of the user's model."""
    first_error, expand = None, set()
    for _ in range(MAX_EXPANSION_ROUNDS):
        try:
            return imported, _run_stages(imported, pipeline, stop_at, dump_dir, on_stage)
        except UnsupportedOpsError as error:
            first_error = first_error or error
            more = _onnx_functions_to_expand(imported, error) - expand
            if not more:
                raise first_error from None
        expand |= more
        imported = _import(model, example_args, imported.frontend, pipeline, start_from,
                           input_shapes, expand)
    raise first_error from None


def _onnx_functions_to_expand(imported: Imported, error: UnsupportedOpsError) -> set[str]:
    if imported.frontend != "onnx":
        return set()
    return onnx_frontend.functions_to_expand(imported.onnx_nodes, error.ops,
                                             imported.onnx_opset)


def _report(result: StageResult, pipeline: Pipeline, dump_dir, on_stage) -> None:
    if dump_dir is not None:
        folder = Path(dump_dir)
        folder.mkdir(parents=True, exist_ok=True)
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", result.name)
        (folder / f"{pipeline.index(result.name):02d}-{safe}.mlir").write_text(
            mlir_text.restart_point(result.text))
    if on_stage:
        on_stage(result)


def _frontend_of(model) -> str:
    """Which frontend (and so which stages) a model needs."""
    if onnx_frontend.is_onnx_source(model):
        return "onnx"
    if isinstance(model, (str, Path)) and mlir_text.is_stablehlo(model):
        return "stablehlo"
    if not _is_torch_module(model) and jax_frontend.is_jax_function(model):
        return "jax"
    return "torch"


def _is_torch_module(model) -> bool:
    try:
        import torch
    except ImportError:
        return False
    return isinstance(model, torch.nn.Module)
