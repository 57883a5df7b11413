"""The decomposition table torch.export's program runs before import:
torch-mlir's, plus mlirc's own for what torch-mlir lowers wrongly, aborts
on, or does not lower (each function says which)."""

from __future__ import annotations

import math


def _torch():
    import torch
    return torch


def decompositions() -> dict:
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
    # torch-mlir has bitwise_xor only for two tensors
    table[torch.ops.aten.bitwise_xor.Scalar] = lambda x, other: torch.ops.aten.bitwise_xor.Tensor(
        x, torch.scalar_tensor(other, dtype=x.dtype))
    for window in (torch.ops.aten.hamming_window.default, torch.ops.aten.hamming_window.periodic,
                   torch.ops.aten.hamming_window.periodic_alpha,
                   torch.ops.aten.hamming_window.periodic_alpha_beta,
                   torch.ops.aten.blackman_window.default, torch.ops.aten.blackman_window.periodic,
                   torch.ops.aten.bartlett_window.default, torch.ops.aten.bartlett_window.periodic,
                   torch.ops.aten.kaiser_window.default, torch.ops.aten.kaiser_window.periodic,
                   torch.ops.aten.kaiser_window.beta):
        table[window] = _window(window)
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
