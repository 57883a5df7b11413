"""Matrix products and reductions."""

import torch

from .registry import case, randn


@case(inputs=lambda: (randn(16, 32), randn(32, 8)))
def mm(a, b):
    return a @ b


@case(inputs=lambda: (randn(3, 8, 16), randn(3, 16, 4)))
def bmm(a, b):
    return torch.bmm(a, b)


@case(inputs=lambda: (randn(2, 3, 8, 16), randn(16, 5)))
def matmul_broadcast_batch(a, b):
    return torch.matmul(a, b)


@case(inputs=lambda: (randn(16, 32),))
def matvec(a):
    return torch.mv(a, torch.arange(32, dtype=torch.float32) / 32)


@case(inputs=lambda: (randn(4, 20),), module=True)
def linear():
    return torch.nn.Linear(20, 30)


@case(inputs=lambda: (randn(8, 6), randn(8, 5), randn(5, 6)))
def addmm(bias, a, b):
    return torch.addmm(bias, a, b, beta=0.5, alpha=2.0)


@case(inputs=lambda: (randn(4, 5, 6),))
def einsum_contraction(x):
    return torch.einsum("bij,bkj->bik", x, x)


@case(inputs=lambda: (randn(4, 5, 6),))
def sum_and_mean(x):
    return x.sum(dim=1), x.mean(dim=(0, 2), keepdim=True), x.sum()


@case(inputs=lambda: (randn(4, 7),))
def max_min_dim(x):
    values, indices = x.max(dim=1)
    return values, indices, x.amin(dim=0)


@case(inputs=lambda: (randn(5, 9),))
def argmax_argmin(x):
    return torch.argmax(x, dim=1), torch.argmin(x, dim=0)


@case(inputs=lambda: (randn(6, 8),))
def variance_std(x):
    return torch.var(x, dim=1), torch.std(x, dim=0, unbiased=False)


@case(inputs=lambda: (randn(3, 5) * 0.5 + 1,))
def prod_dim(x):
    return torch.prod(x, dim=1)


@case(inputs=lambda: (randn(4, 6),))
def logsumexp(x):
    return torch.logsumexp(x, dim=1)


@case(inputs=lambda: (randn(4, 6),))
def cumsum(x):
    return torch.cumsum(x, dim=1)


@case(inputs=lambda: (randn(5, 8) > 0,))
def any_all(x):
    return x.any(dim=1), x.all(dim=0)


@case(inputs=lambda: (randn(4, 10),))
def topk(x):
    return torch.topk(x, 3, dim=1)


@case(inputs=lambda: (randn(4, 10),))
def sort(x):
    return torch.sort(x, dim=1)
