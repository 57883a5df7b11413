"""PyTorch frontend: nn.Module -> torch.export -> torch dialect (FX importer)."""

from __future__ import annotations

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
    return table


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
    from torch_mlir.extras.fx_importer import FxImporter

    if not isinstance(model, torch.nn.Module):
        raise InputError(f"expected a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(example_args, (tuple, list)):
        example_args = (example_args,)
    args = to_torch_args(example_args)
    leaves = pytree.tree_leaves(args)  # none: a factory module (arange, eye, constants)
    for leaf in leaves:
        if not isinstance(leaf, torch.Tensor):
            raise InputError(f"example inputs must be tensors or numpy arrays, "
                             f"got {type(leaf).__name__}")

    if fold_batch_norm:
        model = fold_batch_norms(model)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.export.export(model, args, strict=False)
            program = program.run_decompositions(_decompositions())
    except Exception as error:  # torch.export raises many kinds; report one line
        message = str(error).strip().splitlines()[0] if str(error).strip() else ""
        if not leaves and isinstance(error, TypeError) and "missing" in message:
            raise InputError(f"no example inputs, but the model needs some ({message}): "
                             "give the tensors it is called with") from None
        raise FrontendError(f"torch.export failed: {type(error).__name__}: {message}") from None

    _expose_non_persistent_buffers(program)
    context = context or ir.new_context()
    importer = FxImporter(context=context, hooks=_fast_literal_hooks())
    try:
        importer.import_frozen_program(program, func_name="main")
    except Exception as error:
        raise FrontendError(f"the FX importer failed: {type(error).__name__}: "
                            f"{str(error).strip()[:300]}") from None
    module = importer.module

    function_signature = sig.read(module)
    user_inputs = [s.arg.name for s in program.graph_signature.input_specs
                   if s.kind.name == "USER_INPUT"]
    out_tree = program.call_spec.out_spec
    if out_tree.num_leaves != len(function_signature.outputs):
        raise FrontendError(f"the model returns {out_tree.num_leaves} values but only "
                            f"{len(function_signature.outputs)} are tensors; "
                            "return tensors only")
    signature = sig.Signature(
        function_signature.inputs, function_signature.outputs,
        in_tree=structure.from_treespec(program.call_spec.in_spec),
        out_tree=structure.from_treespec(out_tree),
        input_names=user_inputs)
    sig.attach(module, signature)
    return module, signature


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
