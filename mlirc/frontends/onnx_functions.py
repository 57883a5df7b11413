"""Expanding ONNX function ops into their definitions, in the ONNX graph.

Many newer ONNX ops (RMSNormalization, AffineGrid, SwiGLU, RotaryEmbedding,
LinearAttention...) are defined by the standard as a function of older ops.
torch-mlir lowers the older ops, so an op it cannot lower is expanded here
into its definition. Expanding in the ONNX graph, rather than in the
importer, lets the constant folder and shape inference see the expanded
nodes: function bodies compute axes and shapes at run time (Shape, Size,
Range), which the lowerings need as constants.

Each node to expand gets a model-local function specialised to it (its
attributes with the schema's defaults filled in, and, for context-dependent
functions, its input types); ONNX's inliner then splices the bodies in.
"""

from __future__ import annotations

EXPANSION_DOMAIN = "mlirc.expand"


def expandable(op_type: str, opset: int) -> bool:
    """Whether the standard defines `op_type` (at `opset`) as a function."""
    schema = _schema(op_type, opset)
    return schema is not None and _function_version(schema, opset) is not None


# A body may use other function ops of `op_types` (SwiGLU -> Swish).
MAX_NESTING = 4


def expand_functions(model, op_types: set[str], opset: int, infer_shapes):
    """A copy of `model` where top-level nodes of `op_types` (default
    domain) are replaced by their function bodies, the bodies' own such
    nodes included. `infer_shapes` (ModelProto -> ModelProto) types the
    graph before each round: context-dependent bodies depend on input types."""
    model = infer_shapes(model)
    for _ in range(MAX_NESTING):
        expanded = _expand_once(model, op_types, opset)
        if expanded is model:
            break
        model = infer_shapes(expanded)
    return model


def _expand_once(model, op_types: set[str], opset: int):
    import onnx
    from onnx import inliner

    expanded = onnx.ModelProto()
    expanded.CopyFrom(model)
    types = value_types(expanded.graph)
    functions = []
    for index, node in enumerate(expanded.graph.node):
        if node.domain not in ("", "ai.onnx") or node.op_type not in op_types:
            continue
        function = _specialised_function(node, opset, types)
        if function is None:
            continue
        function.name = f"{node.op_type}_{index}"
        function.domain = EXPANSION_DOMAIN
        node.op_type, node.domain = function.name, EXPANSION_DOMAIN
        functions.append(function)
    if not functions:
        return model
    expanded.functions.extend(functions)
    expanded.opset_import.append(onnx.helper.make_opsetid(EXPANSION_DOMAIN, 1))
    expanded = inliner.inline_selected_functions(
        expanded, [(EXPANSION_DOMAIN, f.name) for f in functions])
    kept = [o for o in expanded.opset_import if o.domain != EXPANSION_DOMAIN]
    del expanded.opset_import[:]
    expanded.opset_import.extend(kept)
    return expanded


def _schema(op_type: str, opset: int):
    import onnx
    try:
        return onnx.defs.get_schema(op_type, max_inclusive_version=opset)
    except Exception:  # not a standard op
        return None


def _function_version(schema, opset: int):
    """(version, context_dependent) of the newest body at or below `opset`."""
    plain = max((v for v in schema.function_opset_versions if v <= opset), default=None)
    dependent = max((v for v in schema.context_dependent_function_opset_versions
                     if v <= opset), default=None)
    if plain is None and dependent is None:
        return None
    if plain is not None and (dependent is None or dependent < plain):
        return plain, False
    return dependent, True


def _specialised_function(node, opset: int, types: dict):
    """The node's function body as a FunctionProto, attributes bound."""
    import onnx
    schema = _schema(node.op_type, opset)
    found = _function_version(schema, opset) if schema is not None else None
    if found is None:
        return None
    version, context_dependent = found
    _fill_default_attributes(node, schema)
    if context_dependent:
        if any(name and name not in types for name in node.input):
            return None  # the body depends on input types we do not know
        input_types = [types[name].SerializeToString() if name else b""
                       for name in node.input]
        serialized = schema.get_context_dependent_function_with_opset_version(
            version, node.SerializeToString(), input_types)
    else:
        serialized = schema.get_function_with_opset_version(version)
    if not serialized:
        return None
    function = onnx.FunctionProto()
    function.ParseFromString(serialized)
    del function.attribute[:]
    function.attribute.extend(schema.attributes)  # bound from the call site
    # The body is read at the model's opset: the inliner requires one version
    # per domain, and the ops a body uses keep their meaning across versions.
    kept = [o for o in function.opset_import if o.domain not in ("", "ai.onnx")]
    del function.opset_import[:]
    function.opset_import.extend([onnx.helper.make_opsetid("", opset), *kept])
    return function


def _fill_default_attributes(node, schema) -> None:
    """Adds the schema's default for every attribute the node leaves out:
    the inliner drops references to attributes the call site does not set."""
    present = {a.name for a in node.attribute}
    for name, attribute in schema.attributes.items():
        default = attribute.default_value
        if name in present or not default.name and not default.type:
            continue
        filled = node.attribute.add()
        filled.CopyFrom(default)
        filled.name = name


def value_types(graph) -> dict:
    """Name -> TypeProto for every typed value in the (inferred) graph."""
    import onnx
    types = {v.name: v.type for v in [*graph.input, *graph.value_info, *graph.output]
             if v.type.WhichOneof("value")}
    for initializer in graph.initializer:
        types.setdefault(initializer.name, onnx.helper.make_tensor_type_proto(
            initializer.data_type, list(initializer.dims)))
    return types
