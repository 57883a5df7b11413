"""What a worker does with each kind of case, and how it judges the result.

An executor returns (outcome, detail) or lets an exception through (the
worker classes mlirc errors as `typed`, anything else as `untyped`). The
oracles: the seed's reference outputs where the input means the same program
(an edited artifact or cache entry, a comment added to IR, arguments a model
accepts); ONNX Runtime on the same mutated ONNX file; for IR mutations that
change the program, only that it compiles or is refused cleanly.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

# Stages whose IR is still on tensors: a program there cannot address memory
# it does not own, so whatever compiles must also run. Below bufferization
# IR is like C (a mutated loop bound writes out of bounds), so mutated
# memref/LLVM programs are compiled, and run only when the mutation keeps
# their meaning.
TENSOR_STAGES = {"torch-backend", "linalg", "optimized"}


def _close(actual, expected, rtol=1e-4, atol=1e-5) -> bool:
    actual, expected = np.asarray(actual), np.asarray(expected)
    return actual.shape == expected.shape and \
        np.allclose(actual, expected, rtol=rtol, atol=atol, equal_nan=True)


class Context:
    """Per-worker state: the seed corpus, a scratch folder, a private cache."""

    def __init__(self, seeds: Path):
        self.seeds = seeds
        self.scratch = Path(tempfile.mkdtemp(prefix="mlirc-fuzz-"))
        self.cache = self.scratch / "cache"
        os.environ["MLIRC_CACHE_DIR"] = str(self.cache)
        self.x = np.load(seeds / "inputs.npz")["x"]
        self.reference = np.load(seeds / "reference.npz")["y"]
        self.onnx_x = np.load(seeds / "onnx-inputs.npz")["x"]
        self.stage_files = json.loads((seeds / "stages.json").read_text())
        self._models: dict = {}
        self._cache_entry: Path | None = None
        self._write_cli_files()

    def model(self, which: str):
        import mlirc
        if which not in self._models:
            self._models[which] = mlirc.load(self.seeds / f"artifact-{which}")
        return self._models[which]

    def eager(self):
        if "eager" not in self._models:
            from .seeds import build_model
            self._models["eager"] = build_model()
        return self._models["eager"]

    def _write_cli_files(self) -> None:
        files = self.scratch / "cli"
        files.mkdir()
        np.save(files / "good.npy", self.x)
        np.save(files / "wrong_shape.npy", np.zeros((2, 2), np.float32))
        (files / "corrupt.npy").write_bytes(b"\x93NUMPY\x01\x00garbage" * 3)
        np.save(files / "object.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
        (files / "folder").mkdir()
        (files / "empty").write_bytes(b"")
        self.cli_files = {name: str(files / f"{name}.npy") for name in
                          ("good", "wrong_shape", "corrupt", "object")}
        self.cli_files.update(folder=str(files / "folder"), empty=str(files / "empty"))

    def fresh(self, name: str) -> Path:
        path = self.scratch / name
        if path.exists():
            shutil.rmtree(path)
        return path


def run_mlir(context: Context, case: dict):
    import mlirc
    path = context.fresh("case") / "input.mlir"
    path.parent.mkdir()
    path.write_text(case["text"], encoding="utf-8", errors="surrogatepass")
    compiled = mlirc.compile(path, start_from=case["stage"], cache=False)
    if case["stage"] not in TENSOR_STAGES and not case["preserving"]:
        return "changed", "compiled (memref-level program not run)"
    output = compiled(context.x)
    if _close(output, context.reference):
        return "ok", ""
    if case["preserving"]:
        return "wrong", f"a comment or spaces changed the result (stage {case['stage']})"
    return "changed", ""


def run_onnx(context: Context, case: dict):
    import mlirc
    path = context.fresh("case") / "model.onnx"
    path.parent.mkdir()
    path.write_bytes(base64.b64decode(case["model"]))
    compiled = mlirc.compile(path, cache=False)
    shapes, _ = compiled.signature.example_shapes()  # a dynamic size at its example
    inputs = [_random_input(spec, shape)
              for spec, shape in zip(compiled.signature.inputs, shapes)]
    first = compiled(*inputs)
    expected = _onnxruntime(path, compiled.signature, inputs)
    outputs = first if isinstance(first, (list, tuple)) else [first]
    if expected is None:  # ONNX Runtime refuses the model: mlirc must at least repeat itself
        again = compiled(*inputs)
        again = again if isinstance(again, (list, tuple)) else [again]
        same = all(np.array_equal(a, b, equal_nan=True) for a, b in zip(outputs, again))
        return ("changed", "ONNX Runtime refused it") if same else \
            ("wrong", "ONNX Runtime refused it and two runs differ")
    if len(outputs) != len(expected) or not all(
            _close(a, e, rtol=1e-3, atol=1e-4) for a, e in zip(outputs, expected)):
        return "wrong", "differs from ONNX Runtime"
    return "ok", ""


def _random_input(spec, shape):
    rng = np.random.default_rng(4)
    from mlirc.runtime.signature import DTYPES
    dtype = np.dtype(DTYPES[spec.dtype].numpy)
    if dtype.kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    if dtype.kind == "b":
        return rng.integers(0, 2, shape).astype(bool)
    return rng.integers(0, 3, shape).astype(dtype)


def _onnxruntime(path: Path, signature, inputs):
    import onnxruntime
    try:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        names = [i.name for i in session.get_inputs()]
        return session.run(None, dict(zip(names, inputs)))
    except Exception:
        return None


def run_cli_input(context: Context, case: dict):
    from mlirc import cli
    from mlirc.runtime.cli_io import parse_input
    text = case["text"]
    for name, path in context.cli_files.items():
        text = text.replace("{" + name + "}", path)
    if not case["through_cli"]:
        array = parse_input(text, 1)
        if not isinstance(array, np.ndarray):
            return "wrong", f"parse_input returned a {type(array).__name__}"
        return "ok", ""
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            code = cli.main(["run", context.stage_files["linalg"], "--input=" + text])
        except SystemExit as exit:  # argparse
            code = exit.code
    if code == 0:
        return "ok", ""
    lines = stderr.getvalue().strip().splitlines()
    errors = [line for line in lines if line.startswith(("mlirc: error:", "usage:"))]
    # one error line (a pipeline failure's adds its reproducer), no traceback
    if code == 2 and errors and not any("Traceback" in line for line in lines):
        return "typed", errors[0][:300]
    return "untyped", f"exit {code}: {' | '.join(lines[-3:])[:300]}"


def _mutate_folder(folder: Path, mutation: dict) -> None:
    op = mutation["op"]
    if op in ("manifest-set", "manifest-delete"):
        manifest_path = folder / "manifest.json"
        manifest = json.loads(manifest_path.read_text())
        *parents, last = mutation["path"]
        holder = manifest
        for key in parents:
            holder = holder[key]
        if op == "manifest-set":
            holder[last] = mutation["value"]
        elif isinstance(holder, dict):
            holder.pop(last, None)
        else:
            holder.pop(last)
        manifest_path.write_text(json.dumps(manifest, indent=2))
        return
    target = folder / mutation["file"]
    if op == "extra":
        target.write_bytes(b"\x00stray")
    elif op == "delete":
        target.unlink(missing_ok=True)
    elif op == "swap":
        other = folder / mutation["other"]
        a, b = target.read_bytes(), other.read_bytes()
        target.write_bytes(b)
        other.write_bytes(a)
    else:
        data = bytearray(target.read_bytes())
        at = min(int(mutation["at"] * len(data)), max(0, len(data) - 1))
        if op == "truncate":
            del data[at:]
        elif data:
            data[at] = mutation["byte"]
        target.write_bytes(bytes(data))


def run_artifact(context: Context, case: dict):
    import mlirc
    folder = context.fresh("artifact")
    shutil.copytree(context.seeds / f"artifact-{case['which']}", folder)
    _mutate_folder(folder, case["mutation"])
    model = mlirc.load(folder)
    output = model(context.x)
    if _close(output, context.reference):
        return "ok", ""
    return "wrong", f"an edited {case['which']} artifact loaded and gave other numbers"


def run_cache(context: Context, case: dict):
    import mlirc
    from mlirc.errors import MlircError
    source = context.stage_files["linalg"]
    if context._cache_entry is None:
        mlirc.compile(source, start_from="linalg", cache=True)
        entries = [p for p in context.cache.iterdir() if p.is_dir() and len(p.name) == 64]
        context._cache_entry = entries[0]
        shutil.copytree(entries[0], context.scratch / "pristine-entry")
    shutil.rmtree(context._cache_entry, ignore_errors=True)
    shutil.copytree(context.scratch / "pristine-entry", context._cache_entry)
    _mutate_folder(context._cache_entry, case["mutation"])
    try:
        compiled = mlirc.compile(source, start_from="linalg", cache=True)
    except MlircError as error:
        return "wrong", f"cache entry not rebuilt: {type(error).__name__}: {str(error)[:200]}"
    output = compiled(context.x)
    if _close(output, context.reference):
        return "ok", ""
    return "wrong", "an edited cache entry was used and gave other numbers"


def _make_argument(spec: dict, base: np.ndarray):
    import torch
    kind, shape = spec["kind"], tuple(spec["shape"])
    count = int(np.prod(shape)) if shape else 1
    values = np.resize(base.reshape(-1), count).reshape(shape) if count else np.zeros(shape)
    dtype = spec["dtype"]
    if kind == "none":
        return None
    if kind == "str":
        return "1x3x8x8xf32=1"
    if kind == "scalar":
        return 1.5
    if kind == "list":
        return values.tolist()
    if dtype == "bfloat16" or kind != "numpy":
        tensor = torch.from_numpy(np.ascontiguousarray(values.astype(np.float32)))
        tensor = tensor.to(getattr(torch, dtype))
        if kind == "sparse":
            return tensor.to_sparse()
        if kind == "meta":
            return tensor.to("meta")
        if kind == "grad" and tensor.is_floating_point():
            return tensor.requires_grad_()
        if kind == "channels_last" and tensor.dim() == 4:
            return tensor.contiguous(memory_format=torch.channels_last)
        return _layout_torch(tensor, spec["layout"])
    return _layout_numpy(values.astype(dtype), spec["layout"])


def _layout_numpy(array: np.ndarray, layout: str) -> np.ndarray:
    if layout == "fortran":
        return np.asfortranarray(array)
    if layout == "reversed" and array.ndim:
        return np.ascontiguousarray(array[::-1])[::-1]
    if layout == "strided" and array.ndim:
        return np.repeat(array, 2, axis=-1)[..., ::2]
    if layout == "transposed" and array.ndim >= 2:
        return np.ascontiguousarray(np.swapaxes(array, -1, -2)).swapaxes(-1, -2)
    return array


def _layout_torch(tensor, layout: str):
    if layout == "transposed" and tensor.dim() >= 2:
        return tensor.transpose(-1, -2).contiguous().transpose(-1, -2)
    if layout == "strided" and tensor.dim():
        return tensor.repeat_interleave(2, dim=-1)[..., ::2]
    return tensor


def run_runtime_args(context: Context, case: dict):
    import torch
    model = context.model(case["which"])
    args = [_make_argument(spec, context.x) for spec in case["args"]]
    if case["keyword"] and args:
        output = model(*args[:-1], x=args[-1])
    else:
        output = model(*args)
    if len(args) != 1 or not hasattr(args[0], "shape"):
        return "wrong", f"accepted {len(args)} argument(s) of kinds {[s['kind'] for s in case['args']]}"
    value = args[0]
    as_tensor = value.detach() if isinstance(value, torch.Tensor) else torch.from_numpy(
        np.ascontiguousarray(value))
    with torch.no_grad():
        expected = context.eager()(as_tensor.float())
    actual = output.detach().numpy() if isinstance(output, torch.Tensor) else output
    if _close(actual, expected.numpy()):
        return "ok", ""
    return "wrong", f"accepted {case['args'][0]} and differs from eager"


def run_compile_args(context: Context, case: dict):
    import torch

    import mlirc
    dtype = getattr(torch, case["dtype"])
    x = torch.from_numpy(np.resize(context.x, case["shape"]).astype(np.float32)).to(dtype)
    options = dict(case["options"])
    model = context.eager()
    compiled = mlirc.compile(model, (x,), cache=False, **options)
    if compiled.executable is None:
        return "ok", "stopped early"
    with torch.no_grad():
        expected = model(x)
    if _close(torch.as_tensor(compiled(x)).numpy(), expected.numpy()):
        return "ok", ""
    return "wrong", "compiled model differs from eager on its example input"


EXECUTORS = {
    "mlir": run_mlir, "onnx": run_onnx, "cli-input": run_cli_input,
    "artifact": run_artifact, "cache": run_cache, "runtime-args": run_runtime_args,
    "compile-args": run_compile_args,
    # for the harness's own tests
    "selftest": lambda context, case: _selftest(case),
}


def _selftest(case: dict):
    if case["do"] == "abort":
        os.abort()
    if case["do"] == "sleep":
        import time
        time.sleep(3600)
    if case["do"] == "raise":
        raise KeyError("untyped on purpose")
    return "ok", ""
