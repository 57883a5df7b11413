"""What crosses the model's boundary besides plain tensors: Python scalars
(the ScalarBoundary wrapper), inputs updated in place, and dynamic
dimensions (torch.export's dynamic_shapes and the signature's record)."""

from __future__ import annotations

import itertools

from ..errors import FrontendError, InputError
from ..runtime import structure


def _torch():
    import torch
    return torch


def leaf_kind(leaf) -> str:
    if isinstance(leaf, _torch().Tensor):
        return structure.LEAF
    if leaf is None:  # an optional argument left out: calls leave it out too
        return {"const": None}
    kind = structure.scalar_kind(leaf)
    if kind is None:
        raise InputError(f"example inputs must be tensors, numpy arrays or Python "
                         f"scalars, got {type(leaf).__name__}")
    return kind


def has_scalar_outputs(program) -> bool:
    return any(spec.kind.name == "USER_OUTPUT" and
               type(spec.arg).__name__ != "TensorArgument"
               for spec in program.graph_signature.output_specs)


def input_updates(program, user_inputs: list[str]) -> list[int]:
    """For each input the model updates in place, its index; torch.export
    returns those new values before the model's own outputs."""
    updates, seen_user_output = [], False
    for spec in program.graph_signature.output_specs:
        kind = spec.kind.name
        if kind == "USER_INPUT_MUTATION" and not seen_user_output:
            updates.append(user_inputs.index(spec.target))
        elif kind == "USER_OUTPUT":
            seen_user_output = True
        elif kind == "BUFFER_MUTATION":
            raise FrontendError(f"the model updates its buffer '{spec.target}' in forward "
                                "(e.g. batch-norm statistics in training mode); mlirc "
                                "compiles weights and buffers as constants: call "
                                "model.eval() or keep the state outside the model")
        else:
            raise FrontendError(f"unsupported output of the exported program: {kind} "
                                f"{getattr(spec, 'target', '')}")
    return updates


def dynamic_shapes_for_export(model, args: tuple, dynamic):
    """torch.export's dynamic_shapes from mlirc's short form, or None.

    Short form: {input name or position: {axis: "symbol"}}, or a symbol with
    bounds ("batch", 1, 64); one symbol name is one size wherever it
    appears. Anything else (torch.export.Dim objects in its own structure)
    is passed on as it is."""
    if dynamic is None:
        return None
    torch = _torch()
    if not isinstance(dynamic, dict) or not all(
            isinstance(axes, dict) and all(isinstance(a, int) and isinstance(v, (str, tuple))
                                           for a, v in axes.items())
            for axes in dynamic.values()):
        return dynamic  # torch.export's own form
    import inspect
    names = [name for name, parameter in inspect.signature(model.forward).parameters.items()
             if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD)]
    dims, specs = {}, [None] * len(args)
    for key, axes in dynamic.items():
        position = key if isinstance(key, int) else (names.index(key) if key in names else -1)
        if not 0 <= position < len(args) or not isinstance(args[position], torch.Tensor):
            raise InputError(f"dynamic: {key!r} is not a tensor input of the model "
                             f"(inputs: {names[:len(args)] or list(range(len(args)))})")
        spec = {}
        for axis, value in axes.items():
            name, low, high = (value, 1, None) if isinstance(value, str) else \
                (tuple(value) + (None, None))[:3]
            if not isinstance(name, str) or not name.isidentifier() or \
                    not -args[position].dim() <= axis < args[position].dim():
                raise InputError(f"dynamic: {key!r} axis {axis}: {value!r} is not a symbol "
                                 "name (optionally with min and max) of an existing axis")
            bounds = {"min": low or 1, **({"max": high} if high else {})}
            dims.setdefault(name, torch.export.Dim(name, **bounds))
            spec[axis % args[position].dim()] = dims[name]
        specs[position] = spec
    return tuple(specs)


def widen_unit_dynamic_sizes(args: tuple, export_dynamic) -> tuple | None:
    """`args` with each dynamic dimension of example size 0 or 1 made 2 (its
    values repeated, zeros for an empty one), or None when there is none or
    the dimensions are not given per positional tensor (torch.export's
    dynamic_shapes as a dict by name or a nested structure)."""
    torch = _torch()
    if not isinstance(export_dynamic, (tuple, list)) or len(export_dynamic) != len(args):
        return None
    widened, changed = list(args), False
    for position, spec in enumerate(export_dynamic):
        if not isinstance(spec, dict) or not isinstance(args[position], torch.Tensor):
            continue
        for axis, dim in spec.items():
            tensor = widened[position]
            if not isinstance(axis, int) or tensor.shape[axis] > 1 or \
                    getattr(dim, "max", 2) < 2:
                continue
            shape = list(tensor.shape)
            shape[axis] = 2
            widened[position] = tensor.expand(*shape).contiguous() if tensor.shape[axis] \
                else torch.zeros(shape, dtype=tensor.dtype)
            changed = True
    return tuple(widened) if changed else None


def dynamic_record(program, user_inputs: list[str], leaves: list,
                    export_dynamic=None) -> dict | None:
    """The signature's record of dynamic dimensions, read off the exported
    graph's example values (sizes that are torch.export symbols), with the
    user's Dim names where the short form gave them."""
    torch = _torch()
    nodes = {node.name: node for node in program.graph.nodes}
    symbols, inputs, outputs = {}, [], []
    for index, name in enumerate(user_inputs):
        value = nodes[name].meta.get("val")
        for axis, size in enumerate(getattr(value, "shape", ())):
            if not isinstance(size, torch.SymInt):
                continue
            expression = size.node.expr
            if not expression.is_Symbol:
                raise FrontendError(f"input '{name}' dimension {axis} is {expression}, a "
                                    "derived size: give each dynamic dimension its own symbol")
            symbol = str(expression)
            bounds = program.range_constraints.get(expression)
            symbols[symbol] = {"min": _finite(getattr(bounds, "lower", None)),
                               "max": _finite(getattr(bounds, "upper", None)),
                               "example": int(leaves[index].shape[axis])}
            inputs.append([index, axis, symbol])
    output_node = next(node for node in program.graph.nodes if node.op == "output")
    for index, node in enumerate(output_node.args[0]):
        value = node.meta.get("val") if hasattr(node, "meta") else None
        for axis, size in enumerate(getattr(value, "shape", ())):
            if isinstance(size, torch.SymInt):
                outputs.append([index, axis, str(size.node.expr)])
    if not inputs:
        return None
    record = {"symbols": symbols, "inputs": inputs, "outputs": outputs}
    return _with_user_names(record, export_dynamic)


def _with_user_names(record: dict, export_dynamic) -> dict:
    """torch.export's symbols (s31) renamed to the Dim names of a positional
    dynamic_shapes tuple (batch), where each symbol has one name."""
    import re
    if not isinstance(export_dynamic, tuple):
        return record
    names = {}
    for index, axis, symbol in record["inputs"]:
        spec = export_dynamic[index] if index < len(export_dynamic) else None
        dim = spec.get(axis) if isinstance(spec, dict) else None
        name = getattr(dim, "__name__", None)
        if name and name.isidentifier():
            names.setdefault(symbol, name)
    if len(set(names.values())) != len(names) or \
            set(names.values()) & (set(record["symbols"]) - set(names)):
        return record
    rename = lambda text: re.sub(r"\b[A-Za-z_]\w*\b",  # noqa: E731
                                 lambda m: names.get(m.group(0), m.group(0)), text)
    return {"symbols": {names.get(k, k): v for k, v in record["symbols"].items()},
            "inputs": [[i, a, names.get(s, s)] for i, a, s in record["inputs"]],
            "outputs": [[i, a, rename(e)] for i, a, e in record["outputs"]]}


def _finite(bound) -> int | None:
    try:
        return int(bound)
    except (TypeError, ValueError, OverflowError, AttributeError):
        return None  # unbounded (torch's int_oo)


_BOUNDARY_TOKENS = itertools.count()
_TRACED_OUTPUTS: dict[int, tuple] = {}
_SCALAR_TORCH_DTYPES = {"int": "int64", "float": "float64", "bool": "bool"}


def _scalar_boundary_class():
    torch = _torch()

    class ScalarBoundaryModule(torch.nn.Module):
        """The user's model with Python scalars at its boundary as 0-d tensors
        (i64, f64, bool): scalar inputs are read back with .item(), scalar
        outputs returned as tensors; the kinds go into the signature's trees."""

        def __init__(self, model, in_spec, kinds, specialize=None):
            super().__init__()
            self.model, self.in_spec = model, in_spec
            self.specialized = specialize
            self.input_kinds = [{"const": value} if specialize is not None
                                and kind in structure.SCALAR_LEAVES else kind
                                for kind, value in zip(kinds, specialize or kinds)]
            # what forward saw while traced (export may trace a copy of self)
            self.token = next(_BOUNDARY_TOKENS)

        def traced_outputs(self, leaves: list):
            """The output tree and kinds seen by forward. TorchDynamo (strict
            export, for models that read tensor values) does not replay
            forward's side effects, so then forward runs once, eagerly."""
            if self.token not in _TRACED_OUTPUTS:
                with torch.no_grad():
                    self(*self.tensor_leaves(leaves))
            return _TRACED_OUTPUTS.pop(self.token)

        def tensor_leaves(self, leaves: list) -> list:
            return [torch.tensor(leaf, dtype=getattr(torch, _SCALAR_TORCH_DTYPES[kind]))
                    if kind in structure.SCALAR_LEAVES else leaf
                    for kind, leaf in zip(self.input_kinds, leaves)
                    if not isinstance(kind, dict)]

        def forward(self, *tensors):
            from torch.utils import _pytree as pytree
            given = iter(tensors)
            values = []
            for kind in self.input_kinds:
                if isinstance(kind, dict):
                    values.append(kind["const"])
                elif kind in structure.SCALAR_LEAVES:
                    values.append(next(given).item())
                else:
                    values.append(next(given))
            args, kwargs = pytree.tree_unflatten(values, self.in_spec)
            result = self.model(*args, **kwargs)
            flat, out_spec = pytree.tree_flatten(result)
            output_kinds = [structure.LEAF if isinstance(v, torch.Tensor)
                            else structure.scalar_kind(v) for v in flat]
            _TRACED_OUTPUTS[self.token] = (out_spec, output_kinds)
            if None in output_kinds:
                bad = flat[output_kinds.index(None)]
                raise InputError(f"the model returns a {type(bad).__name__}: outputs must "
                                 "be tensors or Python scalars (in tuples, lists, dicts)")
            return tuple(v if kind == structure.LEAF else torch.scalar_tensor(
                v, dtype=getattr(torch, _SCALAR_TORCH_DTYPES[kind]))
                for v, kind in zip(flat, output_kinds))

    return ScalarBoundaryModule


def ScalarBoundary(model, in_spec, kinds, specialize=None):
    return _scalar_boundary_class()(model, in_spec, kinds, specialize)
