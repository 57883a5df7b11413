"""bf16 and f16 tensors in and out: elementwise, reductions, matmul and
convolution in the narrow types, and casts across the boundary."""

import torch
import torch.nn.functional as F
from torch import nn

from .registry import case, randn, register

# Eager bf16/f16 rounds each op to 8/11 mantissa bits; mlirc may keep f32
# between fused ops, so results differ by a few of those roundings.
BF16 = {"rtol": 3e-2, "atol": 3e-2}
F16 = {"rtol": 5e-3, "atol": 5e-3}

NARROW_OPS = {
    "add": (lambda x, y: x + y, 2),
    "mul_add": (lambda x, y: x * y + 1, 2),
    "relu": (lambda x: torch.relu(x), 1),
    "gelu": (lambda x: F.gelu(x), 1),
    "sigmoid": (lambda x: torch.sigmoid(x), 1),
    "softmax": (lambda x: torch.softmax(x, -1), 1),
    "sum": (lambda x: x.sum(-1), 1),
    "mean": (lambda x: x.mean(0), 1),
    "max": (lambda x: x.amax(-1), 1),
    "matmul": (lambda x, y: x @ y.t(), 2),
    "transpose_cat": (lambda x, y: torch.cat([x.t(), y.t()], 0), 2),
    "to_f32": (lambda x: x.float() * 2, 1),
}
for _dtype, _tag, _tolerance in ((torch.bfloat16, "bf16", BF16), (torch.float16, "f16", F16)):
    for _op, (_forward, _arity) in NARROW_OPS.items():
        register(f"{_tag}_{_op}", _forward,
                 lambda arity=_arity, dtype=_dtype: tuple(randn(4, 8, dtype=dtype)
                                                          for _ in range(arity)),
                 **_tolerance)
    register(f"{_tag}_from_f32", lambda x, dtype=_dtype: (x * 3).to(dtype),
             lambda: (randn(4, 8),), **_tolerance)


def _narrow(module, dtype):
    torch.manual_seed(0)
    return module.to(dtype)


@case(inputs=lambda: (randn(2, 16, dtype=torch.bfloat16),), module=True, **BF16)
def bf16_linear():
    return _narrow(nn.Linear(16, 8), torch.bfloat16)


@case(inputs=lambda: (randn(2, 16, dtype=torch.float16),), module=True, **F16)
def f16_linear():
    return _narrow(nn.Linear(16, 8), torch.float16)


@case(inputs=lambda: (randn(1, 3, 10, 10, dtype=torch.bfloat16),), module=True, **BF16)
def bf16_conv2d():
    return _narrow(nn.Conv2d(3, 4, 3, padding=1), torch.bfloat16)


@case(inputs=lambda: (randn(1, 3, 10, 10, dtype=torch.float16),), module=True, **F16)
def f16_conv2d():
    return _narrow(nn.Conv2d(3, 4, 3, padding=1), torch.float16)


@case(inputs=lambda: (randn(3, 12, dtype=torch.bfloat16),), module=True, **BF16)
def bf16_layer_norm():
    return _narrow(nn.LayerNorm(12), torch.bfloat16)


@case(inputs=lambda: (randn(3, 12, dtype=torch.float16),), module=True, **F16)
def f16_layer_norm():
    return _narrow(nn.LayerNorm(12), torch.float16)


@case(inputs=lambda: (randn(2, 6, dtype=torch.bfloat16), randn(2, 6)), **BF16)
def bf16_mixed_with_f32(x, y):
    return x.float() + y, (y * 2).bfloat16()
