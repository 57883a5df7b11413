"""The rules that compute aten ops on complex values held as real pairs
(torch_complex.Pair). Each takes the FX node (for the result's dtype) and
the op's arguments, in which complex values are Pairs or Python complex
numbers, and returns a Pair or a real tensor."""

from __future__ import annotations

import math
import operator

from ..errors import FrontendError
from .torch_complex_pairs import (Pair, complex_divide, complex_multiply, conjugate,
                                  dft_matrices, from_polar, magnitude, pair, pair_dtype, parts,
                                  phase)


def _torch():
    import torch
    return torch


def _result_dtype(node):
    value = node.meta.get("val")
    return getattr(value, "dtype", None)


# --- arithmetic --------------------------------------------------------------

def _add(node, x, y, alpha=1):
    xr, xi = parts(x)
    yr, yi = parts(y)
    scaled_real = yr * alpha
    scaled_imag = None if yi is None else yi * alpha
    imag = xi if scaled_imag is None else (scaled_imag if xi is None else xi + scaled_imag)
    return pair(xr + scaled_real, 0.0 if imag is None else imag)


def _sub(node, x, y, alpha=1):
    return _add(node, x, complex_multiply(y, -1.0) if isinstance(y, Pair) else -y, alpha)


def _rsub(node, x, y, alpha=1):
    return _sub(node, y, complex_multiply(x, alpha) if alpha != 1 else x)


def _mul(node, x, y):
    return complex_multiply(x, y)


def _div(node, x, y, rounding_mode=None):
    if rounding_mode is not None:
        raise FrontendError("complex numbers: division with a rounding mode")
    if not isinstance(y, Pair) and not isinstance(y, complex):
        return pair(parts(x)[0] / y, parts(x)[1] / y)
    return complex_divide(x, y)


def _neg(node, x):
    return Pair(-x.data)


def _abs(node, x):
    return magnitude(x)


def _angle(node, x):
    return phase(x)


def _conj(node, x):
    return conjugate(x)


def _identity(node, x, *args, **kwargs):
    return x


def _polar(node, radius, angle):
    return from_polar(radius, angle)


def _complex(node, real, imag):
    return pair(real, imag)


def _exp(node, x):
    real, imag = parts(x)
    return from_polar(_torch().exp(real), imag)


def _log(node, x):
    return pair(_torch().log(magnitude(x)), phase(x))


def _sqrt(node, x):
    return from_polar(_torch().sqrt(magnitude(x)), phase(x) * 0.5)


def _reciprocal(node, x):
    return complex_divide(1.0, x)


def _pow_scalar(node, x, exponent):
    if isinstance(exponent, int) and 0 < exponent <= 8:
        result = x
        for _ in range(exponent - 1):
            result = complex_multiply(result, x)
        return result
    if isinstance(exponent, complex):
        raise FrontendError("complex numbers: a complex exponent")
    return from_polar(magnitude(x) ** exponent, phase(x) * exponent)


def _sgn(node, x):
    torch = _torch()
    size = magnitude(x)
    safe = torch.where(size == 0, torch.ones_like(size), size)
    real, imag = parts(x)
    return pair(real / safe, imag / safe)


def _matmul(target):
    def rule(node, x, y):
        xr, xi = parts(x)
        yr, yi = parts(y)
        real = target(xr, yr)
        if xi is not None and yi is not None:
            real = real - target(xi, yi)
        imag_terms = [target(xr, yi)] if yi is not None else []
        if xi is not None:
            imag_terms.append(target(xi, yr))
        imag = imag_terms[0] if len(imag_terms) == 1 else imag_terms[0] + imag_terms[1]
        return pair(real, imag)
    return rule


def _where(node, condition, x, y):
    torch = _torch()
    xr, xi = parts(x)
    yr, yi = parts(y)
    return pair(torch.where(condition, xr, yr),
                torch.where(condition, 0.0 if xi is None else xi, 0.0 if yi is None else yi))


def _equal(negate: bool):
    def rule(node, x, y):
        xr, xi = parts(x)
        yr, yi = parts(y)
        same = (xr == yr) & ((0.0 if xi is None else xi) == (0.0 if yi is None else yi))
        return ~same if negate else same
    return rule


def _vector_norm(node, x, ord=2, dim=None, keepdim=False, dtype=None):
    return _torch().linalg.vector_norm(magnitude(x), ord, dim, keepdim)


def _norm(node, x, ord=None, dim=None, keepdim=False, dtype=None):
    """linalg.norm: the Frobenius / 2-norm over the entries' magnitudes;
    matrix norms of complex matrices (spectral, nuclear) have no rule."""
    one_axis = (x.ndim == 1 and dim is None) or (dim is not None and len(dim) == 1)
    if ord not in (None, "fro", 2) or (ord == 2 and not one_axis):
        raise FrontendError(f"complex numbers: linalg.norm with ord={ord!r}")
    return _torch().linalg.vector_norm(magnitude(x), 2, dim, keepdim)


def _convert(node, x, dtype=None, **kwargs):
    """prims.convert_element_type and aten._to_copy (real <-> complex)."""
    dtype = dtype if dtype is not None else _result_dtype(node)
    if dtype is not None and dtype.is_complex:
        if isinstance(x, Pair):
            return Pair(x.data.to(pair_dtype(dtype)))
        return pair(x.to(pair_dtype(dtype)), 0.0)
    real = parts(x)[0]
    return real.to(dtype) if dtype is not None else real.clone()


def _filled(node, *args, **kwargs):
    """full / full_like / zeros_like / ones_like / scalar_tensor of a complex dtype."""
    torch = _torch()
    value = _result_dtype(node)
    template = node.meta["val"]
    real_dtype = pair_dtype(value)
    target = node.target
    name = target.__name__.split(".")[0]
    if name in ("full", "full_like"):
        fill = args[1]
    elif name == "new_full":
        fill = args[2]
    elif name == "scalar_tensor":
        fill = args[0]
    else:  # zeros, empty (filled with zeros), ones
        fill = 1.0 if "ones" in name else 0.0
    real, imag = parts(fill)
    shape = list(template.shape)
    return pair(torch.full(shape, float(real), dtype=real_dtype),
                torch.full(shape, float(imag or 0.0), dtype=real_dtype))


# --- ops that act on the real and imaginary parts alike -------------------

# Argument positions that hold values (not sizes, dims or indices): a real
# value there has a zero imaginary part. Lists of tensors (cat) too.
_VALUE_ARGUMENTS = {"masked_fill": (0, 2), "constant_pad_nd": (0, 2), "index_put": (0, 2),
                    "copy": (0, 1), "slice_scatter": (0, 1), "select_scatter": (0, 1)}


def _per_part(target):
    """Linear ops that commute with taking parts: views, copies, concats,
    scatters, sums and means, run once on the real parts and once on the
    imaginary parts. Sizes, dims and index tensors stay as they are."""
    torch = _torch()
    name = target.__name__.split(".")[0]
    value_positions = _VALUE_ARGUMENTS.get(name, (0,))

    def choose(value, which: int, is_value: bool):
        if isinstance(value, Pair):
            return value.data[..., which]
        if isinstance(value, complex):
            return value.imag if which else value.real
        if is_value and which and isinstance(value, torch.Tensor):
            return torch.zeros_like(value)
        if is_value and which and isinstance(value, (int, float)) and \
                not isinstance(value, bool):
            return 0.0
        return value

    def rule(node, *args, **kwargs):
        kwargs = {k: v for k, v in kwargs.items() if k != "dtype"}
        results = []
        for which in (0, 1):
            chosen = [[choose(item, which, True) for item in a]
                      if isinstance(a, (list, tuple)) and name in ("cat", "stack")
                      else choose(a, which, position in value_positions)
                      for position, a in enumerate(args)]
            results.append(target(*chosen, **kwargs))
        real, imag = results
        if isinstance(real, (list, tuple)):
            return [pair(r, i) for r, i in zip(real, imag)]
        return pair(real, imag)
    return rule


PER_PART = (
    "view", "_unsafe_view", "reshape", "permute", "transpose", "t", "select", "slice",
    "narrow", "unsqueeze", "squeeze", "expand", "clone", "alias", "flip", "roll", "repeat",
    "cat", "stack", "split", "split_with_sizes", "unbind", "chunk", "index_select",
    "index", "gather", "sum", "mean", "cumsum", "constant_pad_nd", "diagonal", "tril",
    "triu", "contiguous", "lift_fresh_copy", "detach", "slice_scatter",
    "select_scatter", "copy", "index_put", "masked_fill", "expand_copy", "view_copy",
    "permute_copy", "unfold",
)


# --- FFTs as products with DFT matrices ------------------------------------

_FORWARD_SCALE = {None: lambda n: 1.0, "backward": lambda n: 1.0,
                  "ortho": lambda n: 1.0 / math.sqrt(n), "forward": lambda n: 1.0 / n}
_INVERSE_SCALE = {None: lambda n: 1.0 / n, "backward": lambda n: 1.0 / n,
                  "ortho": lambda n: 1.0 / math.sqrt(n), "forward": lambda n: 1.0}


def _fit_length(tensor, dim_last_length: int):
    """The last axis cut or zero-padded to a length."""
    torch = _torch()
    length = tensor.shape[-1]
    if length > dim_last_length:
        return tensor[..., :dim_last_length]
    if length < dim_last_length:
        return torch.nn.functional.pad(tensor, (0, dim_last_length - length))
    return tensor


def _transform(value, dim: int, n, norm, kind: str):
    """One 1-D transform along `dim`: "c2c" / "c2c_inverse" (complex in and
    out), "r2c" (real in, the n // 2 + 1 first frequencies out) or "c2r"
    (those frequencies in, n reals out)."""
    torch = _torch()
    real, imag = parts(value)
    ndim = real.ndim
    dim = dim % ndim
    real = real.movedim(dim, -1)
    imag = imag.movedim(dim, -1) if imag is not None else None
    length = real.shape[-1]
    dtype = real.dtype if real.dtype in (torch.float32, torch.float64) else torch.float32
    real = real.to(dtype)
    if kind == "c2r":
        n = n if n is not None else 2 * (length - 1)
        frequencies = n // 2 + 1
        weights = [1.0 if k == 0 or (n % 2 == 0 and k == n // 2) else 2.0
                   for k in range(frequencies)]
        import numpy as np
        cos, sin = dft_matrices(n, frequencies, np.array(weights), dtype)
        real = _fit_length(real, frequencies)
        out = real @ cos.t()
        if imag is not None:
            out = out - _fit_length(imag.to(dtype), frequencies) @ sin.t()
        return (out * _INVERSE_SCALE[norm](n)).movedim(-1, dim)
    n = n if n is not None else length
    columns = n // 2 + 1 if kind == "r2c" else n
    cos, sin = dft_matrices(n, columns, None, dtype)
    sign = 1.0 if kind == "c2c_inverse" else -1.0
    real = _fit_length(real, n)
    out_real = real @ cos
    out_imag = (real @ sin) * sign
    if imag is not None:
        imag = _fit_length(imag.to(dtype), n)
        out_real = out_real - (imag @ sin) * sign
        out_imag = out_imag + imag @ cos
    scale = (_INVERSE_SCALE if kind == "c2c_inverse" else _FORWARD_SCALE)[norm](n)
    return pair((out_real * scale).movedim(-1, dim), (out_imag * scale).movedim(-1, dim))


def _fft_1d(kind: str):
    def rule(node, x, n=None, dim=-1, norm=None):
        if kind == "r2c" and isinstance(x, Pair):
            raise FrontendError("complex numbers: rfft of a complex tensor")
        return _transform(x, dim, n, norm, kind)
    return rule


def _fft_nd(kind: str, default_dims):
    def rule(node, x, s=None, dim=default_dims, norm=None):
        ndim = x.ndim if isinstance(x, Pair) else x.dim()
        dims = list(range(ndim)) if dim is None else [d % ndim for d in dim]
        sizes = list(s) if s is not None else [None] * len(dims)
        if kind == "c2r":  # inverse over the others first, the real axis last
            for d, size in zip(dims[:-1], sizes[:-1]):
                x = _transform(x, d, size, norm, "c2c_inverse")
            return _transform(x, dims[-1], sizes[-1], norm, "c2r")
        if kind == "r2c":  # the real axis first, then the others
            x = _transform(x, dims[-1], sizes[-1], norm, "r2c")
            for d, size in zip(dims[:-1], sizes[:-1]):
                x = _transform(x, d, size, norm, "c2c")
            return x
        for d, size in zip(dims, sizes):
            x = _transform(x, d, size, norm, kind)
        return x
    return rule


def _rules() -> dict:
    torch = _torch()
    aten, prims = torch.ops.aten, torch.ops.prims
    rules = {
        aten.view_as_complex: lambda node, x: Pair(x),
        aten.view_as_real: lambda node, x: x.data,
        aten.add: _add, aten.sub: _sub, aten.rsub: _rsub, aten.mul: _mul, aten.div: _div,
        aten.neg: _neg, aten.abs: _abs, aten.angle: _angle, aten._conj: _conj,
        aten.conj_physical: _conj, aten.conj: _conj, aten.resolve_conj: _identity,
        aten.resolve_neg: _identity, aten.polar: _polar, aten.complex: _complex,
        aten.exp: _exp, aten.log: _log, aten.sqrt: _sqrt, aten.reciprocal: _reciprocal,
        aten.pow: lambda node, x, exponent: _pow_scalar(node, x, exponent),
        aten.sgn: _sgn, aten.mm: _matmul(torch.matmul), aten.bmm: _matmul(torch.matmul),
        aten.matmul: _matmul(torch.matmul), aten.where: _where,
        aten.eq: _equal(False), aten.ne: _equal(True),
        aten.linalg_vector_norm: _vector_norm,
        aten._to_copy: _convert, prims.convert_element_type: _convert,
        aten.full: _filled, aten.full_like: _filled, aten.zeros_like: _filled,
        aten.ones_like: _filled, aten.scalar_tensor: _filled, aten.new_full: _filled,
        aten.zeros: _filled, aten.ones: _filled, aten.empty: _filled,
        aten.empty_strided: _filled, aten.empty_like: _filled, aten.new_zeros: _filled,
        aten.new_ones: _filled, aten.new_empty: _filled,
        aten.linalg_norm: _norm, operator.getitem: lambda node, items, index: items[index],
        aten.fft_fft: _fft_1d("c2c"), aten.fft_ifft: _fft_1d("c2c_inverse"),
        aten.fft_rfft: _fft_1d("r2c"), aten.fft_irfft: _fft_1d("c2r"),
        aten.fft_fft2: _fft_nd("c2c", (-2, -1)), aten.fft_ifft2: _fft_nd("c2c_inverse", (-2, -1)),
        aten.fft_fftn: _fft_nd("c2c", None), aten.fft_ifftn: _fft_nd("c2c_inverse", None),
        aten.fft_rfft2: _fft_nd("r2c", (-2, -1)), aten.fft_rfftn: _fft_nd("r2c", None),
        aten.fft_irfft2: _fft_nd("c2r", (-2, -1)), aten.fft_irfftn: _fft_nd("c2r", None),
    }
    for name in PER_PART:
        packet = getattr(aten, name, None)
        if packet is not None:
            rules[packet] = _per_part_packet(packet)
    return rules


def _per_part_packet(packet):
    def rule(node, *args, **kwargs):
        return _per_part(node.target)(node, *args, **kwargs)
    return rule


_RULES: dict | None = None


def rule_for(target):
    """The rule for an aten/prims op overload (looked up by its packet), or None."""
    global _RULES
    if _RULES is None:
        _RULES = _rules()
    packet = getattr(target, "overloadpacket", target)
    return _RULES.get(packet)

