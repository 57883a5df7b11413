"""Elementwise math, broadcasting, integer and boolean ops, dtypes."""

import torch

from .registry import case, randint, randn


@case(inputs=lambda: (randn(4, 5), randn(4, 5)))
def add_sub_mul_div(x, y):
    return (x + y) * (x - y) / (y.abs() + 1.0)


@case(inputs=lambda: (randn(2, 3, 4), randn(4)))
def broadcast_add_3d_1d(x, y):
    return x + y


@case(inputs=lambda: (randn(3, 1, 5), randn(1, 4, 1)))
def broadcast_both_sides(x, y):
    return x * y


@case(inputs=lambda: (randn(6, 7),))
def exp_log_sqrt(x):
    return torch.exp(x) + torch.log(x.abs() + 1) + torch.sqrt(x.abs())


@case(inputs=lambda: (randn(6, 7),))
def activations(x):
    return torch.tanh(x) + torch.sigmoid(x) + torch.nn.functional.gelu(x) + torch.relu(x)


@case(inputs=lambda: (randn(6, 7),))
def silu_softplus_elu(x):
    functional = torch.nn.functional
    return functional.silu(x) + functional.softplus(x) + functional.elu(x)


@case(inputs=lambda: (randn(5, 5),))
def clamp_neg_abs(x):
    return torch.clamp(-x, min=-0.5, max=0.7) + x.abs()


@case(inputs=lambda: (randn(5, 5), randn(5, 5)))
def maximum_minimum_where(x, y):
    return torch.where(x > y, torch.maximum(x, y), torch.minimum(x, y) * 2)


@case(inputs=lambda: (randn(4, 4),))
def pow_rsqrt_reciprocal(x):
    positive = x.abs() + 0.5
    return torch.pow(positive, 2.5) + torch.rsqrt(positive) + torch.reciprocal(positive)


@case(inputs=lambda: (randn(4, 4),))
def trigonometry(x):
    return torch.sin(x) * torch.cos(x) + torch.atan(x)


@case(inputs=lambda: (randn(8),))
def erf_floor_ceil_round(x):
    return torch.erf(x) + torch.floor(x * 3) + torch.ceil(x * 3) + torch.round(x * 3)


@case(inputs=lambda: (randn(3, 4, dtype=torch.float64), randn(3, 4, dtype=torch.float64)))
def float64_math(x, y):
    return torch.exp(x) * y - x / (y.abs() + 1)


@case(inputs=lambda: (randn(3, 4, dtype=torch.float16), randn(3, 4, dtype=torch.float16)),
      rtol=2e-3, atol=2e-3)
def float16_add_mul(x, y):
    return x * y + x


@case(inputs=lambda: (randint(-50, 50, 4, 5, dtype=torch.int32),
                      randint(1, 10, 4, 5, dtype=torch.int32)))
def int32_arithmetic(x, y):
    return x * y + x - y


@case(inputs=lambda: (randint(-50, 50, 4, 5), randint(1, 10, 4, 5)))
def int64_floor_divide_remainder(x, y):
    return torch.floor_divide(x, y), torch.remainder(x, y)


@case(inputs=lambda: (randint(0, 255, 6, dtype=torch.int64), randint(0, 255, 6)))
def bitwise_ops(x, y):
    return (x & y) | (x ^ y), ~x


@case(inputs=lambda: (randint(0, 255, 6, dtype=torch.int64),))
def bitwise_xor_scalar(x):
    return x ^ 3


@case(inputs=lambda: (randn(4, 6), randn(4, 6)))
def comparisons_to_bool(x, y):
    return x > y, x <= y, x == x


@case(inputs=lambda: (randn(4, 6) > 0, randn(4, 6) > 0))
def boolean_logic(a, b):
    return torch.logical_and(a, b), torch.logical_or(a, ~b), torch.logical_xor(a, b)


@case(inputs=lambda: (randint(-5, 5, 3, 4, dtype=torch.int32),))
def int_to_float_cast(x):
    return x.to(torch.float32) * 0.5


@case(inputs=lambda: (randn(3, 4),))
def float_to_int_cast(x):
    return (x * 10).to(torch.int64)


@case(inputs=lambda: (randn(3, 4) > 0, randn(3, 4)))
def bool_mask_select(mask, x):
    return torch.where(mask, x, torch.zeros_like(x)), mask.to(torch.float32).sum()
