"""CompiledModel: what `mlirc.compile` returns, the same for every backend."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ArtifactError, InputError, MlircError
from ..runner import StageResult
from . import inputs as input_checks
from .signature import Signature
from .verify import VerifyReport, compare


@dataclass
class CompiledModel:
    signature: Signature
    backend: str
    stages: list[StageResult]           # every stage's IR and timings, in order
    executable: object | None = None    # None when compilation stopped early
    reference: object | None = None     # the source model, for verify()
    stopped_at: str | None = None
    compile_seconds: float = 0.0
    extra: dict = field(default_factory=dict)

    @property
    def ir(self) -> "StageIR":
        """Stage name -> the IR text after that stage. Weights over 1 MiB are
        elided (see StageResult.elided); dump_dir writes every stage in full."""
        return StageIR({s.name: s.text for s in self.stages})

    def full_text(self, stage: str) -> str:
        """A stage's IR with every weight: the kept text when nothing was
        elided, else the live module's (which is the final stage's)."""
        result = next((s for s in self.stages if s.name == stage), None)
        if result is None:
            raise InputError(f"no stage '{stage}' in this compiled model")
        if not result.elided:
            return result.text
        module = self.extra.get("module")
        if module is None or stage != self.stages[-1].name:
            raise InputError(f"stage '{stage}' was kept without its large weights; compile "
                             "with dump_dir to write every stage in full")
        from .. import ir
        return ir.module_text(module, debug_info=True)

    def save(self, path) -> "Path":
        """Writes this model as an artifact folder; `mlirc.load(path)` reads it."""
        from .. import artifact
        if self.executable is None:
            raise InputError(f"compilation stopped at stage '{self.stopped_at}': "
                             "nothing runnable to save")
        return artifact.write(path, self.backend, self.signature, self.executable.payload(),
                              self.extra.get("source_ir_sha256", ""),
                              self.extra.get("options"))

    @property
    def final_stage(self) -> str:
        return self.stages[-1].name

    def __call__(self, *args, **kwargs):
        if self.executable is None:
            raise InputError(f"compilation stopped at stage '{self.stopped_at}'; "
                             "compile without stop_at to run the model")
        arrays, as_torch = input_checks.flatten_arguments(self.signature, args, kwargs)
        outputs = self.executable(arrays)
        input_checks.write_back_updates(self.signature, args, kwargs, outputs)
        return input_checks.restore_outputs(self.signature, outputs, as_torch)

    def run_flat(self, arrays: list) -> list:
        """Runs on already-checked flat numpy inputs; returns flat numpy outputs."""
        return self.executable(arrays)

    def verify(self, *args, rtol: float = 1e-4, atol: float = 1e-5,
               reference=None, **kwargs) -> VerifyReport:
        """Runs the reference model (eager PyTorch) and mlirc on the same inputs."""
        reference = reference or self.reference
        if self.executable is None:
            raise InputError(f"compilation stopped at stage '{self.stopped_at}': "
                             "nothing to verify")
        if reference is None:
            raise InputError("no reference model to verify against: "
                             "pass reference= (e.g. the torch.nn.Module)")
        import torch
        from torch.utils import _pytree as pytree
        from ..frontends.torch import to_torch_args

        torch_args = to_torch_args(args)
        # the model may update its inputs in place: mlirc's run gets the
        # values eager started from, and the updated ones are compared too
        arrays, _ = input_checks.flatten_arguments(self.signature, torch_args, kwargs)
        reference_args = pytree.tree_map(
            lambda leaf: leaf.clone() if isinstance(leaf, torch.Tensor) else leaf,
            (torch_args, kwargs))
        with torch.no_grad():
            expected = reference(*reference_args[0], **reference_args[1])
        updated = input_checks.argument_leaves(self.signature, *reference_args)
        expected_flat = [updated[i] for i in self.signature.input_updates] + \
            pytree.tree_leaves(expected)
        expected_flat = [input_checks.as_numpy(t, "reference output") for t in expected_flat]
        actual = self.executable(arrays)
        actual = actual[:len(self.signature.input_updates)] + input_checks.model_outputs(
            self.signature, actual[len(self.signature.input_updates):])
        return compare(expected_flat, actual, rtol, atol)

    def time(self, *args, repeat: int = 20, warmup: int = 3) -> float:
        """Median seconds per call over `repeat` calls."""
        arrays, _ = input_checks.flatten_arguments(self.signature, args, {})
        for _ in range(warmup):
            self.executable(arrays)
        samples = []
        for _ in range(repeat):
            start = time.perf_counter()
            self.executable(arrays)
            samples.append(time.perf_counter() - start)
        return sorted(samples)[len(samples) // 2]


class StageIR(dict):
    """Stage name -> IR text; a missing stage names the ones there are."""

    def __missing__(self, name: str):
        raise KeyError(f"no stage '{name}'; stages: {', '.join(self) or 'none'}")


def load(path: str | Path):
    """Loads an artifact folder written by CompiledModel.save (or mlirc export)."""
    import json
    from .. import artifact
    from ..backends import get_backend
    path = Path(path)
    manifest = artifact.read_manifest(path)
    artifact.check_versions(path, manifest)
    artifact.check_cpu(path, manifest)
    files = artifact.read_files(path, manifest)
    try:
        signature = Signature.from_json(json.dumps(manifest["signature"]))
    except (ValueError, KeyError, TypeError, AttributeError, MlircError) as error:
        raise ArtifactError(f"{path}: the manifest's signature is not valid: {error}") from None
    backend = get_backend(manifest["backend"])
    executable = backend.from_payload(files, signature, path)
    stages = [StageResult(name, files[f"stages/{index:02d}-{name}.mlir"].decode(), 0.0)
              for index, name in enumerate(manifest.get("stages", []))]
    return CompiledModel(signature, manifest["backend"], stages, executable,
                         extra={"artifact": str(path), "manifest": manifest})
