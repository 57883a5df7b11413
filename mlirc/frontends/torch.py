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
                  fold_batch_norm: bool = True):
    """Returns (module in the torch dialect, Signature). The signature is also
    attached to the module. With `fold_batch_norm`, an eval-mode model's
    Conv -> BatchNorm pairs are folded first."""
    torch = _torch()
    from torch.utils import _pytree as pytree

    if not isinstance(model, torch.nn.Module):
        raise InputError(f"expected a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(example_args, (tuple, list)):
        example_args = (example_args,)
    args = to_torch_args(example_args)
    leaves, in_spec = pytree.tree_flatten((args, {}))  # none: a factory (arange, eye)
    kinds = [_leaf_kind(leaf) for leaf in leaves]

    if fold_batch_norm:
        model = fold_batch_norms(model)
    boundary = None
    if any(kind != structure.LEAF for kind in kinds):
        module, program, boundary = _import_with_scalars(model, leaves, in_spec, kinds, context)
    else:
        program = _export(model, args, bool(leaves))
        if _has_scalar_outputs(program):
            boundary = ScalarBoundary(model, in_spec, kinds)
            program = _export(boundary, tuple(leaves), bool(leaves))
        module = _import_program(program, context)

    function_signature = sig.read(module)
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
    signature = sig.Signature(function_signature.inputs, function_signature.outputs,
                              in_tree=in_tree, out_tree=out_tree, input_names=user_inputs,
                              input_updates=updates)
    sig.attach(module, signature)
    return module, signature


def _import_program(program, context: ir.Context | None) -> ir.Module:
    from torch_mlir.extras.fx_importer import FxImporter
    _expose_non_persistent_buffers(program)
    importer = FxImporter(context=context or ir.new_context(), hooks=_fast_literal_hooks())
    try:
        importer.import_frozen_program(program, func_name="main")
    except Exception as error:
        raise FrontendError(f"the FX importer failed: {type(error).__name__}: "
                            f"{str(error).strip()[:300]}") from None
    return importer.module


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


def _export(model, args: tuple, has_inputs: bool):
    """torch.export of `model` on `args`, decomposed; its errors as one line."""
    torch = _torch()
    try:
        with warnings.catch_warnings(), _quiet_symbolic_shapes():
            warnings.simplefilter("ignore")
            program = torch.export.export(model, args, strict=False)
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
