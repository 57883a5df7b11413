"""PyTorch frontend: nn.Module -> torch.export -> torch dialect (FX importer)."""

from __future__ import annotations

import warnings

import numpy as np

from .. import ir
from ..errors import FrontendError, InputError
from ..runtime import signature as sig
from ..runtime import structure
from . import torch_boundary, torch_complex, torch_decompositions, torch_graph


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
    kinds = [torch_boundary.leaf_kind(leaf) for leaf in leaves]

    export_dynamic = torch_boundary.dynamic_shapes_for_export(model, args, dynamic_shapes)
    if fold_batch_norm:
        model = fold_batch_norms(model)
    boundary = None
    if any(kind != structure.LEAF for kind in kinds):
        if export_dynamic is not None:
            raise InputError("dynamic_shapes with Python scalar or None arguments is not "
                             "supported yet")
        module, program, boundary = _import_with_scalars(model, leaves, in_spec, kinds, context)
    else:
        program, args = _export_dynamic_examples(model, args, bool(leaves), export_dynamic)
        leaves = pytree.tree_flatten((args, {}))[0]
        if torch_complex.has_complex(program):
            torch_complex.check_boundary(program, kinds, export_dynamic)
            boundary = torch_complex.RealPairs(program, leaves)
            program = _export(boundary.module, tuple(boundary.real_leaves(leaves)), True)
        elif torch_boundary.has_scalar_outputs(program):
            boundary = torch_boundary.ScalarBoundary(model, in_spec, kinds)
            program = _export(boundary, tuple(leaves), bool(leaves))
        torch_graph.fold_broadcast_weight_matmuls(program)
        if export_dynamic is not None:
            torch_graph.rewrite_dynamic_views(program)
        module = _import_program(program, context)

    function_signature = sig.function_specs(module)
    user_inputs = [s.arg.name for s in program.graph_signature.input_specs
                   if s.kind.name == "USER_INPUT"]
    updates = torch_boundary.input_updates(program, user_inputs)
    if boundary is None:
        in_tree = structure.from_treespec(program.call_spec.in_spec)
        out_tree = structure.from_treespec(program.call_spec.out_spec)
    else:
        out_spec, output_kinds = boundary.traced_outputs(leaves)
        in_tree = structure.from_treespec(in_spec, boundary.input_kinds)
        out_tree = structure.from_treespec(out_spec, output_kinds)
    returned = len(function_signature.outputs) - len(updates)
    if structure.count_leaves(out_tree) != returned:
        raise FrontendError(f"the model returns {structure.count_leaves(out_tree)} values, "
                            f"but its exported program computes {returned}")
    dynamic = torch_boundary.dynamic_record(program, user_inputs, leaves, export_dynamic) \
        if export_dynamic is not None else None
    signature = sig.Signature(function_signature.inputs, function_signature.outputs,
                              in_tree=in_tree, out_tree=out_tree, input_names=user_inputs,
                              input_updates=updates, dynamic=dynamic)
    try:
        signature.check_consistent()
    except InputError as error:
        if export_dynamic is None and "without the record" in str(error):
            raise FrontendError(
                "a size in the model depends on a tensor's value (as in x[:int(n)], "
                "nonzero, masked_select or unique): mlirc compiles sizes fixed by the "
                "example inputs or declared with dynamic_shapes") from None
        raise FrontendError(f"the imported function does not match what torch.export "
                            f"traced: {error}") from None
    sig.attach(module, signature)
    return module, signature


def _export_dynamic_examples(model, args: tuple, has_inputs: bool, export_dynamic):
    """(exported program, the example args it was traced with). torch.export
    specializes a dynamic dimension whose example size is 1 (or 0) to that
    constant and refuses the export, so a model compiled from a batch-1
    example with a dynamic batch is traced again with those dimensions of
    its examples repeated to size 2."""
    try:
        return _export(model, args, has_inputs, export_dynamic), args
    except FrontendError as error:
        if "specialized it to be a constant" not in str(error):
            raise
        widened = torch_boundary.widen_unit_dynamic_sizes(args, export_dynamic)
        if widened is None:
            raise
        try:
            return _export(model, widened, has_inputs, export_dynamic), widened
        except FrontendError:
            raise error from None


def _import_program(program, context: ir.Context | None) -> ir.Module:
    from torch_mlir.extras.fx_importer import FxImporter
    torch_graph.expose_non_persistent_buffers(program)
    torch_graph.scalar_ops_through_tensors(program)
    torch_graph.copy_weights_listed_with_values(program)
    importer = FxImporter(context=context or ir.new_context(), hooks=_fast_literal_hooks())
    try:
        importer.import_frozen_program(program, func_name="main")
    except Exception as error:
        raise FrontendError(f"the FX importer failed: {type(error).__name__}: "
                            f"{str(error).strip()[:300]}") from None
    return importer.module


def _export(model, args: tuple, has_inputs: bool, dynamic_shapes=None):
    """torch.export of `model` on `args`, decomposed; its errors as one line.

    The non-strict tracer runs the model's Python, so `float(t)`, `int(t)` and
    `bool(t)` ask for a concrete value and fail; for those the model is traced
    again by TorchDynamo (strict export) with scalar outputs captured, which
    keeps the value in the graph (`aten.item`) as long as no branch or shape
    depends on it."""
    torch = _torch()
    try:
        with warnings.catch_warnings(), _quiet_symbolic_shapes():
            warnings.simplefilter("ignore")
            try:
                program = torch.export.export(model, args, strict=False,
                                              dynamic_shapes=dynamic_shapes)
            except Exception as error:
                if not _is_data_dependent(error):
                    raise
                program = _export_capturing_scalars(model, args, dynamic_shapes, error)
            torch_graph.views_as_reshapes(program)
            return program.run_decompositions(torch_decompositions.decompositions())
    except (FrontendError, InputError):  # mlirc's own, raised while tracing
        raise
    except Exception as error:  # torch.export raises many kinds; report one line
        message = str(error).strip().splitlines()[0] if str(error).strip() else ""
        if not has_inputs and isinstance(error, TypeError) and "missing" in message:
            raise InputError(f"no example inputs, but the model needs some ({message}): "
                             "give the tensors it is called with") from None
        if _is_data_dependent(error):
            raise FrontendError(
                f"the model's control flow or shapes depend on a tensor's value "
                f"(.item(), int(t), float(t), bool(t) or `if t:`){_user_frame(error)}; "
                f"torch.export cannot trace that; torch.where or torch.cond can express "
                f"a branch on a value ({message})") from None
        if "Constraints violated" in message:  # the reasons follow, one per line
            reasons = [line.strip(" -") for line in str(error).splitlines()[1:4]
                       if line.strip().startswith("-")]
            message = "; ".join([message] + reasons)
        raise FrontendError(f"torch.export failed: {type(error).__name__}: {message}") from None


def _is_data_dependent(error: Exception) -> bool:
    return type(error).__name__ in ("GuardOnDataDependentSymNode", "UserError", "Unsupported") \
        and "data-dependent" in str(error).lower()


def _export_capturing_scalars(model, args: tuple, dynamic_shapes, first_error: Exception):
    """Strict export with `capture_scalar_outputs`; if TorchDynamo cannot
    trace the model either (a branch on a tensor's value), the first error,
    which names the user's source line, is the one raised."""
    import torch._dynamo.config as dynamo_config
    try:
        with dynamo_config.patch(capture_scalar_outputs=True):
            return _torch().export.export(model, args, strict=True,
                                          dynamic_shapes=dynamic_shapes)
    except Exception:
        raise first_error from None


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


def _import_with_scalars(model, leaves: list, in_spec, kinds: list, context):
    """Imports a model that takes Python scalars: first as run-time values (0-d
    tensors read with .item()); if its code needs their values (a shape, a
    branch), specialized to the example's values, which calls must repeat."""
    boundary = torch_boundary.ScalarBoundary(model, in_spec, kinds)
    try:
        program = _export(boundary, tuple(boundary.tensor_leaves(leaves)), True)
        return _import_program(program, context), program, boundary
    except FrontendError:
        boundary = torch_boundary.ScalarBoundary(model, in_spec, kinds, specialize=leaves)
        program = _export(boundary, tuple(boundary.tensor_leaves(leaves)), True)
        return _import_program(program, context), program, boundary


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
