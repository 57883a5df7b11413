"""The Python API: compile, call, stage IR, stop/restart, structures, dtypes."""

import numpy as np
import pytest
import torch

import mlirc
from mlirc.frontends.python_file import load_model_file


class TwoLayer(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.first = torch.nn.Linear(6, 8)
        self.second = torch.nn.Linear(8, 3)

    def forward(self, x):
        return self.second(torch.relu(self.first(x)))


@pytest.fixture(scope="module")
def model_and_input():
    torch.manual_seed(0)
    return TwoLayer().eval(), torch.randn(4, 6)


@pytest.fixture(scope="module")
def compiled(model_and_input):
    model, x = model_and_input
    return mlirc.compile(model, (x,))


def test_call_with_torch_returns_torch(compiled, model_and_input):
    model, x = model_and_input
    result = compiled(x)
    assert isinstance(result, torch.Tensor)
    torch.testing.assert_close(result, model(x), rtol=1e-4, atol=1e-5)


def test_call_with_numpy_returns_numpy(compiled, model_and_input):
    model, x = model_and_input
    result = compiled(x.numpy())
    assert isinstance(result, np.ndarray)
    np.testing.assert_allclose(result, model(x).detach().numpy(), rtol=1e-4, atol=1e-5)


def test_every_stage_ir_is_kept(compiled):
    names = mlirc.default_pipeline().names()
    assert list(compiled.ir) == names
    assert "torch.aten.linear" in compiled.ir["torch"] or "torch.aten" in compiled.ir["torch"]
    assert "linalg.matmul" in compiled.ir["linalg"]
    assert "memref" in compiled.ir["bufferized"] and "tensor<" not in \
        compiled.ir["bufferized"].split("func.func")[1].split("{")[0]
    assert "scf.for" in compiled.ir["loops"]
    assert "llvm.func" in compiled.ir["llvm"] and "_mlir_ciface_main" in compiled.ir["llvm"]


def test_verify_reports_errors(compiled, model_and_input):
    _, x = model_and_input
    report = compiled.verify(x)
    assert report.passed
    assert report.max_abs_error < 1e-5
    assert "PASS" in str(report)


def test_stop_at_keeps_ir_but_cannot_run(model_and_input):
    model, x = model_and_input
    stopped = mlirc.compile(model, (x,), stop_at="linalg")
    assert list(stopped.ir) == ["torch", "torch-backend", "linalg"]
    with pytest.raises(mlirc.InputError, match="stopped at stage 'linalg'"):
        stopped(x)


@pytest.mark.parametrize("stage", mlirc.default_pipeline().names())
def test_restart_from_every_stage(stage, model_and_input, tmp_path):
    model, x = model_and_input
    saved = tmp_path / f"{stage}.mlir"
    saved.write_text(mlirc.compile(model, (x,), stop_at=stage).ir[stage])
    restarted = mlirc.compile(str(saved), start_from=stage)
    torch.testing.assert_close(restarted(x), model(x), rtol=1e-4, atol=1e-5)


def test_restart_from_text_without_signature_attribute(model_and_input):
    model, x = model_and_input
    from mlirc import ir
    module = ir.parse_module(mlirc.compile(model, (x,), stop_at="linalg").ir["linalg"])
    del module.operation.attributes["mlirc.signature"]
    text = ir.module_text(module)
    assert "mlirc.signature" not in text
    restarted = mlirc.compile(text, start_from="linalg")
    np.testing.assert_allclose(restarted(x.numpy()), model(x).detach().numpy(), rtol=1e-4,
                               atol=1e-5)


def test_dump_dir_writes_numbered_stage_files(model_and_input, tmp_path):
    model, x = model_and_input
    mlirc.compile(model, (x,), dump_dir=tmp_path)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == [f"{i:02d}-{name}.mlir"
                     for i, name in enumerate(mlirc.default_pipeline().names())]


def test_structured_inputs_and_outputs():
    class Structured(torch.nn.Module):
        def forward(self, x, params):
            return {"y": x * params["scale"], "extra": [x.sum(), x > 0]}
    x = torch.randn(2, 3)
    params = {"scale": torch.randn(3)}
    compiled = mlirc.compile(Structured(), (x, params))
    result = compiled(x, {"scale": params["scale"]})
    assert set(result) == {"y", "extra"}
    assert isinstance(result["extra"], list) and len(result["extra"]) == 2
    torch.testing.assert_close(result["y"], x * params["scale"])
    assert result["extra"][1].dtype == torch.bool


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16,
                                   torch.int32, torch.int64, torch.bool])
def test_dtypes_round_trip(dtype):
    class Identityish(torch.nn.Module):
        def forward(self, x):
            return x if dtype == torch.bool else x + x
    x = (torch.randn(3, 4) * 10).to(dtype)
    result = mlirc.compile(Identityish(), (x,))(x)
    assert result.dtype == dtype
    torch.testing.assert_close(result, Identityish()(x))


def test_progress_callback_sees_every_stage(model_and_input):
    model, x = model_and_input
    seen = []
    mlirc.compile(model, (x,), on_stage=lambda result: seen.append(result.name))
    assert seen == mlirc.default_pipeline().names()


@pytest.mark.parametrize("name", ["mlp", "cnn", "transformer"])
def test_bundled_models_match_eager(name, examples_dir):
    model, inputs = load_model_file(examples_dir / f"{name}.py")
    report = mlirc.compile(model, inputs).verify(*inputs, rtol=1e-4, atol=1e-5)
    assert report.passed, f"\n{report}"


class WithPositions(torch.nn.Module):
    """A buffer registered with persistent=False (Hugging Face's
    position_ids): torch.export keeps it among the program's constants."""

    def __init__(self):
        super().__init__()
        self.register_buffer("positions", torch.arange(8.0), persistent=False)
        self.project = torch.nn.Linear(8, 8)

    def forward(self, x):
        return self.project(x + self.positions)


def test_a_non_persistent_buffer_is_imported():
    torch.manual_seed(0)
    model, x = WithPositions().eval(), torch.randn(2, 8)
    compiled = mlirc.compile(model, (x,), cache=False)
    np.testing.assert_allclose(compiled(x).numpy(), model(x).detach().numpy(),
                               rtol=1e-4, atol=1e-5)
