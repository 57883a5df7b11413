"""The BLAS shim's packed-weights GEMM (a constant B packed once per call
site), checked against PyTorch: row counts around its 8-row tile, column
counts around its 32-column panels, B transposed (nn.Linear) or not, with a
bias (C accumulates) and without (C = A*B), and the same call twice (the
second reads the packed copy)."""

import numpy as np
import pytest
import torch

import mlirc
from mlirc.kernels import choice


class Linear(torch.nn.Module):
    def __init__(self, features, outputs, bias):
        super().__init__()
        self.linear = torch.nn.Linear(features, outputs, bias=bias)

    def forward(self, x):
        return self.linear(x)


class RightMultiply(torch.nn.Module):
    """x @ W with W stored K x N: the weight is not transposed."""

    def __init__(self, features, outputs):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(features, outputs))

    def forward(self, x):
        return x @ self.weight


CASES = {  # rows, features, outputs
    "one-row": (1, 64, 32),
    "under-one-tile": (5, 24, 40),
    "one-tile": (8, 16, 64),
    "tiles-and-rest": (33, 48, 100),
    "mlp-layer": (32, 256, 512),
}


# The packed kernel on every host: the compiler would not choose it where it
# loses to BLAS (AVX2), but it must compute the same there.
PACKED = {"gemm": "packed"}


def _uses_packed(compiled) -> bool:
    """The packed kernel in the IR, and the library's counters say it ran."""
    choice.reset_kernel_runs()
    compiled(*[np.zeros(s.shape, np.float32) for s in compiled.signature.inputs])
    return "mlirc_gemm_f32_packed" in compiled.ir["blas"] and \
        choice.kernel_runs()["gemm:packed"] > 0


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("case", CASES)
def test_linear_matches_eager(case, bias):
    rows, features, outputs = CASES[case]
    torch.manual_seed(0)
    model = Linear(features, outputs, bias).eval()
    x = torch.randn(rows, features)
    compiled = mlirc.compile(model, (x,), cache=False, kernels=PACKED)
    assert _uses_packed(compiled)
    for _ in range(2):  # the second call reads the packed copy
        np.testing.assert_allclose(compiled(x).numpy(), model(x).detach().numpy(),
                                   rtol=1e-4, atol=1e-4)


def test_untransposed_weight_matches_eager():
    torch.manual_seed(0)
    model = RightMultiply(40, 72).eval()
    x = torch.randn(12, 40)
    compiled = mlirc.compile(model, (x,), cache=False, kernels=PACKED)
    assert _uses_packed(compiled)
    np.testing.assert_allclose(compiled(x).numpy(), model(x).detach().numpy(),
                               rtol=1e-4, atol=1e-4)


def test_two_models_with_the_same_shapes_keep_their_own_weights():
    """Packed copies belong to a compiled module's call site, not to an
    address: a second model (whose weights may reuse the first's freed
    memory) gets its own."""
    x = torch.randn(4, 32)
    for seed in (1, 2, 3):
        torch.manual_seed(seed)
        model = Linear(32, 64, bias=False).eval()
        compiled = mlirc.compile(model, (x,), cache=False, kernels=PACKED)
        np.testing.assert_allclose(compiled(x).numpy(), model(x).detach().numpy(),
                                   rtol=1e-4, atol=1e-4)
        del compiled


def test_linear_relu_stack_folds_bias_and_relu_and_matches_eager():
    """Linear -> ReLU layers: each packed call computes relu(x W^T + b)
    itself (into the next buffer, or into its own and a copy when
    bufferization gave the layer's output the input's buffer)."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 96), torch.nn.ReLU(),
                                torch.nn.Linear(96, 96), torch.nn.ReLU(),
                                torch.nn.Linear(96, 40)).eval()
    x = torch.randn(5, 64)
    compiled = mlirc.compile(model, (x,), cache=False, kernels=PACKED)
    assert compiled.ir["blas"].count("call @mlirc_gemm_f32_packed_bias") >= 2
    for _ in range(2):
        np.testing.assert_allclose(compiled(x).numpy(), model(x).detach().numpy(),
                                   rtol=1e-4, atol=1e-4)
