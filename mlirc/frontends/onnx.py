"""ONNX frontend: a .onnx file (or ModelProto) -> torch dialect with onnx.*
operators, through torch-mlir's ONNX importer.

Before import: external data is loaded from beside the file, dynamic input
dimensions are fixed from `input_shapes`, old opsets are converted, ONNX
function ops that torch-mlir cannot lower are expanded (onnx_functions.py),
what the fixed shapes make constant is folded, and ONNX shape inference runs
with data propagation (the importer needs every type).
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from pathlib import Path

from .. import ir
from ..analysis.support import onnx_nodes
from ..errors import FrontendError, InputError
from ..runtime import signature as sig
from . import onnx_functions, onnx_static_shapes

# torch-mlir's ONNX lowerings target recent opsets; older models are converted.
MIN_OPSET = 13
CONVERT_TO_OPSET = 17


def _onnx():
    try:
        import onnx
    except ImportError:
        raise InputError("ONNX input needs the onnx package (pip install onnx)") from None
    return onnx


def is_onnx_source(source) -> bool:
    if isinstance(source, (str, Path)):
        return str(source).endswith(".onnx")
    return type(source).__name__ == "ModelProto"


def load_model(source, input_shapes: dict | None = None, expand: set[str] = frozenset()):
    """A shape-inferred ModelProto ready for the importer, with the ONNX
    function ops named in `expand` replaced by their definitions."""
    onnx = _onnx()
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.exists():
            raise InputError(f"no such file: {path}")
        try:
            model = onnx.load(str(path))  # external data from beside the file
        except Exception as error:
            raise InputError(f"cannot read {path} as ONNX: {error}") from None
    else:
        model = onnx.ModelProto()
        model.CopyFrom(source)
    _check_initializers(model.graph)
    _fix_input_shapes(model, input_shapes or {})
    _check_model(model, source)
    model = _convert_old_opset(model)
    _name_nodes(model.graph)  # before folding: errors name the user's nodes
    if expand:
        model = onnx_functions.expand_functions(model, set(expand), model_opset(model),
                                                _infer_shapes)
        _name_nodes(model.graph)  # the inlined bodies' nodes, before the folder does
    model = _fold_constants(model)
    _name_nodes(model.graph)
    model.graph.name = "main"
    model = _infer_shapes(model)
    _check_attributes(model.graph)
    return onnx_static_shapes.stamp(model)


def _check_initializers(graph) -> None:
    """Refuses an initializer whose data does not fill its dimensions (the
    importer would read past it, giving different outputs run to run; ONNX
    Runtime refuses such a file too). External data is checked when loaded."""
    onnx = _onnx()
    four_bit = {getattr(onnx.TensorProto, name) for name in ("INT4", "UINT4", "FLOAT4E2M1")
                if hasattr(onnx.TensorProto, name)}
    for tensor in list(graph.initializer) + [a.t for n in graph.node for a in n.attribute
                                             if a.type == onnx.AttributeProto.TENSOR]:
        if any(d < 0 for d in tensor.dims):
            raise InputError(f"initializer '{tensor.name}' has a negative dimension "
                             f"{list(tensor.dims)}")
        if tensor.data_location == onnx.TensorProto.EXTERNAL or \
                tensor.data_type in (onnx.TensorProto.STRING, onnx.TensorProto.UNDEFINED):
            continue
        count = np_prod(tensor.dims)
        if tensor.HasField("raw_data"):
            try:
                itemsize = onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize
            except (KeyError, ValueError, TypeError):
                continue  # an element type without a numpy equivalent here
            expected = (count + 1) // 2 if tensor.data_type in four_bit else count * itemsize
            if len(tensor.raw_data) != expected:
                raise InputError(f"initializer '{tensor.name}' holds {len(tensor.raw_data)} "
                                 f"bytes; its dims {list(tensor.dims)} need {expected}")


# Protobuf cannot serialize more than this in one message: bigger models are
# checked through their file.
_PROTOBUF_LIMIT = (2 << 30) - 1


def _check_model(model, source) -> None:
    """onnx.checker in full mode (types and shapes inferred strictly): it refuses
    what crashed or hung the importer and the lowering (Conv with group 0, an
    input type its op does not take, a Softmax axis outside the rank)."""
    onnx = _onnx()
    try:
        if model.ByteSize() <= _PROTOBUF_LIMIT:
            # Inferred first: the checker wants every graph output's shape,
            # which files from other exporters (and ONNX Runtime) leave out.
            inferred = onnx.shape_inference.infer_shapes(model)
            _check_attributes(inferred.graph)  # before the checker: its messages are vaguer
            onnx.checker.check_model(inferred, full_check=True)
        elif isinstance(source, (str, Path)):
            onnx.checker.check_model(str(source), full_check=True)
    except InputError:
        raise
    except Exception as error:  # ValidationError, InferenceError, and worse on bad bytes
        message = " ".join(str(error).split())[:400]
        raise InputError(f"not a valid ONNX model: {message}") from None


# Ops whose `axis` may also name the position after the last dimension.
_AXIS_UP_TO_RANK = {"Flatten", "OneHot"}
_CONV_OPS = {"Conv", "ConvTranspose", "ConvInteger", "QLinearConv"}
_WINDOW_OPS = _CONV_OPS | {"AveragePool", "MaxPool", "LpPool", "MaxRoiPool"}


def _check_attributes(graph) -> None:
    """What onnx.checker lets through and the lowering does not survive
    (divides by, loops up to, or indexes with the value): a Conv group below
    1 or not dividing the channels, an axis or permutation outside the input's
    rank, a kernel, stride or dilation below 1, a negative pad."""
    ranks = _ranks(graph)
    for node in graph.node:
        attributes = {a.name: a for a in node.attribute}
        rank = ranks.get(node.input[0]) if node.input else None
        where = f"node '{node.name}' ({node.op_type})" if node.name else f"a {node.op_type} node"
        if "axis" in attributes and rank is not None:
            axis, top = attributes["axis"].i, rank + (node.op_type in _AXIS_UP_TO_RANK)
            if not -top <= axis < max(top, 1):
                raise InputError(f"{where}: axis {axis} is outside the input's rank {rank}")
        if node.op_type == "Transpose" and "perm" in attributes and rank is not None:
            perm = list(attributes["perm"].ints)
            if sorted(perm) != list(range(rank)):
                raise InputError(f"{where}: perm {perm} is not a permutation of the "
                                 f"input's {rank} dimensions")
        if node.op_type in _WINDOW_OPS:
            _check_window(node, attributes, where, ranks)
        _check_required_inputs(node, where)


def _check_required_inputs(node, where: str) -> None:
    """An empty input name marks an omitted optional input; in a required
    slot (a Concat operand) the lowering loops on it."""
    if "" not in node.input or node.domain not in ("", "ai.onnx"):
        return
    onnx = _onnx()
    try:
        formals = onnx.defs.get_schema(node.op_type).inputs
    except Exception:  # not a standard op: the importer reports it
        return
    optional = onnx.defs.OpSchema.FormalParameterOption.Optional
    for index, name in enumerate(node.input):
        if name == "" and formals and formals[min(index, len(formals) - 1)].option != optional:
            raise InputError(f"{where}: input {index} is empty, but it is not optional")


def _check_window(node, attributes, where: str, ranks: dict) -> None:
    for name in ("kernel_shape", "strides", "dilations"):
        if name in attributes and any(v < 1 for v in attributes[name].ints):
            raise InputError(f"{where}: {name} {list(attributes[name].ints)} must be >= 1")
    if "pads" in attributes and any(v < 0 for v in attributes["pads"].ints):
        raise InputError(f"{where}: pads {list(attributes['pads'].ints)} must be >= 0")
    if node.op_type not in _CONV_OPS:
        return
    group = attributes["group"].i if "group" in attributes else 1
    if group < 1:
        raise InputError(f"{where}: group {group} must be >= 1")
    channels = ranks.get(("channels", node.input[0]))
    if channels and channels % group:
        raise InputError(f"{where}: group {group} does not divide the {channels} input "
                         "channels")


def _ranks(graph) -> dict:
    """Value name -> rank, and ("channels", name) -> dimension 1 where known."""
    ranks = {}
    for value in list(graph.input) + list(graph.value_info) + list(graph.output):
        tensor_type = value.type.tensor_type
        if value.type.HasField("tensor_type") and tensor_type.HasField("shape"):
            dims = tensor_type.shape.dim
            ranks[value.name] = len(dims)
            if len(dims) > 1 and dims[1].HasField("dim_value"):
                ranks[("channels", value.name)] = dims[1].dim_value
    for tensor in graph.initializer:
        ranks[tensor.name] = len(tensor.dims)
        if len(tensor.dims) > 1:
            ranks[("channels", tensor.name)] = tensor.dims[1]
    return ranks


def _initializer_names(graph) -> set[str]:
    return {i.name for i in graph.initializer}


def _fix_input_shapes(model, input_shapes: dict) -> None:
    graph_inputs = {i.name: i for i in model.graph.input
                    if i.name not in _initializer_names(model.graph)}
    unknown = sorted(set(input_shapes) - set(graph_inputs))
    if unknown:
        raise InputError(f"--input-shape names unknown input(s) {unknown}; "
                         f"inputs: {sorted(graph_inputs)}")
    for name, value in graph_inputs.items():
        if not value.type.HasField("tensor_type"):
            raise InputError(f"input '{name}' is not a tensor; only tensor inputs are supported")
        dims = value.type.tensor_type.shape.dim
        if name in input_shapes:
            shape = tuple(input_shapes[name])
            if len(dims) and len(shape) != len(dims):
                raise InputError(f"--input-shape {name}: rank {len(shape)} given, "
                                 f"the model's input has rank {len(dims)}")
            del dims[:]
            for size in shape:
                dims.add().dim_value = int(size)
            continue
        # A named leading dimension (a batch, dim_param) stays dynamic, one
        # size per name; any other dynamic size must be fixed: nothing
        # checks at run time that it fits the model's weights.
        fixed_needed = [index for index, d in enumerate(dims) if not d.HasField("dim_value")
                        and (index > 0 or not d.dim_param.isidentifier())]
        if fixed_needed:
            raise InputError(f"input '{name}' has dynamic dimension(s) at axes {fixed_needed} "
                             "(only a named leading batch dimension stays dynamic): fix them "
                             f"with input_shapes={{'{name}': (...)}} or --input-shape "
                             f"{name}=1x3x224x224")


def _convert_old_opset(model):
    onnx = _onnx()
    version = model_opset(model)
    if not version or version >= MIN_OPSET:
        return model
    try:
        return onnx.version_converter.convert_version(model, CONVERT_TO_OPSET)
    except Exception:
        return model  # the importer may still manage the original opset


def _fold_constants(model):
    """Folds what the fixed input shapes make constant (Shape, Size, Range
    over them, Constant chains) with onnxscript's optimizer. ONNX functions
    compute axes and shapes at run time; torch-mlir's lowerings need them as
    constants, and shape inference needs them to type what follows."""
    try:
        from onnxscript import optimizer
    except ImportError:
        return model  # an optional step: the importer may still manage
    _cast_like_to_cast(model)
    try:
        with _quiet_loggers("onnxscript", "onnx_ir"):  # it logs a line per initializer
            folded = optimizer.optimize(model, num_iterations=2)
    except Exception:
        return model  # the optimizer is best effort: import the model as given
    _constants_as_tensors(folded.graph)
    return folded


@contextlib.contextmanager
def _quiet_loggers(*names: str):
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


_LIST_CONSTANTS = {"value_ints": "int64", "value_int": "int64",
                   "value_floats": "float32", "value_float": "float32"}


def _constants_as_tensors(graph) -> None:
    """Constant nodes with list or scalar attributes (as the folder writes
    them) -> a tensor `value`: torch-mlir fails on an empty `value_ints`."""
    import numpy as np
    from onnx import helper, numpy_helper
    for node in graph.node:
        if node.op_type != "Constant" or len(node.attribute) != 1 \
                or node.attribute[0].name not in _LIST_CONSTANTS:
            continue
        attribute = node.attribute[0]
        values = helper.get_attribute_value(attribute)
        array = np.array(values, dtype=_LIST_CONSTANTS[attribute.name])
        del node.attribute[:]
        node.attribute.append(helper.make_attribute("value", numpy_helper.from_array(array)))


def _cast_like_to_cast(model) -> None:
    """CastLike -> Cast where the target type is known and `saturate` is
    set: onnxscript's folder makes the same rewrite but drops `saturate`."""
    onnx = _onnx()
    types = onnx_functions.value_types(model.graph)
    for node in model.graph.node:
        if node.op_type != "CastLike" or node.domain not in ("", "ai.onnx") \
                or not any(a.name == "saturate" for a in node.attribute):
            continue
        like = types.get(node.input[1])
        if like is None or not like.HasField("tensor_type"):
            continue
        saturate = next(a.i for a in node.attribute if a.name == "saturate")
        cast = onnx.helper.make_node("Cast", [node.input[0]], list(node.output), name=node.name,
                                     to=like.tensor_type.elem_type, saturate=saturate)
        node.CopyFrom(cast)


def _name_nodes(graph) -> None:
    """Gives unnamed nodes a name, so errors can point at them."""
    for index, node in enumerate(graph.node):
        if not node.name:
            node.name = f"{node.op_type}_{index}"


def _infer_shapes(model):
    onnx = _onnx()
    try:
        return onnx.shape_inference.infer_shapes(model, data_prop=True)
    except ValueError:
        pass  # over protobuf's 2 GB: infer through files instead
    except onnx.shape_inference.InferenceError as error:
        raise InputError("ONNX shape inference failed: "
                         f"{' '.join(str(error).split())[:400]}") from None
    with tempfile.TemporaryDirectory(prefix="mlirc-onnx-") as folder:
        raw, inferred = Path(folder) / "raw.onnx", Path(folder) / "inferred.onnx"
        onnx.save(model, str(raw), save_as_external_data=True)
        onnx.shape_inference.infer_shapes_path(str(raw), str(inferred), data_prop=True)
        result = onnx.load(str(inferred), load_external_data=False)
        onnx.load_external_data_for_model(result, folder)
        return result


def functions_to_expand(node_op_types: dict[str, str], unsupported: list,
                        opset: int) -> set[str]:
    """Of the ops in an UnsupportedOpsError, the ONNX op types that ONNX
    defines as a function of other ops: expanding them lets torch-mlir lower
    the pieces. An op may be named as the ONNX op (`onnx.RMSNormalization`)
    or as the torch op it became (`torch.onnx.rotary_embedding`), whose
    source names the ONNX node; `node_op_types` maps node names to op types
    in the model as imported."""
    op_types = set()
    for op in unsupported:
        if op.name.startswith("onnx."):
            op_types.add(op.name[len("onnx."):])
        op_types |= {node_op_types[n] for n in onnx_nodes(op.sources) if n in node_op_types}
    return {t for t in op_types if onnx_functions.expandable(t, opset)}


def imported_opset(module) -> int:
    """The default-domain opset the importer recorded on the entry function."""
    function = sig.entry_function(module)
    attributes = function.attributes
    if "torch.onnx_meta.opset_version" not in attributes:
        return 0
    return ir.IntegerAttr(attributes["torch.onnx_meta.opset_version"]).value


def model_opset(model) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def import_model(source, context: ir.Context | None = None, input_shapes: dict | None = None,
                 expand: set[str] = frozenset()):
    """Returns (module with onnx.* torch.operator ops, Signature, node name
    -> op type of the graph imported). ONNX functions named in `expand` are
    imported as their definitions."""
    from torch_mlir.extras import onnx_importer

    model = load_model(source, input_shapes, expand)
    _check_batch_sizes(model)
    context = context or ir.new_context()
    importer = None
    try:
        info = onnx_importer.ModelInfo(model)
        module = info.create_module(context=context)
        importer = onnx_importer.NodeImporter.define_function(info.main_graph, module.operation)
        importer.import_all()
    except Exception as error:
        node = _first_unimported_node(model.graph, importer) if importer else None
        where = f" at node '{node.name}' ({node.op_type})" if node is not None else ""
        message = str(error).strip().splitlines()[0][:300] if str(error).strip() else ""
        raise FrontendError(f"the ONNX importer failed{where}: "
                            f"{type(error).__name__}: {message}") from None
    graph_inputs = [i.name for i in model.graph.input
                    if i.name not in _initializer_names(model.graph)]
    function_signature = sig.function_specs(module)
    signature = sig.Signature(function_signature.inputs, function_signature.outputs,
                              input_names=graph_inputs,
                              dynamic=_dynamic_record(model, function_signature))
    try:
        signature.check_consistent()
    except InputError as error:
        raise InputError(f"the model's dynamic dimensions cannot be followed to its outputs "
                         f"({error}); fix the sizes with input_shapes=") from None
    sig.attach(module, signature)
    return module, signature, {node.name: node.op_type for node in model.graph.node}


# sizes a dynamic batch is tried at before it is kept dynamic
BATCH_SIZES_TRIED = (2, 3)


def _check_batch_sizes(model) -> None:
    """Refuses a model whose named batch dimension cannot take other sizes
    (a Reshape to a fixed size, a MatMul with weights sized for it): ONNX's
    strict shape inference runs with each batch fixed at two sizes."""
    onnx = _onnx()
    initializers = _initializer_names(model.graph)
    named = {d.dim_param for i in model.graph.input if i.name not in initializers
             for d in i.type.tensor_type.shape.dim[:1] if d.dim_param}
    if not named:
        return
    for size in BATCH_SIZES_TRIED:
        trial = onnx.ModelProto()
        trial.CopyFrom(model)
        for value in trial.graph.input:
            for dim in value.type.tensor_type.shape.dim[:1]:
                if dim.dim_param in named:
                    dim.dim_value = size
        try:
            onnx.shape_inference.infer_shapes(trial, strict_mode=True, data_prop=True)
        except Exception as error:  # InferenceError and the checker's errors
            raise InputError(f"the model's dynamic batch ({', '.join(sorted(named))}) cannot "
                             f"be {size}: {' '.join(str(error).split())[:200]}; fix it with "
                             "input_shapes=") from None


def _dynamic_record(model, function_signature) -> dict | None:
    """The signature's record of the named dynamic dimensions (dim_param) of
    the inputs, and of the outputs whose dimensions carry the same names
    after shape inference. An output size that is not one of the inputs'
    names cannot be computed before the call: check_consistent refuses it."""
    initializers = _initializer_names(model.graph)
    inputs = [i for i in model.graph.input if i.name not in initializers]
    symbols, input_dims, output_dims = {}, [], []
    for index, value in enumerate(inputs):
        for axis, dim in enumerate(value.type.tensor_type.shape.dim):
            if not dim.HasField("dim_value") and dim.dim_param:
                symbols[dim.dim_param] = {"min": 1, "max": None, "example": None}
                input_dims.append([index, axis, dim.dim_param])
    if not symbols:
        return None
    for index, (value, spec) in enumerate(zip(model.graph.output,
                                              function_signature.outputs)):
        dims = value.type.tensor_type.shape.dim
        for axis, size in enumerate(spec.shape):
            if size == -1 and axis < len(dims) and dims[axis].dim_param in symbols:
                output_dims.append([index, axis, dims[axis].dim_param])
    return {"symbols": symbols, "inputs": input_dims, "outputs": output_dims}


def _first_unimported_node(graph, importer):
    imported = getattr(importer, "_nv_map", {})
    for node in graph.node:
        if any(output and output not in imported for output in node.output):
            return node
    return None


def specializable_inputs(model) -> list[str]:
    """Graph inputs that may act as shape operands (axes, shapes, repeats,
    pads): small integer or boolean tensors. Their values can be baked in."""
    onnx = _onnx()
    small = 64
    names = []
    for value in model.graph.input:
        if value.name in _initializer_names(model.graph) or \
                not value.type.HasField("tensor_type"):
            continue
        tensor_type = value.type.tensor_type
        integer = tensor_type.elem_type in (onnx.TensorProto.INT64, onnx.TensorProto.INT32,
                                            onnx.TensorProto.BOOL)
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tensor_type.shape.dim]
        if integer and all(d >= 0 for d in dims) and int(np_prod(dims)) <= small:
            names.append(value.name)
    return names


def specialize_inputs(model, values: dict):
    """A copy of `model` where the named inputs are constants with `values`."""
    onnx = _onnx()
    from onnx import numpy_helper
    specialized = onnx.ModelProto()
    specialized.CopyFrom(model)
    kept = [i for i in specialized.graph.input if i.name not in values]
    del specialized.graph.input[:]
    specialized.graph.input.extend(kept)
    for name, value in values.items():
        specialized.graph.initializer.append(numpy_helper.from_array(value, name))
    return specialized


def np_prod(dims) -> int:
    result = 1
    for d in dims:
        result *= d
    return result
