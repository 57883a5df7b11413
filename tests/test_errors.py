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
    with pytest.raises(mlirc.FrontendError, match="depend on a tensor.s value.*test_errors.py:71"):
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
    class Histogram(torch.nn.Module):
        def forward(self, x):
            return torch.histc(x, bins=4) + 1
    with pytest.raises(mlirc.UnsupportedOpsError) as caught:
        mlirc.compile(Histogram(), (torch.randn(4, 8),))
    (op,) = caught.value.ops
    assert op.name == "torch.aten.histc" and op.count == 1
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


# ---- Bad input found by fuzzing: each a typed error, never a traceback ----

@pytest.mark.parametrize("arguments,message", [
    (["run", "{mlp}", "--input=99999999999x3x8x8xf32=1"], "give a large input as @file.npy"),
    (["run", "{mlp}", "--input=2x8xi8=300"], "300 does not fit i8"),
    (["run", "{mlp}", "--input=32x256xf32=1", "--output=@/no/such/dir/y.npy"],
     "cannot write /no/such/dir/y.npy"),
    (["compile", "{exits}"], "exited while loading"),
    (["compile", "{binary}"], "not MLIR text"),
    (["compile", "{mlp}", "--dump-dir", "{mlp}"], "exists and is not a folder"),
])
def test_cli_bad_input_is_one_line_and_exit_2(arguments, message, tmp_path, capsys):
    from pathlib import Path
    from mlirc.cli import main
    files = {"mlp": str(Path(__file__).resolve().parent.parent / "examples" / "mlp.py"),
             "exits": str(tmp_path / "exits.py"), "binary": str(tmp_path / "binary.mlir")}
    (tmp_path / "exits.py").write_text("import sys\nsys.exit(0)\n")
    (tmp_path / "binary.mlir").write_bytes(b"\x00\x01\xff\xfe module")
    assert main([a.format(**files) for a in arguments]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("mlirc: error:") and message in error


@pytest.mark.parametrize("options,message", [
    ({"pipeline": "linalg"}, "pass stop_at="),
    ({"opt_level": "3"}, "opt_level must be an int"),
    ({"blas": "no"}, "blas must be True or False"),
])
def test_api_arguments_of_the_wrong_kind(options, message):
    with pytest.raises(mlirc.InputError, match=message):
        mlirc.compile(Add(), (torch.randn(2, 3), torch.randn(2, 3)), **options)


def test_an_empty_model_path():
    with pytest.raises(mlirc.InputError, match="empty path"):
        mlirc.compile("")


def test_a_signature_attribute_that_disagrees_with_main_is_refused(tmp_path):
    x = torch.randn(2, 3)
    linalg = mlirc.compile(Add(), (x, x), stop_at="linalg").ir["linalg"]
    assert "2x3xf32" in linalg
    edited = linalg.replace("\\222x3xf32\\22", "\\222x4xf32\\22", 1)  # MLIR's escapes
    assert edited != linalg
    with pytest.raises(mlirc.InputError, match="says input 1 is 2x4xf32"):
        mlirc.compile(edited, start_from="linalg")


@pytest.mark.parametrize("backend", ["jit", "aot"])
def test_a_module_without_inputs_compiles(backend):
    class Factory(torch.nn.Module):
        def forward(self):
            return torch.arange(10, dtype=torch.float32) * 2, torch.eye(3), torch.hann_window(8)

    compiled = mlirc.compile(Factory(), (), backend=backend, cache=False)
    for got, expected in zip(compiled(), Factory()()):
        assert isinstance(got, torch.Tensor)
        torch.testing.assert_close(got, expected)


def test_an_onnx_initializer_shorter_than_its_dims_is_refused(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper
    weights = numpy_helper.from_array(np.ones((4, 1, 3, 3), np.float32), "w")
    weights.raw_data = weights.raw_data[:20]
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], group=4)], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [weights])
    path = tmp_path / "short.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    with pytest.raises(mlirc.InputError, match="holds 20 bytes; its dims \\[4, 1, 3, 3\\] need 144"):
        mlirc.compile(str(path))


# ---- Text that kills MLIR's parser: parsed in a child process first ----

TRANSPOSE_WITH_BAD_PERMUTATION = """
func.func @main(%a: tensor<2x3xf32>) -> tensor<3x2xf32> {
  %e = tensor.empty() : tensor<3x2xf32>
  %t = linalg.transpose ins(%a : tensor<2x3xf32>) outs(%e : tensor<3x2xf32>) permutation = [1,.0]
  return %t : tensor<3x2xf32>
}
"""
BLOB_WITH_ALIGNMENT_0 = """
func.func @main() -> tensor<2xf32> {
  %c = arith.constant dense_resource<blob1> : tensor<2xf32>
  return %c : tensor<2xf32>
}
{-#
  dialect_resources: { builtin: { blob1: "0x000000000000803F0000803F" } }
#-}
"""


@pytest.mark.parametrize("text,signal", [(TRANSPOSE_WITH_BAD_PERMUTATION, "SIGSEGV"),
                                         (BLOB_WITH_ALIGNMENT_0, "SIGABRT")])
def test_text_that_crashes_the_parser_is_an_input_error(text, signal, tmp_path):
    path = tmp_path / "bad.mlir"
    path.write_text(text)
    with pytest.raises(mlirc.InputError, match=f"the MLIR parser crashed \\({signal}\\)"):
        mlirc.compile(path)
    with pytest.raises(mlirc.InputError, match="crashed"):
        mlirc.compile(text)


def test_restart_points_carry_a_mark_and_an_edited_one_is_checked(tmp_path, monkeypatch):
    from mlirc.frontends import mlir_text
    x = torch.randn(2, 3)
    mlirc.compile(Add(), (x, x), dump_dir=tmp_path, cache=False)
    dump = next(tmp_path.glob("*-linalg.mlir"))
    assert dump.read_text().splitlines()[-1].startswith(mlir_text.TRUST_MARK)
    checked = []
    monkeypatch.setattr(mlir_text, "check_parse_in_child",
                        lambda text, name, path=None: checked.append(name))
    mlirc.compile(dump, start_from="linalg", cache=False)
    assert checked == []  # printed by mlirc: parsed in process
    edited = tmp_path / "edited.mlir"
    edited.write_text(dump.read_text().replace("func.func", "func.func ", 1))
    mlirc.compile(edited, start_from="linalg", cache=False)(x, x)
    assert checked == [str(edited)]


# ---- ONNX attributes the lowering does not survive ----

def _onnx_file(tmp_path, node, input_type=1, input_shape=(1, 4, 8, 8)):
    onnx = pytest.importorskip("onnx")
    from onnx import helper, numpy_helper
    weights = numpy_helper.from_array(np.ones((4, 1, 3, 3), np.float32), "w")
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", input_type, list(input_shape))],
        [helper.make_tensor_value_info("y", 1, None)], [weights])
    path = tmp_path / "model.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


@pytest.mark.parametrize("attributes,input_type,message", [
    ({"op_type": "Conv", "inputs": ["x", "w"], "group": -7}, 1, "group -7 must be >= 1"),
    ({"op_type": "Conv", "inputs": ["x", "w"], "group": 0}, 1, "group 0 must be >= 1"),
    ({"op_type": "Conv", "inputs": ["x", "w"], "group": 3}, 1, "group 3 does not divide"),
    ({"op_type": "Conv", "inputs": ["x", "w"], "group": 4}, 3, "not a valid ONNX model"),  # INT8 x
    ({"op_type": "Conv", "inputs": ["x", "w"], "strides": [0, 1]}, 1, "strides \\[0, 1\\]"),
    ({"op_type": "Softmax", "inputs": ["x"], "axis": -7}, 1, "axis -7 is outside the input's rank 4"),
    ({"op_type": "Softmax", "inputs": ["x"], "axis": 2**63 - 1}, 1, "outside the input's rank"),
    ({"op_type": "Softmax", "inputs": ["x", "w"]}, 1, "not a valid ONNX model"),
    ({"op_type": "Transpose", "inputs": ["x"], "perm": [0, 1, 1, 2]}, 1, "not a"),
])
def test_onnx_attributes_that_crashed_or_hung_the_lowering(attributes, input_type, message,
                                                           tmp_path):
    from onnx import helper
    attributes = dict(attributes)
    node = helper.make_node(attributes.pop("op_type"), attributes.pop("inputs"), ["y"],
                            **attributes)
    with pytest.raises(mlirc.InputError, match=message):
        mlirc.compile(_onnx_file(tmp_path, node, input_type), cache=False)


def test_a_zero_size_example_input_is_refused():
    with pytest.raises(mlirc.InputError, match="no elements"):
        mlirc.compile(Add(), (torch.randn(0, 3), torch.randn(0, 3)), cache=False)


# ---- Call arguments numpy cannot hold ----

@pytest.mark.parametrize("make,message", [
    (lambda x: x.to_sparse(), "sparse_coo tensor"),
    (lambda x: x.to("meta"), "meta tensor"),
    (lambda x: x.to(torch.bfloat16), "expected dtype f32, got bf16"),
    (lambda x: x.to(torch.float8_e4m3fn), "expected dtype f32, got f8E4M3FN"),
    (lambda x: x.to(torch.complex64), "complex64"),
])
def test_tensors_of_other_layouts_devices_and_types_are_refused(add_model, make, message):
    compiled, x, y = add_model
    with pytest.raises(mlirc.InputError, match=message):
        compiled(make(x), y)


def test_a_requires_grad_or_channels_last_input_computes(add_model):
    compiled, x, y = add_model
    torch.testing.assert_close(compiled(x.clone().requires_grad_(), y.t().contiguous().t()),
                               (x + y))
