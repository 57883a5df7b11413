"""ONNX ops that torch-mlir does not lower by itself, checked against ONNX's
reference evaluator: 8-bit float casts (mlirc's passes), 4-bit integers,
ONNX functions expanded in the graph, and errors that blame the right op."""

import ml_dtypes
import numpy as np
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

import mlirc

F8 = {TensorProto.FLOAT8E4M3FN: ml_dtypes.float8_e4m3fn,
      TensorProto.FLOAT8E4M3FNUZ: ml_dtypes.float8_e4m3fnuz,
      TensorProto.FLOAT8E5M2: ml_dtypes.float8_e5m2,
      TensorProto.FLOAT8E5M2FNUZ: ml_dtypes.float8_e5m2fnuz}


def _model(nodes, inputs, outputs, opset=21):
    graph = helper.make_graph(nodes, "g", inputs, outputs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _encoding_inputs(numpy_f8) -> np.ndarray:
    """Every finite value of the format, the midpoints between neighbours
    (ties: round to even), values just off them, overflow and specials."""
    values = np.arange(256, dtype=np.uint8).view(numpy_f8).astype(np.float32)
    finite = np.unique(values[np.isfinite(values)])
    midpoints = (finite[:-1] + finite[1:]) / 2
    off = np.concatenate([midpoints * (1 + 2.0 ** -12), midpoints * (1 - 2.0 ** -12)])
    top = float(finite.max())
    specials = [np.inf, -np.inf, np.nan, top * 1.01, -top * 1.01, top * 1.1, 1e30, 1e-30, -0.0]
    return np.concatenate([finite, midpoints, off, specials]).astype(np.float32)


@pytest.mark.parametrize("saturate", [1, 0])
@pytest.mark.parametrize("to", list(F8), ids=lambda t: TensorProto.DataType.Name(t))
def test_cast_to_float8_matches_reference(to, saturate):
    x = _encoding_inputs(F8[to])
    model = _model([helper.make_node("Cast", ["x"], ["y"], to=to, saturate=saturate)],
                   [helper.make_tensor_value_info("x", TensorProto.FLOAT, [len(x)])],
                   [helper.make_tensor_value_info("y", to, [len(x)])])
    want = ReferenceEvaluator(model).run(None, {"x": x})[0]
    got = mlirc.compile(model, cache=False)(x)
    assert got.dtype == want.dtype
    nan = np.isnan(want.astype(np.float32))
    np.testing.assert_array_equal(np.isnan(got.astype(np.float32)), nan)
    np.testing.assert_array_equal(got.view(np.uint8)[~nan], want.view(np.uint8)[~nan])


@pytest.mark.parametrize("source", list(F8), ids=lambda t: TensorProto.DataType.Name(t))
def test_cast_from_float8_decodes_every_code(source):
    codes = np.arange(256, dtype=np.uint8).view(F8[source])
    model = _model([helper.make_node("Cast", ["x"], ["y"], to=TensorProto.FLOAT)],
                   [helper.make_tensor_value_info("x", source, [256])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, [256])])
    got = mlirc.compile(model, cache=False)(codes)
    np.testing.assert_array_equal(got, codes.astype(np.float32))  # NaN == NaN here


def test_int4_inputs_cast_to_float():
    x = np.array([[-8, -3, 0], [1, 5, 7]], dtype=ml_dtypes.int4)
    model = _model([helper.make_node("Cast", ["x"], ["y"], to=TensorProto.FLOAT)],
                   [helper.make_tensor_value_info("x", TensorProto.INT4, [2, 3])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])])
    np.testing.assert_array_equal(mlirc.compile(model, cache=False)(x), x.astype(np.float32))


def test_function_ops_expand_and_nested_functions_expand_too():
    # SwiGLU (opset 28) is defined through Swish (opset 24), which torch-mlir
    # does not lower either: both expand, and the result matches ONNX's.
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 2, 8), dtype=np.float32)
    model = _model([helper.make_node("SwiGLU", ["a", "b"], ["y"])],
                   [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2, 8]) for n in "ab"],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 8])], opset=28)
    want = ReferenceEvaluator(model).run(None, {"a": a, "b": b})[0]
    np.testing.assert_allclose(mlirc.compile(model, cache=False)(a, b), want, rtol=1e-5,
                               atol=1e-6)


def test_expanded_function_shapes_are_folded():
    # RMSNormalization's body computes its reduction axes at run time
    # (Range over Size(Shape(X))); with the input shape fixed they fold to
    # constants, which torch-mlir's ReduceMean lowering needs.
    x = np.random.default_rng(1).standard_normal((3, 4, 5), dtype=np.float32)
    scale = np.linspace(0.5, 1.5, 5, dtype=np.float32)
    model = _model([helper.make_node("RMSNormalization", ["x", "s"], ["y"], axis=-1)],
                   [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 4, 5]),
                    helper.make_tensor_value_info("s", TensorProto.FLOAT, [5])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 4, 5])], opset=23)
    want = ReferenceEvaluator(model).run(None, {"x": x, "s": scale})[0]
    compiled = mlirc.compile(model, cache=False)
    np.testing.assert_allclose(compiled(x, scale), want, rtol=1e-5, atol=1e-6)
    assert "onnx.Range" not in compiled.ir["onnx"]


def test_unsupported_op_error_names_only_the_culprit():
    # The ONNX -> torch conversion fails as a whole on one op it cannot
    # convert; the error names that op, not every op of the model.
    model = _model([helper.make_node("Relu", ["x"], ["r"]),
                    helper.make_node("Bernoulli", ["r"], ["y"], seed=0.0)],
                   [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])])
    with pytest.raises(mlirc.UnsupportedOpsError) as error:
        mlirc.compile(model, cache=False)
    assert [op.name for op in error.value.ops] == ["onnx.Bernoulli"]
