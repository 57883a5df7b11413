"""Static shapes for every value of an ONNX model whose inputs are static.

ONNX shape inference (even with data propagation) leaves dimensions unknown
behind chains like Shape -> Gather -> Concat -> Reshape or Expand (GPT-2's
attention mask, swin_t's window partition: 1,409 values). torch-mlir then
imports them as `?` and its lowering fails ("unresolved target
materialization" from tensor<1x32x768xf32> to tensor<1x?x768xf32>) or leaves
dynamic outputs. When every shape in the graph follows from the inputs'
shapes alone, running the model once on placeholder inputs (ONNX's reference
evaluator) gives every value's exact shape, written into value_info.

Not done when a shape could depend on input values: an op whose output
shape depends on data (NonZero, Unique, control flow...), or a shape operand
(Reshape's shape, Expand's, Slice's starts...) computed from an input's
values rather than its shape.
"""

from __future__ import annotations

import numpy as np

# ops whose output shape depends on their inputs' values in general
_DATA_SHAPED = {"NonZero", "Unique", "Compress", "NonMaxSuppression", "Loop", "Scan", "If",
                "StringSplit", "RegexFullMatch", "Multinomial", "RandomNormal",
                "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Bernoulli"}
# op -> positions of inputs that are read as shapes, sizes or indices of a shape
_SHAPE_OPERANDS = {"Reshape": (1,), "Expand": (1,), "Tile": (1,), "Slice": (1, 2, 3, 4),
                   "Pad": (1, 3), "Range": (0, 1, 2), "ConstantOfShape": (0,),
                   "Resize": (1, 2, 3), "Upsample": (1,), "OneHot": (1,), "TopK": (1,),
                   "Split": (1,), "Squeeze": (1,), "Unsqueeze": (1,), "ReduceSum": (1,),
                   "ReduceMean": (1,), "ReduceMax": (1,), "ReduceMin": (1,),
                   "ReduceProd": (1,), "ReduceL2": (1,), "CenterCropPad": (1,),
                   "CumSum": (1,), "DFT": (1, 2), "STFT": (1, 2, 3), "Col2Im": (1, 2)}
# ops whose output carries only the input's shape, not its values
_SHAPE_ONLY = {"Shape", "Size"}


def _unknown_dims(value_info) -> bool:
    tensor = value_info.type.tensor_type
    return tensor.HasField("shape") and any(not d.HasField("dim_value")
                                            for d in tensor.shape.dim)


def needs_stamping(model) -> bool:
    graph = model.graph
    if any(_unknown_dims(i) for i in graph.input):
        return False  # dynamic inputs: shapes are not fixed
    return any(_unknown_dims(v) for v in list(graph.value_info) + list(graph.output))


def shapes_follow_from_input_shapes(model) -> bool:
    """Whether no shape in the graph depends on an input's values."""
    graph = model.graph
    initializers = {i.name for i in graph.initializer}
    from_values = {i.name for i in graph.input if i.name not in initializers}
    for node in graph.node:
        if node.op_type in _DATA_SHAPED or node.domain not in ("", "ai.onnx"):
            return False
        shape_positions = _SHAPE_OPERANDS.get(node.op_type, ())
        if any(index < len(node.input) and node.input[index] in from_values
               for index in shape_positions):
            return False
        if node.op_type in _SHAPE_ONLY:
            continue
        if any(name in from_values for name in node.input):
            from_values.update(o for o in node.output if o)
    return True


def _placeholder(value_info, rng):
    from onnx import helper
    tensor = value_info.type.tensor_type
    dtype = helper.tensor_dtype_to_np_dtype(tensor.elem_type)
    shape = [d.dim_value for d in tensor.shape.dim]
    if np.issubdtype(dtype, np.floating):
        return rng.standard_normal(shape).astype(dtype)
    return np.zeros(shape, dtype)  # indices: 0 is in range everywhere


def stamp(model):
    """`model` with every value's static shape in value_info (the model
    itself when shapes cannot be trusted to be static or evaluation fails)."""
    import onnx
    from onnx import helper
    from onnx.reference import ReferenceEvaluator
    if not needs_stamping(model) or not shapes_follow_from_input_shapes(model):
        return model
    graph = model.graph
    initializers = {i.name for i in graph.initializer}
    rng = np.random.default_rng(0)
    feeds = {i.name: _placeholder(i, rng) for i in graph.input if i.name not in initializers}
    try:
        values = ReferenceEvaluator(model).run(None, feeds, intermediate=True)
    except Exception:  # the evaluator lacks an op, or fails on placeholders: keep as is
        return model
    stamped = onnx.ModelProto()
    stamped.CopyFrom(model)
    known = {}
    for entry in list(stamped.graph.value_info) + list(stamped.graph.output):
        known[entry.name] = entry
    for node in stamped.graph.node:
        for name in node.output:
            value = values.get(name)
            if not name or not isinstance(value, np.ndarray):
                continue
            entry = known.get(name)
            if entry is None:
                entry = stamped.graph.value_info.add()
                entry.name = name
                known[name] = entry
            if entry.type.tensor_type.elem_type == 0:
                entry.type.tensor_type.elem_type = helper.np_dtype_to_tensor_dtype(value.dtype)
            shape = entry.type.tensor_type.shape
            del shape.dim[:]
            for size in value.shape:
                shape.dim.add().dim_value = int(size)
    return stamped
