"""Checking and converting call arguments against a Signature, and restoring
the model's output structure."""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from . import structure
from .signature import DTYPES, Signature, dtype_of_numpy


def _is_torch_tensor(value) -> bool:
    return type(value).__module__.startswith("torch") and hasattr(value, "numpy")


def flatten_arguments(signature: Signature, args: tuple, kwargs: dict | None = None,
                      flat: bool = False):
    """Returns (flat numpy inputs, whether the caller used torch tensors).
    `flat`: `args` are already the leaves, in order (as from the command line)."""
    leaves = argument_leaves(signature, args, kwargs, flat)
    if len(leaves) != len(signature.inputs):
        raise InputError(f"expected {len(signature.inputs)} input tensor(s) "
                         f"{signature.describe().split(' -> ')[0]}, got {len(leaves)}")
    # a PyTorch factory module (no inputs; torch models carry an in_tree)
    # returns torch tensors as a module called with tensors does
    used_torch = any(_is_torch_tensor(v) for v in leaves) or \
        (not leaves and signature.in_tree is not None)
    arrays = []
    for index, (value, spec) in enumerate(zip(leaves, signature.inputs)):
        name = _input_name(signature, index)
        array = as_numpy(value, name)
        if dtype_of_numpy(array.dtype).name != spec.dtype:
            raise InputError(f"{name}: expected dtype {spec.dtype}, got "
                             f"{dtype_of_numpy(array.dtype).name}")
        if len(array.shape) != len(spec.shape) or any(
                want not in (-1, got) for want, got in zip(spec.shape, array.shape)):
            expected = ["?" if d == -1 else d for d in spec.shape]
            raise InputError(f"{name}: expected shape {expected}, got {list(array.shape)}"
                             .replace("'?'", "?"))
        arrays.append(np.require(array, requirements="C"))  # ascontiguousarray makes 0-d 1-d
    if signature.dynamic:  # one size per symbol, within its bounds
        signature.output_shapes(arrays, lambda index: _input_name(signature, index))
    return arrays, used_torch


_SCALAR_DTYPES = {"int": np.int64, "float": np.float64, "bool": np.bool_}


def argument_leaves(signature: Signature, args: tuple, kwargs: dict | None = None,
                    flat: bool = False) -> list:
    """The call's values in the order of the compiled function's inputs:
    Python scalars as 0-d arrays, specialized scalars checked and left out."""
    if signature.in_tree is None or flat:
        if kwargs:
            raise InputError("this model takes positional inputs only")
        return list(args)
    try:
        values = structure.flatten_as(signature.in_tree, (tuple(args), dict(kwargs or {})),
                                      "arguments")
    except ValueError as error:
        raise InputError(f"expected {len(signature.inputs)} input tensor(s) "
                         f"{signature.describe().split(' -> ')[0]}: {error}") from None
    leaves = []
    for position, (kind, value) in enumerate(zip(structure.leaves(signature.in_tree), values)):
        if isinstance(kind, dict) and kind["const"] is None:
            if value is not None:
                raise InputError(f"argument {position}: the model was compiled with None "
                                 f"here, got {type(value).__name__}")
            continue
        if isinstance(kind, dict):  # {"const": v}
            if structure.scalar_kind(value) is None or value != kind["const"] or \
                    (type(value) is bool) != (type(kind["const"]) is bool):
                raise InputError(f"argument {position}: the model was compiled for the value "
                                 f"{kind['const']!r} here (its code depends on it), got "
                                 f"{value!r}; compile again for another value")
            continue
        if kind in structure.COMPLEX_LEAVES:
            value = _complex_as_pairs(value, kind, position)
        elif kind in _SCALAR_DTYPES:
            found = structure.scalar_kind(value)
            if found is None or (kind != "float" and found != kind) or \
                    (kind == "float" and found == "bool"):
                raise InputError(f"argument {position}: expected a Python {kind}, "
                                 f"got {type(value).__name__}")
            value = np.asarray(value, _SCALAR_DTYPES[kind])
        leaves.append(value)
    return leaves


def _complex_as_pairs(value, kind: str, position: int):
    """A complex tensor or array as its real pairs (a view where it can be)."""
    if _is_torch_tensor(value):
        if str(value.dtype).replace("torch.", "") != kind:
            raise InputError(f"argument {position}: expected a {kind} tensor, got {value.dtype}")
        import torch
        return torch.view_as_real(value.detach().cpu().resolve_conj().contiguous())
    if isinstance(value, np.ndarray) and value.dtype == np.dtype(kind):
        value = np.ascontiguousarray(value)
        return value.view(structure.COMPLEX_LEAVES[kind]).reshape(value.shape + (2,))
    raise InputError(f"argument {position}: expected a {kind} tensor or array, "
                     f"got {getattr(value, 'dtype', type(value).__name__)}")


def complex_from_pairs(array: np.ndarray, kind: str) -> np.ndarray:
    """The complex array whose real pairs `array` holds (the inverse of
    _complex_as_pairs)."""
    return np.ascontiguousarray(array).view(np.dtype(kind)).reshape(array.shape[:-1])


def _input_name(signature: Signature, index: int) -> str:
    if index < len(signature.input_names):
        return f"input {index} ('{signature.input_names[index]}')"
    return f"input {index}"


def as_numpy(value, name: str) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    if _is_torch_tensor(value):
        return _torch_to_numpy(value, name)
    if isinstance(value, (np.generic, int, float, bool)):
        return np.asarray(value)
    raise InputError(f"{name}: expected a numpy array or torch tensor, "
                     f"got {type(value).__name__}")


# torch element types numpy has only through ml_dtypes: (mlirc's name, the
# integer type of the same width their bits are read through).
_THROUGH_BITS = {"bfloat16": ("bf16", "int16"), "float8_e4m3fn": ("f8E4M3FN", "uint8"),
                 "float8_e5m2": ("f8E5M2", "uint8"), "float8_e4m3fnuz": ("f8E4M3FNUZ", "uint8"),
                 "float8_e5m2fnuz": ("f8E5M2FNUZ", "uint8")}


def _torch_to_numpy(tensor, name: str) -> np.ndarray:
    """The tensor's values as numpy (bf16 and float8 as ml_dtypes' types, which
    numpy lacks); layouts and devices without readable values are refused."""
    import torch
    if tensor.layout != torch.strided:
        raise InputError(f"{name}: a {str(tensor.layout).replace('torch.', '')} tensor; "
                         "pass a dense one (tensor.to_dense())")
    if tensor.device.type == "meta":
        raise InputError(f"{name}: a meta tensor has no values to compute with")
    tensor = tensor.detach().cpu().resolve_conj().resolve_neg()
    bits = _THROUGH_BITS.get(str(tensor.dtype).replace("torch.", ""))
    if bits and bits[0] in DTYPES:
        name, carrier = bits
        return tensor.view(getattr(torch, carrier)).numpy().view(DTYPES[name].numpy)
    try:
        return tensor.numpy()
    except (TypeError, RuntimeError) as error:
        raise InputError(f"{name}: cannot read a {tensor.dtype} tensor: {error}") from None


def _output_kinds(signature: Signature, count: int) -> list:
    return structure.leaves(signature.out_tree) if signature.out_tree is not None \
        else [structure.LEAF] * count


def model_outputs(signature: Signature, outputs: list[np.ndarray]) -> list[np.ndarray]:
    """The model's own flat outputs as numpy, complex ones rebuilt from their pairs."""
    return [complex_from_pairs(output, kind) if kind in structure.COMPLEX_LEAVES
            else output for kind, output in zip(_output_kinds(signature, len(outputs)), outputs)]


def restore_outputs(signature: Signature, outputs: list[np.ndarray], as_torch: bool):
    """The model's own outputs (input updates left out) back in its structure:
    tensors as torch tensors if asked, scalar leaves as Python values."""
    outputs = model_outputs(signature, list(outputs[len(signature.input_updates):]))
    kinds = _output_kinds(signature, len(outputs))
    outputs = [output.item() if kind in structure.SCALAR_LEAVES
               else (numpy_to_torch(output) if as_torch else output)
               for kind, output in zip(kinds, outputs)]
    if signature.out_tree is not None:
        return structure.unflatten(signature.out_tree, outputs)
    return outputs[0] if len(outputs) == 1 else tuple(outputs)


def write_back_updates(signature: Signature, args: tuple, kwargs: dict | None,
                       outputs: list[np.ndarray]) -> None:
    """Copies the new values of inputs the model updates in place into the
    caller's tensors or arrays, as eager PyTorch leaves them."""
    if not signature.input_updates:
        return
    leaves = argument_leaves(signature, args, kwargs)
    for output, index in zip(outputs, signature.input_updates):
        target = leaves[index]
        if _is_torch_tensor(target):
            import torch
            with torch.no_grad():
                target.copy_(numpy_to_torch(output))
        elif isinstance(target, np.ndarray) and target.flags.writeable:
            np.copyto(target, output)
        else:
            raise InputError(f"{_input_name(signature, index)}: the model updates it in "
                             "place; pass a writable numpy array or torch tensor")


def numpy_to_torch(array: np.ndarray):
    """A torch tensor sharing the array's memory; bf16 and float8 (ml_dtypes
    types, unknown to torch.from_numpy) through their bits."""
    import torch
    for torch_name, (name, carrier) in _THROUGH_BITS.items():
        if name in DTYPES and array.dtype == DTYPES[name].numpy:
            return torch.from_numpy(array.view(carrier)).view(getattr(torch, torch_name))
    return torch.from_numpy(array)
