"""Checking and converting call arguments against a Signature, and restoring
the model's output structure."""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from . import structure
from .signature import Signature, dtype_of_numpy


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
        return value.detach().cpu().resolve_conj().resolve_neg().numpy()
    if isinstance(value, (np.generic, int, float, bool)):
        return np.asarray(value)
    raise InputError(f"{name}: expected a numpy array or torch tensor, "
                     f"got {type(value).__name__}")


def restore_outputs(signature: Signature, outputs: list[np.ndarray], as_torch: bool):
    """Flat outputs back in the model's structure, as torch tensors if asked."""
    if as_torch:
        import torch
        outputs = [torch.from_numpy(o) for o in outputs]
    if signature.out_tree is not None:
        return structure.unflatten(signature.out_tree, outputs)
    return outputs[0] if len(outputs) == 1 else tuple(outputs)
