"""Data movement: concat, slice, reshape, permute, gather; multiple outputs and structures."""

import torch

from .registry import case, randint, randn


@case(inputs=lambda: (randn(2, 3), randn(2, 5)))
def concat(x, y):
    return torch.cat([x, y, x], dim=1)


@case(inputs=lambda: (randn(2, 3), randn(2, 3)))
def stack(x, y):
    return torch.stack([x, y], dim=0)


@case(inputs=lambda: (randn(6, 8),))
def slice_with_step(x):
    return x[1:5, ::2], x[-2:, 3]


@case(inputs=lambda: (randn(2, 3, 4),))
def reshape_view_flatten(x):
    return x.reshape(6, 4), x.view(2, 12), torch.flatten(x)


@case(inputs=lambda: (randn(2, 3, 4, 5),))
def permute_transpose(x):
    return x.permute(0, 2, 3, 1), x.transpose(1, 3).contiguous()


@case(inputs=lambda: (randn(1, 3, 1, 4),))
def squeeze_unsqueeze(x):
    return x.squeeze(), x.unsqueeze(0).squeeze(2)


@case(inputs=lambda: (randn(6, 4),))
def split_chunk(x):
    first, second = torch.chunk(x, 2, dim=0)
    return first - second, torch.split(x, [1, 3], dim=1)[1]


@case(inputs=lambda: (randn(4, 6), randint(0, 6, 4, 3)))
def gather(x, index):
    return torch.gather(x, 1, index)


@case(inputs=lambda: (randn(5, 6), randint(0, 5, 3)))
def index_select(x, index):
    return torch.index_select(x, 0, index)


@case(inputs=lambda: (randn(2, 3, 4),))
def constant_pad(x):
    return torch.nn.functional.pad(x, (1, 2, 0, 1), value=0.5)


@case(inputs=lambda: (randn(3, 1),))
def expand_repeat(x):
    return x.expand(3, 4) * 2, x.repeat(2, 3)


@case(inputs=lambda: (randn(4, 4),))
def tril_triu(x):
    return torch.tril(x), torch.triu(x, diagonal=1)


@case(inputs=lambda: (randn(3, 4), randn(3, 4)))
def dict_and_list_outputs(x, y):
    return {"sum": x + y, "parts": [x * 2, y.mean()]}


@case(inputs=lambda: (randn(2, 3), {"scale": randn(3), "shift": randn(2, 3)}))
def dict_input(x, params):
    return x * params["scale"] + params["shift"]


@case(inputs=lambda: (randn(3, 4),))
def arange_and_full(x):
    return x + torch.arange(4, dtype=torch.float32), torch.full((2, 2), 3.0)


@case(inputs=lambda: (randn(4, 6), randint(0, 4, 2)))
def index_put(x, index):
    return x.index_put((index,), torch.ones(2, 6))
