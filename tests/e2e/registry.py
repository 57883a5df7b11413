"""The e2e numerics suite: small modules registered with `@case`, each run by
mlirc and by eager PyTorch on the same inputs and compared.

    @case(inputs=lambda: (randn(3, 4), randn(4)))
    def add_broadcast(x, y):
        return x + y

A case is either a forward function (wrapped in a Module) or, with
`module=True`, a factory returning an nn.Module. Expected failures live in
`xfail.py`, per backend, never here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

CASES: dict[str, "Case"] = {}


@dataclass
class Case:
    name: str
    make_module: Callable[[], torch.nn.Module]
    make_inputs: Callable[[], tuple]
    rtol: float
    atol: float


class FunctionModule(torch.nn.Module):
    def __init__(self, function):
        super().__init__()
        self.function = function

    def forward(self, *args):
        return self.function(*args)


def case(inputs: Callable[[], tuple], *, module: bool = False,
         rtol: float = 1e-4, atol: float = 1e-5):
    def register(function):
        name = function.__name__
        if name in CASES:
            raise ValueError(f"duplicate e2e case {name}")

        def make_module():
            torch.manual_seed(0)
            return (function() if module else FunctionModule(function)).eval()

        def make_inputs():
            torch.manual_seed(1)
            return tuple(inputs())
        CASES[name] = Case(name, make_module, make_inputs, rtol, atol)
        return function
    return register


def register(name: str, forward: Callable, inputs: Callable[[], tuple] = tuple, *,
             rtol: float = 1e-4, atol: float = 1e-5) -> None:
    """A case from a forward function under an explicit name: for families
    of cases generated in a loop."""
    forward.__name__ = name
    case(inputs=inputs, rtol=rtol, atol=atol)(forward)


def randn(*shape, dtype=torch.float32):
    return torch.randn(*shape).to(dtype)


def randint(low, high, *shape, dtype=torch.int64):
    return torch.randint(low, high, shape).to(dtype)


def load_all_cases() -> dict[str, Case]:
    from . import (cases_boundary, cases_complex, cases_elementwise,  # noqa: F401
                   cases_linear_algebra,
                   cases_nn, cases_pools_bags_masks, cases_shapes, cases_types)
    return CASES
