"""PyTorch frontend: nn.Module -> torch.export -> torch dialect (FX importer)."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np

from .. import ir
from ..errors import FrontendError, InputError
from ..runtime import signature as sig
from ..runtime import structure


def _torch():
    import torch
    return torch


def to_torch_args(example_args) -> tuple:
    """Example arguments with numpy arrays turned into tensors (structure kept)."""
    torch = _torch()
    from torch.utils import _pytree as pytree

    def convert(leaf):
        if isinstance(leaf, np.ndarray):
            return torch.from_numpy(np.ascontiguousarray(leaf))
        if isinstance(leaf, (np.generic,)):
            return torch.tensor(leaf)
        return leaf
    return tuple(pytree.tree_map(convert, tuple(example_args)))


def fold_batch_norms(model):
    """An eval-mode model with each Conv -> BatchNorm pair folded into one
    convolution (scaled weights, shifted bias), or the model itself when it
    has none or cannot be traced. Saves a normalisation pass over every
    convolution's output: ResNet-50 runs about 20% faster."""
    torch = _torch()
    from torch.fx.experimental.optimization import fuse
    if model.training or not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
                                 for m in model.modules()):
        return model
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fuse(model, inplace=False)
    except Exception:  # not symbolically traceable: export it as it is
        return model


def _decompositions() -> dict:
    """torch-mlir's FX decomposition table, with f32 var_mean kept in f32.

    torch.export turns LayerNorm into var_mean, which torch-mlir decomposes by
    casting the input to f64 (the transformer's five slowest reductions).
    Two passes in f32 (mean, then the mean of squared deviations) stay within
    f32 rounding of PyTorch and vectorize."""
    torch = _torch()
    from torch_mlir.extras.fx_decomp_util import get_decomposition_table
    table = dict(get_decomposition_table())
    table[torch.ops.aten.var_mean.correction] = _var_mean_in_f32
    table[torch.ops.aten.adaptive_max_pool2d.default] = _adaptive_max_pool2d_by_windows
    for bag in (torch.ops.aten._embedding_bag.default, torch.ops.aten.embedding_bag.default,
                torch.ops.aten.embedding_bag.padding_idx):
        table[bag] = _embedding_bag_by_masks
    for op in (torch.ops.aten.gelu.default, torch.ops.aten.erf.default):
        table[op] = _in_f32_when_narrow(op)
    table[torch.ops.aten.diagonal_scatter.default] = _diagonal_scatter_2d
    for window in (torch.ops.aten.hamming_window.default, torch.ops.aten.hamming_window.periodic,
                   torch.ops.aten.hamming_window.periodic_alpha,
                   torch.ops.aten.hamming_window.periodic_alpha_beta,
                   torch.ops.aten.blackman_window.default, torch.ops.aten.blackman_window.periodic,
                   torch.ops.aten.bartlett_window.default, torch.ops.aten.bartlett_window.periodic,
                   torch.ops.aten.kaiser_window.default, torch.ops.aten.kaiser_window.periodic,
                   torch.ops.aten.kaiser_window.beta):
        table[window] = _window(window)
    return table


def _in_f32_when_narrow(op):
    """`op` on bf16/f16 computed in f32 and rounded once, as PyTorch's CPU
    kernels do: MLIR has no bf16/f16 erf to lower (gelu failed to legalize)."""
    def decomposition(x, *args, **kwargs):
        torch = _torch()
        if x.dtype not in (torch.bfloat16, torch.float16):
            return NotImplemented
        return op(x.float(), *args, **kwargs).to(x.dtype)
    return decomposition


def _rewrite_dynamic_views(program) -> None:
    """Views of tensors with dynamic sizes become, run by run of dimensions
    with equal products, a collapse of the run and an unflatten into the
    new sizes, in the exported graph.
    torch-mlir lowers `aten.view` of `[?, ?, 32]` to `[?*?, 32]` by casting
    the input to `?x1x32` (wrong results, NaN). The nodes are added after
    decomposition, which would turn them into views
    again. A dynamic view that does neither is refused: it would be wrong."""
    torch = _torch()
    aten = torch.ops.aten
    graph = program.graph_module.graph
    changed = False
    for node in list(graph.nodes):
        if node.op != "call_function" or node.target not in (
                aten.view.default, aten._unsafe_view.default, aten.reshape.default):
            continue
        source_value, result_value = node.args[0].meta.get("val"), node.meta.get("val")
        if source_value is None or result_value is None or \
                all(isinstance(d, int) for d in source_value.shape):
            continue
        groups = _view_groups(list(source_value.shape), list(result_value.shape))
        if groups is None:
            where = (node.meta.get("stack_trace") or "").strip().splitlines()
            raise FrontendError(f"a reshape of dynamic sizes {list(source_value.shape)} -> "
                                f"{list(result_value.shape)} with no matching runs of "
                                f"sizes ({where[-2].strip() if len(where) > 1 else node.name}"
                                "); it cannot be compiled correctly yet")
        if all(len(a) == 1 for a, _ in groups) and all(len(b) == 1 for _, b in groups):
            continue
        current, axis = node.args[0], 0
        sizes = list(node.args[1])
        with graph.inserting_before(node), source_value.fake_mode:
            value = source_value
            for source, target in groups:
                # (op, its arguments in the graph, the same for the fake value)
                steps = []
                if len(source) > 1:
                    span = (axis, axis + len(source) - 1)
                    steps.append((torch.ops.prims.collapse.default, span, span))
                if len(target) > 1:
                    steps.append((torch.ops.aten.unflatten.int,
                                  (axis, _unflatten_sizes(sizes[axis:axis + len(target)],
                                                          target)),
                                  (axis, list(result_value.shape[axis:axis + len(target)]))))
                for target_op, arguments, fake_arguments in steps:
                    current = graph.call_function(target_op, (current, *arguments))
                    value = target_op(value, *fake_arguments)
                    current.meta.update({key: node.meta[key] for key in _KEPT_META
                                         if key in node.meta}, val=value)
                axis += len(target)
        node.replace_all_uses_with(current)
        graph.erase_node(node)
        changed = True
    if changed:
        graph.eliminate_dead_code()  # the size products the views took
        graph.lint()
        program.graph_module.recompile()


# what a replaced node's replacements keep of its metadata (not its shape)
_KEPT_META = ("stack_trace", "nn_module_stack", "source_fn_stack", "from_node", "seq_nr")


def _unflatten_sizes(arguments: list, target: list) -> list:
    """The sizes to unflatten into: with one dynamic size among them, -1 for
    it (torch-mlir cannot lower a size computed as an integer product, such
    as 4*s for attention heads); with more, the graph's own size values."""
    dynamic = [i for i, size in enumerate(target) if not isinstance(size, int)]
    if len(dynamic) == 1:
        return [-1 if i == dynamic[0] else size for i, size in enumerate(target)]
    return list(arguments)


def _view_groups(shape: list, size: list):
    """[(input dims, output dims)] pairing runs of equal products, or None
    when a -1 or an unequal product makes the pairing unclear."""
    if any(isinstance(d, int) and d < 0 for d in size):
        return None
    groups, i, j = [], 0, 0
    while i < len(shape) and j < len(size):
        source, target = [shape[i]], [size[j]]
        i, j = i + 1, j + 1
        while not _same_size(_product(source), _product(target)):
            if _known_size(_product(source)) < _known_size(_product(target)) and i < len(shape):
                source.append(shape[i])
                i += 1
            elif j < len(size):
                target.append(size[j])
                j += 1
            else:
                return None
        groups.append((source, target))
    # size-1 dimensions left at the end join the last run
    rest_source, rest_target = shape[i:], size[j:]
    if groups and all(isinstance(d, int) and d == 1 for d in rest_source + rest_target):
        groups[-1] = (groups[-1][0] + rest_source, groups[-1][1] + rest_target)
    elif rest_source or rest_target:
        return None
    return groups


def _product(sizes: list):
    total = 1
    for size in sizes:
        total = total * size
    return total


def _expression(size):
    import sympy
    return size.node.expr if hasattr(size, "node") else sympy.Integer(size)


def _same_size(a, b) -> bool:
    """Symbolically equal sizes, without asking torch to guard on them."""
    import sympy
    return sympy.simplify(_expression(a) - _expression(b)) == 0


def _known_size(size) -> float:
    """A size's value with each symbol at its example hint (for ordering)."""
    expression = _expression(size)
    if expression.is_number:
        return float(expression)
    hint = size.node.hint if hasattr(size, "node") else None
    return float(hint) if hint is not None else float("inf")


def _diagonal_scatter_2d(x, source, offset=0, dim1=0, dim2=1):
    """diagonal_scatter of a matrix (x.diagonal().fill_(v)), which torch-mlir
    does not lower, as a select between the matrix and the diagonal's values."""
    torch = _torch()
    if x.dim() != 2 or sorted((dim1 % 2, dim2 % 2)) != [0, 1]:
        return NotImplemented
    if dim1 % 2 == 1:
        offset = -offset
    rows = torch.arange(x.shape[0])[:, None]
    columns = torch.arange(x.shape[1])[None, :]
    on_diagonal = (columns - rows) == offset
    position = (rows if offset >= 0 else columns).clamp(0, max(source.shape[0] - 1, 0))
    return torch.where(on_diagonal, source[position].to(x.dtype), x)


def _window(op):
    """Hamming, Blackman, Bartlett and Kaiser windows (torch-mlir lowers only
    Hann's) from their definitions; Kaiser's Bessel I0 as its power series."""
    name = op.name().split("::")[1]

    def decomposition(length, *args, dtype=None, layout=None, device=None, pin_memory=None,
                      **kwargs):
        torch = _torch()
        periodic = args[0] if args else kwargs.get("periodic", True)
        dtype = dtype or torch.get_default_dtype()
        if length <= 1:
            return torch.ones(length, dtype=dtype)
        span = length if periodic else length - 1
        n = torch.arange(length, dtype=torch.float64)
        angle = 2 * math.pi * n / span
        if name == "hamming_window":
            alpha = args[1] if len(args) > 1 else kwargs.get("alpha", 0.54)
            beta = args[2] if len(args) > 2 else kwargs.get("beta", 0.46)
            values = alpha - beta * torch.cos(angle)
        elif name == "blackman_window":
            values = 0.42 - 0.5 * torch.cos(angle) + 0.08 * torch.cos(2 * angle)
        elif name == "bartlett_window":
            values = 1 - torch.abs(2 * n / span - 1)
        else:
            beta = args[1] if len(args) > 1 else kwargs.get("beta", 12.0)
            half = span / 2
            ratio = (n - half) / half
            values = _bessel_i0(beta * torch.sqrt(torch.clamp(1 - ratio * ratio, min=0))) / \
                _bessel_i0(float(beta))
        return values.to(dtype)
    return decomposition


_BESSEL_TERMS = 40


def _bessel_i0(x):
    """I0(x) = sum over k of ((x/2)^k / k!)^2, in f64 (40 terms: exact to f64
    rounding for the betas windows use); x a tensor or a Python float."""
    term = x * 0 + 1
    total = term
    quarter_square = x * x / 4
    for k in range(1, _BESSEL_TERMS):
        term = term * quarter_square / (k * k)
        total = total + term
    return total


_EMBEDDING_BAG_SUM, _EMBEDDING_BAG_MEAN, _EMBEDDING_BAG_MAX = 0, 1, 2


def _embedding_bag_by_masks(weight, indices, offsets, scale_grad_by_freq=False, mode=0,
                            sparse=False, per_sample_weights=None, include_last_offset=False,
                            padding_idx=-1):
    """embedding_bag's mean and max modes, which torch-mlir does not lower,
    and its sum mode with per-sample weights or a padding index, which
    torch-mlir's lowering ignores (wrong sums), as a (bags x indices)
    membership mask: sum and mean are masked matmuls (mean divided by each
    bag's size), max a masked maximum (an empty bag gives zeros, as in
    PyTorch). Returns PyTorch's four results."""
    torch = _torch()
    plain_sum = mode == _EMBEDDING_BAG_SUM and per_sample_weights is None and \
        (padding_idx is None or padding_idx < 0) and \
        indices.dtype == offsets.dtype == torch.int64
    if plain_sum or indices.dim() != 1:
        return NotImplemented
    indices, offsets = indices.long(), offsets.long()  # i32 compares fail to lower
    count = indices.shape[0]
    starts = offsets[:-1] if include_last_offset else offsets
    ends = offsets[1:] if include_last_offset else torch.cat(
        [offsets[1:], torch.full((1,), count, dtype=offsets.dtype)])
    positions = torch.arange(count, dtype=offsets.dtype)
    member = (positions[None, :] >= starts[:, None]) & (positions[None, :] < ends[:, None])
    if padding_idx is not None and padding_idx >= 0:
        member = member & (indices != padding_idx)[None, :]
    rows = weight[indices]
    sizes = member.sum(1)
    offset2bag = (positions[:, None] >= starts[None, :]).sum(1) - 1
    if mode == _EMBEDDING_BAG_SUM:
        weights = member.to(weight.dtype)
        if per_sample_weights is not None:
            weights = weights * per_sample_weights[None, :].to(weight.dtype)
        return weights @ rows, offset2bag, sizes, sizes
    if mode == _EMBEDDING_BAG_MEAN:
        totals = member.to(weight.dtype) @ rows
        output = totals / sizes.clamp(min=1)[:, None].to(weight.dtype)
        return output, offset2bag, sizes, sizes
    masked = torch.where(member[:, :, None], rows[None, :, :],
                         torch.full((), float("-inf"), dtype=weight.dtype))
    maxima, position = masked.max(1)
    filled = sizes[:, None] > 0
    output = torch.where(filled, maxima, torch.zeros((), dtype=weight.dtype))
    max_indices = torch.where(filled, indices[position], torch.full((), -1, dtype=indices.dtype))
    return output, offset2bag, sizes, max_indices


def _adaptive_max_pool2d_by_windows(x, output_size):
    """Adaptive max pooling whose windows differ in stride (13 rows into 3),
    one window at a time: torch-mlir's lowering aborts the process on those
    ("only support cases with fixed stride size"). Returns the maxima and
    their flat indices into each H x W plane, as PyTorch does."""
    torch = _torch()
    height, width = x.shape[-2], x.shape[-1]
    out_height, out_width = output_size
    if height % out_height == 0 and width % out_width == 0:
        return NotImplemented  # fixed stride: torch-mlir lowers it to one pooling op
    value_rows, index_rows = [], []
    for i in range(out_height):
        top, bottom = (i * height) // out_height, -(-(i + 1) * height // out_height)
        values, indices = [], []
        for j in range(out_width):
            left, right = (j * width) // out_width, -(-(j + 1) * width // out_width)
            window = x[..., top:bottom, left:right].flatten(-2)
            value, position = torch.max(window, -1)
            span = right - left
            values.append(value)
            indices.append((top + position // span) * width + left + position % span)
        value_rows.append(torch.stack(values, -1))
        index_rows.append(torch.stack(indices, -1))
    return torch.stack(value_rows, -2), torch.stack(index_rows, -2)


def _var_mean_in_f32(x, dim=None, *, correction=None, keepdim=False):
    torch = _torch()
    if x.dtype != torch.float32:
        return NotImplemented  # other types keep torch-mlir's decomposition
    dims = list(range(x.dim())) if not dim else [d % x.dim() for d in dim]
    count = 1
    for d in dims:
        count *= x.shape[d]
    mean = torch.mean(x, dims, keepdim=True)
    centered = x - mean
    divisor = max(count - (1 if correction is None else correction), 0)
    variance = torch.sum(centered * centered, dims, keepdim=keepdim) / divisor
    return variance, (mean if keepdim else torch.squeeze(mean, dims))


def _expose_non_persistent_buffers(program) -> None:
    """torch.export keeps a buffer registered with persistent=False (e.g.
    Hugging Face's position_ids) among the program's constants, where the FX
    importer's frozen import does not look ("Could not find state mapping
    for buffer"); it is given to the importer in the state dict too."""
    for spec in program.graph_signature.input_specs:
        if spec.kind.name == "BUFFER" and spec.persistent is False and \
                spec.target not in program.state_dict and spec.target in program.constants:
            program.state_dict[spec.target] = program.constants[spec.target]


def import_module(model, example_args, context: ir.Context | None = None,
                  fold_batch_norm: bool = True, dynamic_shapes=None):
    """Returns (module in the torch dialect, Signature). The signature is also
    attached to the module. With `fold_batch_norm`, an eval-mode model's
    Conv -> BatchNorm pairs are folded first. `dynamic_shapes`: torch.export's
    own argument, or mlirc's short form (see `dynamic_shapes_for_export`)."""
    torch = _torch()
    from torch.utils import _pytree as pytree

    if not isinstance(model, torch.nn.Module):
        raise InputError(f"expected a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(example_args, (tuple, list)):
        example_args = (example_args,)
    args = to_torch_args(example_args)
    leaves, in_spec = pytree.tree_flatten((args, {}))  # none: a factory (arange, eye)
    kinds = [_leaf_kind(leaf) for leaf in leaves]

    export_dynamic = dynamic_shapes_for_export(model, args, dynamic_shapes)
    if fold_batch_norm:
        model = fold_batch_norms(model)
    boundary = None
    if any(kind != structure.LEAF for kind in kinds):
        if export_dynamic is not None:
            raise InputError("dynamic_shapes with Python scalar or None arguments is not "
                             "supported yet")
        module, program, boundary = _import_with_scalars(model, leaves, in_spec, kinds, context)
    else:
        program = _export(model, args, bool(leaves), export_dynamic)
        if _has_scalar_outputs(program):
            boundary = ScalarBoundary(model, in_spec, kinds)
            program = _export(boundary, tuple(leaves), bool(leaves))
        if export_dynamic is not None:
            _rewrite_dynamic_views(program)
        module = _import_program(program, context)

    function_signature = sig.function_specs(module)
    user_inputs = [s.arg.name for s in program.graph_signature.input_specs
                   if s.kind.name == "USER_INPUT"]
    updates = _input_updates(program, user_inputs)
    if boundary is None:
        in_tree = structure.from_treespec(program.call_spec.in_spec)
        out_tree = structure.from_treespec(program.call_spec.out_spec)
    else:
        out_spec, output_kinds = boundary.traced_outputs()
        in_tree = structure.from_treespec(in_spec, boundary.input_kinds)
        out_tree = structure.from_treespec(out_spec, output_kinds)
    returned = len(function_signature.outputs) - len(updates)
    if structure.count_leaves(out_tree) != returned:
        raise FrontendError(f"the model returns {structure.count_leaves(out_tree)} values, "
                            f"but its exported program computes {returned}")
    dynamic = _dynamic_record(program, user_inputs, leaves, export_dynamic) \
        if export_dynamic is not None else None
    signature = sig.Signature(function_signature.inputs, function_signature.outputs,
                              in_tree=in_tree, out_tree=out_tree, input_names=user_inputs,
                              input_updates=updates, dynamic=dynamic)
    try:
        signature.check_consistent()
    except InputError as error:
        raise FrontendError(f"the imported function's dynamic dimensions do not match "
                            f"torch.export's: {error}") from None
    sig.attach(module, signature)
    return module, signature


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


def _dynamic_record(program, user_inputs: list[str], leaves: list,
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


def _import_program(program, context: ir.Context | None) -> ir.Module:
    from torch_mlir.extras.fx_importer import FxImporter
    _expose_non_persistent_buffers(program)
    _copy_weights_listed_with_values(program)
    importer = FxImporter(context=context or ir.new_context(), hooks=_fast_literal_hooks())
    try:
        importer.import_frozen_program(program, func_name="main")
    except Exception as error:
        raise FrontendError(f"the FX importer failed: {type(error).__name__}: "
                            f"{str(error).strip()[:300]}") from None
    return importer.module


def _copy_weights_listed_with_values(program) -> None:
    """A weight or buffer inside a list argument (swin_t's relative position
    index in `aten.index(table, [None, index])`) goes through an aten.clone
    node: the frozen import puts the tensor itself in the list, and the FX
    importer refuses a list that mixes tensors and graph values
    ("Heterogeneous lists are not supported")."""
    torch = _torch()
    lifted = {spec.arg.name for spec in program.graph_signature.input_specs
              if spec.kind.name in ("PARAMETER", "BUFFER", "CONSTANT_TENSOR")}
    graph = program.graph_module.graph
    for node in list(graph.nodes):
        if node.op != "call_function":
            continue
        arguments = []
        for argument in node.args:
            if isinstance(argument, (list, tuple)) and any(
                    isinstance(item, torch.fx.Node) and item.name in lifted for item in argument):
                items = []
                for item in argument:
                    if isinstance(item, torch.fx.Node) and item.name in lifted:
                        with graph.inserting_before(node):
                            copy = graph.call_function(torch.ops.aten.clone.default, (item,))
                        copy.meta["val"] = item.meta.get("val")
                        item = copy
                    items.append(item)
                argument = type(argument)(items)
            arguments.append(argument)
        node.args = tuple(arguments)
    program.graph_module.recompile()


def _leaf_kind(leaf) -> str:
    if isinstance(leaf, _torch().Tensor):
        return structure.LEAF
    if leaf is None:  # an optional argument left out: calls leave it out too
        return {"const": None}
    kind = structure.scalar_kind(leaf)
    if kind is None:
        raise InputError(f"example inputs must be tensors, numpy arrays or Python "
                         f"scalars, got {type(leaf).__name__}")
    return kind


def _export(model, args: tuple, has_inputs: bool, dynamic_shapes=None):
    """torch.export of `model` on `args`, decomposed; its errors as one line."""
    torch = _torch()
    try:
        with warnings.catch_warnings(), _quiet_symbolic_shapes():
            warnings.simplefilter("ignore")
            program = torch.export.export(model, args, strict=False,
                                          dynamic_shapes=dynamic_shapes)
            return program.run_decompositions(_decompositions())
    except Exception as error:  # torch.export raises many kinds; report one line
        message = str(error).strip().splitlines()[0] if str(error).strip() else ""
        if not has_inputs and isinstance(error, TypeError) and "missing" in message:
            raise InputError(f"no example inputs, but the model needs some ({message}): "
                             "give the tensors it is called with") from None
        if type(error).__name__ in ("GuardOnDataDependentSymNode",
                                    "UserError") and "data-dependent" in str(error):
            raise FrontendError(
                f"the model's control flow or shapes depend on a tensor's value "
                f"(.item(), int(t), float(t), bool(t) or `if t:`){_user_frame(error)}; "
                f"torch.export cannot trace that ({message})") from None
        if "Constraints violated" in message:  # the reasons follow, one per line
            reasons = [line.strip(" -") for line in str(error).splitlines()[1:4]
                       if line.strip().startswith("-")]
            message = "; ".join([message] + reasons)
        raise FrontendError(f"torch.export failed: {type(error).__name__}: {message}") from None


def _user_frame(error) -> str:
    """' at file:line' of the innermost frame of the traceback outside torch."""
    import traceback
    frames = [f for f in traceback.extract_tb(error.__traceback__)
              if "/torch/" not in f.filename and "/mlirc/" not in f.filename]
    return f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""


class _quiet_symbolic_shapes:
    """torch.export prints a whole graph to stderr (and logs a warning) for
    each data-dependent guard it fails; the error mlirc raises says it in one
    line."""

    def __enter__(self):
        import contextlib
        import io
        import logging
        self.logger = logging.getLogger("torch.fx.experimental.symbolic_shapes")
        self.level = self.logger.level
        self.logger.setLevel(logging.ERROR)
        self.redirect = contextlib.redirect_stderr(io.StringIO())
        self.redirect.__enter__()

    def __exit__(self, *exc):
        self.redirect.__exit__(*exc)
        self.logger.setLevel(self.level)
        return False


def _has_scalar_outputs(program) -> bool:
    return any(spec.kind.name == "USER_OUTPUT" and
               type(spec.arg).__name__ != "TensorArgument"
               for spec in program.graph_signature.output_specs)


def _input_updates(program, user_inputs: list[str]) -> list[int]:
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


def _import_with_scalars(model, leaves: list, in_spec, kinds: list, context):
    """Imports a model that takes Python scalars: first as run-time values (0-d
    tensors read with .item()); if its code needs their values (a shape, a
    branch), specialized to the example's values, which calls must repeat."""
    boundary = ScalarBoundary(model, in_spec, kinds)
    try:
        program = _export(boundary, tuple(boundary.tensor_leaves(leaves)), True)
        return _import_program(program, context), program, boundary
    except FrontendError:
        boundary = ScalarBoundary(model, in_spec, kinds, specialize=leaves)
        program = _export(boundary, tuple(boundary.tensor_leaves(leaves)), True)
        return _import_program(program, context), program, boundary


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

        def traced_outputs(self):
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


def _fast_literal_hooks():
    """Importer hooks that turn weights into MLIR resources through numpy.

    torch-mlir's default path goes through `tensor.tolist()`, which takes about
    a minute for ResNet-50's 25M weights; `.numpy()` takes milliseconds.
    Anything unusual (fake tensors, bf16, scalars) falls back to the default."""
    import torch
    from torch_mlir.extras import fx_importer

    class FastLiterals(fx_importer.FxImporterHooks):
        def resolve_literal(self, gni, literal, info):
            if not isinstance(literal, torch.Tensor) or literal.numel() <= 1 \
                    or literal.dtype == torch.bfloat16 \
                    or type(literal).__name__ == "FakeTensor":
                return None
            try:
                array = literal.detach().cpu().contiguous().numpy()
                vtensor_type = gni._cc.tensor_to_vtensor_type(literal)
            except Exception:
                return None
            shape = "_".join(str(d) for d in literal.shape)
            resource = fx_importer.DenseResourceElementsAttr.get_from_buffer(
                array, f"torch_tensor_{shape}_{literal.dtype}",
                fx_importer.create_mlir_tensor_type(literal))
            return fx_importer.Operation.create(
                name="torch.vtensor.literal", results=[vtensor_type],
                attributes={"value": resource}).result

    return FastLiterals()
