"""Every error a user can cause is a typed, one-line error — never a crash."""

import shlex
import subprocess

import numpy as np
import pytest
import torch

import mlirc


class Add(torch.nn.Module):
    def forward(self, x, y):
        return x + y


@pytest.fixture(scope="module")
def add_model():
    x, y = torch.randn(2, 3), torch.randn(2, 3)
    return mlirc.compile(Add(), (x, y)), x, y


def test_wrong_number_of_inputs(add_model):
    compiled, x, _ = add_model
    with pytest.raises(mlirc.InputError, match="expected 2 item"):
        compiled(x)


def test_wrong_shape(add_model):
    compiled, x, _ = add_model
    with pytest.raises(mlirc.InputError, match=r"input 1 \('y'\): expected shape \[2, 3\], got \[3, 2\]"):
        compiled(x, torch.randn(3, 2))


def test_wrong_dtype(add_model):
    compiled, x, y = add_model
    with pytest.raises(mlirc.InputError, match="expected dtype f32, got i64"):
        compiled(x, y.to(torch.int64))


def test_non_tensor_input(add_model):
    compiled, x, _ = add_model
    with pytest.raises(mlirc.InputError, match="expected a numpy array or torch tensor, got str"):
        compiled(x, "three")


def test_unsupported_numpy_dtype(add_model):
    compiled, x, _ = add_model
    with pytest.raises(mlirc.InputError, match="not supported"):
        compiled(x, np.zeros((2, 3), dtype=np.complex64))


def test_non_module_model():
    # A plain function is taken for a JAX function when JAX is installed.
    with pytest.raises((mlirc.InputError, mlirc.FrontendError),
                       match="cannot compile a function|jax.jit"):
        mlirc.compile(lambda x: x, (torch.randn(2),))
    with pytest.raises(mlirc.InputError, match="cannot compile a int"):
        mlirc.compile(3, ())


def test_missing_example_inputs():
    with pytest.raises(mlirc.InputError, match="no example inputs"):
        mlirc.compile(Add(), ())


def test_export_failure_is_a_frontend_error():
    class DataDependent(torch.nn.Module):
        def forward(self, x):
            if x.sum() > 0:
                return x
            return -x
    with pytest.raises(mlirc.FrontendError, match="torch.export failed"):
        mlirc.compile(DataDependent(), (torch.randn(3),))


def test_unparseable_mlir_names_the_line(tmp_path):
    bad = tmp_path / "bad.mlir"
    bad.write_text("module {\n  func.func @main() {\n    %0 = nope.op\n  }\n}\n")
    with pytest.raises(mlirc.InputError, match=r"cannot parse .*bad.mlir, line 3"):
        mlirc.compile(str(bad))


def test_missing_mlir_file():
    with pytest.raises(mlirc.InputError, match="no such file"):
        mlirc.compile("does/not/exist.mlir")


def test_unknown_backend():
    with pytest.raises(mlirc.InputError, match="unknown backend 'tpu'"):
        mlirc.compile(Add(), (torch.randn(2), torch.randn(2)), backend="tpu")


def test_unsupported_op_is_listed_with_its_source_line():
    class Spectrum(torch.nn.Module):
        def forward(self, x):
            return torch.fft.fft(x).real + x
    with pytest.raises(mlirc.UnsupportedOpsError) as caught:
        mlirc.compile(Spectrum(), (torch.randn(4, 8),))
    (op,) = caught.value.ops
    assert op.name == "torch.aten.fft_fft" and op.count == 1
    assert any("test_errors.py" in source for source in op.sources)


def test_invalid_pass_name_is_a_pipeline_error():
    pipeline = mlirc.default_pipeline().add_passes("optimized", "func.func(no-such-pass)")
    with pytest.raises(mlirc.PipelineError, match="stage 'optimized', pass 'no-such-pass'"):
        mlirc.compile(Add(), (torch.randn(2), torch.randn(2)), pipeline=pipeline)


def test_pass_failure_writes_ir_and_a_working_repro(tmp_path):
    # The linalg contract check fails on torch-dialect IR: a real pass failure.
    pipeline = mlirc.default_pipeline().add_passes(
        "torch-backend", "torch-verify-linalg-on-tensors-backend-contract")
    with pytest.raises(mlirc.PipelineError) as caught:
        mlirc.compile(Add(), (torch.randn(2), torch.randn(2)), pipeline=pipeline,
                      dump_dir=tmp_path)
    error = caught.value
    assert error.stage == "torch-backend"
    assert error.pass_name == "torch-verify-linalg-on-tensors-backend-contract"
    assert error.ir_file.startswith(str(tmp_path)) and "\n" not in error.repro
    assert len(str(error).splitlines()) == 2  # the message and the repro: no IR
    repro = subprocess.run(shlex.split(error.repro), capture_output=True, text=True)
    assert repro.returncode != 0
    assert "error" in repro.stderr


def test_each_failure_gets_its_own_dump_file(tmp_path):
    pipeline = mlirc.default_pipeline().add_passes(
        "torch-backend", "torch-verify-linalg-on-tensors-backend-contract")
    files = set()
    for _ in range(2):
        with pytest.raises(mlirc.PipelineError) as caught:
            mlirc.compile(Add(), (torch.randn(2), torch.randn(2)), pipeline=pipeline,
                          dump_dir=tmp_path)
        files.add(caught.value.ir_file)
    assert len(files) == 2


def test_verify_without_reference(add_model, tmp_path):
    compiled, x, y = add_model
    restarted = mlirc.compile(compiled.ir["linalg"], start_from="linalg")
    with pytest.raises(mlirc.InputError, match="no reference model"):
        restarted.verify(x, y)
