"""Complex tensors held as real pairs (a trailing axis of 2: real part,
imaginary part), and the arithmetic on them the rules are written with."""

from __future__ import annotations

import math


def _torch():
    import torch
    return torch


def is_complex_value(value) -> bool:
    return getattr(getattr(value, "dtype", None), "is_complex", False)


class Pair:
    """A complex tensor held as a real tensor of shape (*shape, 2)."""

    __slots__ = ("data",)

    def __init__(self, data):
        self.data = data

    @property
    def real(self):
        return self.data[..., 0]

    @property
    def imag(self):
        return self.data[..., 1]

    @property
    def ndim(self) -> int:
        return self.data.ndim - 1


def pair(real, imag):
    torch = _torch()
    if not isinstance(imag, torch.Tensor):
        imag = torch.full_like(real, imag)
    if not isinstance(real, torch.Tensor):
        real = torch.full_like(imag, real)
    real, imag = torch.broadcast_tensors(real, imag)
    return Pair(torch.stack([real, imag], -1))


def parts(value):
    """(real, imaginary) of a Pair, a real tensor or a Python number; the
    imaginary part of a real value is None."""
    if isinstance(value, Pair):
        return value.real, value.imag
    if isinstance(value, complex):
        return value.real, value.imag
    return value, None


def _times(a, b):
    return None if a is None or b is None else a * b


def _plus(a, b):
    if a is None:
        return b
    return a if b is None else a + b


def _minus(a, b):
    if b is None:
        return a
    return -b if a is None else a - b


def complex_multiply(x, y):
    xr, xi = parts(x)
    yr, yi = parts(y)
    real = _minus(xr * yr, _times(xi, yi))
    imag = _plus(_times(xr, yi), _times(xi, yr))
    return pair(real, 0.0 if imag is None else imag)


def conjugate(x):
    real, imag = parts(x)
    return pair(real, -imag) if imag is not None else real


def squared_magnitude(x):
    real, imag = parts(x)
    return real * real + (imag * imag if imag is not None else 0.0)


def complex_divide(x, y):
    numerator = complex_multiply(x, conjugate(y))
    denominator = squared_magnitude(y)
    return pair(numerator.real / denominator, numerator.imag / denominator)


def magnitude(x):
    return _torch().sqrt(squared_magnitude(x))


def phase(x):
    real, imag = parts(x)
    return _torch().atan2(imag, real)


def from_polar(radius, angle):
    torch = _torch()
    return pair(radius * torch.cos(angle), radius * torch.sin(angle))


def pair_dtype(complex_dtype):
    torch = _torch()
    return torch.float64 if complex_dtype == torch.complex128 else torch.float32


def dft_matrices(n: int, columns: int, weights=None, dtype=None):
    """cos and sin of 2*pi*j*k/n for j < n, k < columns, as constants
    (computed in float64 by numpy, so the traced program holds values, not
    the ops that make them)."""
    import numpy as np
    torch = _torch()
    j = np.arange(n, dtype=np.float64)[:, None]
    k = np.arange(columns, dtype=np.float64)[None, :]
    angle = 2.0 * math.pi * ((j * k) % n) / n
    cos, sin = np.cos(angle), np.sin(angle)
    if weights is not None:
        cos, sin = cos * weights[None, :], sin * weights[None, :]
    numpy_dtype = np.float64 if dtype == torch.float64 else np.float32
    return (torch.from_numpy(np.ascontiguousarray(cos.astype(numpy_dtype))),
            torch.from_numpy(np.ascontiguousarray(sin.astype(numpy_dtype))))
