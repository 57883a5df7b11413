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
    if signature.in_tree is not None and not flat:
        try:
            leaves = structure.flatten_as(signature.in_tree, (tuple(args), dict(kwargs or {})),
                                          "arguments")
        except ValueError as error:
            raise InputError(f"expected {len(signature.inputs)} input tensor(s) "
                             f"{signature.describe().split(' -> ')[0]}: {error}") from None
    else:
        if kwargs:
            raise InputError("this model takes positional inputs only")
        leaves = list(args)
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
        array = _as_numpy(value, name)
        if dtype_of_numpy(array.dtype).name != spec.dtype:
            raise InputError(f"{name}: expected dtype {spec.dtype}, got "
                             f"{dtype_of_numpy(array.dtype).name}")
        if tuple(array.shape) != spec.shape:
            raise InputError(f"{name}: expected shape {list(spec.shape)}, "
                             f"got {list(array.shape)}")
        arrays.append(np.ascontiguousarray(array))
    return arrays, used_torch


def _input_name(signature: Signature, index: int) -> str:
    if index < len(signature.input_names):
        return f"input {index} ('{signature.input_names[index]}')"
    return f"input {index}"


def _as_numpy(value, name: str) -> np.ndarray:
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


def restore_outputs(signature: Signature, outputs: list[np.ndarray], as_torch: bool):
    """Flat outputs back in the model's structure, as torch tensors if asked."""
    if as_torch:
        import torch
        outputs = [torch.from_numpy(o) for o in outputs]
    if signature.out_tree is not None:
        return structure.unflatten(signature.out_tree, outputs)
    return outputs[0] if len(outputs) == 1 else tuple(outputs)
