"""What crosses the model's boundary besides tensors in and tensors out:
modules with no inputs (factories), inputs updated in place (the caller sees
the update, as in eager), Python scalars in and out, and values read from
tensors with .item() inside forward."""

import math

import torch
import torch.nn.functional as F

from .registry import case, randint, randn, register

# --- factories: no inputs at all -------------------------------------------

FACTORIES = {
    "factory_arange_int": lambda: torch.arange(10),
    "factory_arange_float_step": lambda: torch.arange(0.5, 4.0, 0.25),
    "factory_arange_negative_step": lambda: torch.arange(10, 0, -3),
    "factory_eye_square": lambda: torch.eye(5),
    "factory_eye_rectangular": lambda: torch.eye(3, 6),
    "factory_zeros": lambda: torch.zeros(2, 3, 4),
    "factory_ones_int": lambda: torch.ones(4, 2, dtype=torch.int32),
    "factory_full": lambda: torch.full((3, 3), 2.5),
    "factory_full_bool": lambda: torch.full((2, 5), True),
    "factory_linspace": lambda: torch.linspace(-1.0, 1.0, 9),
    "factory_logspace": lambda: torch.logspace(0.0, 2.0, 5),
    "factory_hann_window": lambda: torch.hann_window(16),
    "factory_hann_window_symmetric": lambda: torch.hann_window(9, periodic=False),
    "factory_hamming_window": lambda: torch.hamming_window(12),
    "factory_blackman_window": lambda: torch.blackman_window(10),
    "factory_bartlett_window": lambda: torch.bartlett_window(11),
    "factory_kaiser_window": lambda: torch.kaiser_window(8, periodic=True, beta=5.0),
    "factory_tril_ones": lambda: torch.tril(torch.ones(5, 5)),
    "factory_triu_mask": lambda: torch.triu(torch.ones(4, 4, dtype=torch.bool), diagonal=1),
    "factory_constant_tensor": lambda: torch.tensor([[1.0, -2.0], [3.5, 0.0]]) * 2,
    "factory_meshgrid": lambda: torch.meshgrid(torch.arange(3), torch.arange(4), indexing="ij"),
    "factory_cumsum_arange": lambda: torch.cumsum(torch.arange(1, 8, dtype=torch.float32), 0),
    "factory_one_hot": lambda: F.one_hot(torch.arange(4) % 3, num_classes=3),
    "factory_outer_positions": lambda: torch.outer(torch.arange(4.0), torch.arange(1.0, 3.0)),
    "factory_sinusoid_table": lambda: torch.sin(torch.arange(8.0)[:, None] /
                                                torch.pow(10000.0, torch.arange(0.0, 6.0, 2.0) / 6)),
    "factory_dict_of_tensors": lambda: {"zeros": torch.zeros(2), "range": torch.arange(3.0)},
    "factory_tuple_mixed": lambda: (torch.eye(2), torch.arange(3), torch.ones(1, dtype=torch.bool)),
}
for _name, _make in FACTORIES.items():
    register(_name, _make)


class ParameterOnly(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(3, 4))
        self.register_buffer("scale", torch.tensor([2.0, 3.0, 4.0, 5.0]))

    def forward(self):
        return self.weight * self.scale, self.weight.sum()


@case(inputs=tuple, module=True)
def factory_parameters_only():
    return ParameterOnly()


# --- inputs updated in place -------------------------------------------------

def _two(): return (randn(3, 4), randn(3, 4))
def _one(): return (randn(3, 4),)


IN_PLACE = {
    "inplace_add_": (lambda x: x.add_(1.5), _one),
    "inplace_sub_alpha": (lambda x, y: x.sub_(y, alpha=2), _two),
    "inplace_mul_": (lambda x, y: x.mul_(y), _two),
    "inplace_div_": (lambda x: x.div_(4.0), _one),
    "inplace_clamp_": (lambda x: x.clamp_(-0.5, 0.5), _one),
    "inplace_relu_": (lambda x: F.relu(x, inplace=True) * 2, _one),
    "inplace_sigmoid_": (lambda x: x.sigmoid_(), _one),
    "inplace_exp_": (lambda x: x.exp_(), _one),
    "inplace_abs_neg_": (lambda x: x.abs_().neg_(), _one),
    "inplace_pow_": (lambda x: x.pow_(2), _one),
    "inplace_zero_": (lambda x, y: (x.zero_(), y + 1)[1], _two),
    "inplace_fill_": (lambda x: x.fill_(3.25), _one),
    "inplace_copy_": (lambda x, y: x.copy_(y * 2), _two),
    "inplace_addcmul_": (lambda x, y: x.addcmul_(y, y, value=0.5), _two),
    "inplace_lerp_": (lambda x, y: x.lerp_(y, 0.25), _two),
    "inplace_masked_fill_": (lambda x: x.masked_fill_(x < 0, 0.0), _one),
    "inplace_both_inputs": (lambda x, y: (x.mul_(2), y.add_(x))[1] - 1, _two),
    "inplace_second_input_only": (lambda x, y: y.sub_(x) * 0 + x, _two),
    "inplace_not_returned": (lambda x, y: (x.add_(1), y * 3)[1], _two),
    "inplace_returned_twice": (lambda x: (x.add_(1), x), _one),
}
for _name, (_forward, _inputs) in IN_PLACE.items():
    register(_name, _forward, _inputs)


@case(inputs=_one)
def inplace_slice_assign_constant(x):
    x[0] = 0.0
    x[:, 1:3] = -1.0
    return x * 2


@case(inputs=_two)
def inplace_slice_assign_tensor(x, y):
    x[1:] = y[:2]
    return x


@case(inputs=_one)
def inplace_boolean_mask_assign(x):
    x[x > 0.5] = 0.5
    return x


@case(inputs=lambda: (randn(5, 3), torch.tensor([3, 0]), randn(2, 3)))
def inplace_index_put_rows(x, rows, values):
    x[rows] = values
    return x.sum(0)


@case(inputs=lambda: (randn(5, 3), randint(0, 5, 4), randn(4, 3)))
def inplace_index_add_(x, index, source):
    return x.index_add_(0, index, source)


@case(inputs=lambda: (randn(4, 5), torch.argsort(torch.rand(4, 5), 1)[:, :2], randn(4, 2)))
def inplace_scatter_(x, index, source):
    return x.scatter_(1, index, source)


@case(inputs=_one)
def inplace_through_transposed_view(x):
    x.t().mul_(3.0)
    return x + 0


@case(inputs=_one)
def inplace_through_row_view(x):
    x[1].add_(10.0)
    return x.mean()


@case(inputs=lambda: (randn(4, 4),))
def inplace_diagonal_fill(x):
    x.diagonal().fill_(1.0)
    return x


@case(inputs=lambda: ([randn(2, 3), randn(2, 3)],))
def inplace_inside_list(tensors):
    tensors[1].mul_(-1)
    return tensors[0] + tensors[1]


# --- Python scalars in and out ----------------------------------------------

SCALARS = {
    "scalar_int_input": (lambda x, n: x * n, lambda: (randn(3, 4), 3)),
    "scalar_float_input": (lambda x, s: x + s, lambda: (randn(3, 4), 0.75)),
    "scalar_two_inputs": (lambda x, a, b: x * a - b, lambda: (randn(2, 5), 2, -1.5)),
    "scalar_bool_branch": (lambda x, flag: x.relu() if flag else x.abs(), lambda: (randn(6), True)),
    "scalar_int_as_shape": (lambda x, rows: x.reshape(rows, -1), lambda: (randn(4, 6), 8)),
    "scalar_int_as_dim": (lambda x, dim: x.sum(dim), lambda: (randn(3, 4, 5), 1)),
    "scalar_float_pow": (lambda x, p: x.abs().pow(p), lambda: (randn(7), 1.5)),
    "scalar_output_constant": (lambda x: (x * 2, 3), lambda: (randn(2, 2),)),
    "scalar_output_shape": (lambda x: x.shape[0] * x.shape[1], lambda: (randn(3, 5),)),
    "scalar_output_float_of_shape": (lambda x: x.shape[1] / 2.0, lambda: (randn(3, 5),)),
    "scalar_output_bool": (lambda x: (x.abs() >= 0).all().item(), lambda: (randn(4),)),
    "scalar_output_item_float": (lambda x: x.sum().item(), lambda: (randn(3, 4),)),
    "scalar_output_item_int": (lambda x: (x > 0).sum().item(), lambda: (randn(3, 4),)),
    "scalar_output_mixed_tuple": (lambda x: (x.max(), x.numel(), 0.5, True),
                                  lambda: (randn(2, 3),)),
    "scalar_output_in_dict": (lambda x: {"y": x + 1, "count": x.numel()}, lambda: (randn(5),)),
    "scalar_input_passed_through": (lambda x, n: (x * n, n * 2), lambda: (randn(3), 4)),
    "scalar_none_input": (lambda x, bias: x if bias is None else x + bias, lambda: (randn(3), None)),
    "scalar_in_list_input": (lambda parts: parts[0] * parts[1], lambda: ([randn(3), 2.0],)),
}
for _name, (_forward, _inputs) in SCALARS.items():
    register(_name, _forward, _inputs)


# --- values read from tensors inside forward --------------------------------

DATA_DEPENDENT = {
    "item_divide_by_max": lambda x: x / x.abs().max().item(),
    "item_scale_by_sum": lambda x: x * x.sum().item(),
    "item_shift_by_mean": lambda x: x - x.mean().item(),
    "item_full_of_value": lambda x: torch.full((2, 3), x.sum().item()),
    "item_in_math": lambda x: x * math.pi + x.std().item(),
    "item_two_values": lambda x: (x - x.min().item()) / (x.max().item() - x.min().item()),
    "item_int_count": lambda x: x * (x > 0).sum().item(),
    # float(t), int(t), bool(t): read by TorchDynamo (strict export)
    "float_of_element": lambda x: x + float(x[0, 0]),
    "float_of_sum_returned": lambda x: (x * 2, float(x.sum())),
    "int_of_max_truncated": lambda x: x * int(x.abs().max() * 3),
    "int_of_min_in_full": lambda x: torch.full((2,), x.max().item()) + int(x.min()),
    "bool_of_comparison_as_factor": lambda x: x * bool(x.sum() > 0),
    "item_new_full_of_argmax": lambda x: x.new_full((3,), int(x.argmax())),
}
for _name, _forward in DATA_DEPENDENT.items():
    register(_name, _forward, lambda: (randn(4, 5),))
