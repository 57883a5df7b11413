"""The loop-level optimisations of the native backends, checked numerically
against PyTorch: polynomial exp and erf (on by default), dropping an unused
argmax, var_mean (LayerNorm) kept in f32, and the opt-in transform-dialect
vectorization stage."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch

import mlirc
from mlirc.frontends.python_file import load_model_file

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
EDGES = [0.0, -0.0, 1e-30, -1e-30, 1e-8, -1e-8, 0.4999, 0.5, 0.5001, 1.0, -1.0, 3.9, 4.1,
         10.0, -10.0, 80.0, 88.7, 88.73, 100.0, -87.3, -87.34, -100.0, -104.0,
         math.inf, -math.inf, math.nan]


class Unary(torch.nn.Module):
    def __init__(self, function):
        super().__init__()
        self.function = function

    def forward(self, x):
        return self.function(x)


def _compile_unary(function, x, **options):
    return mlirc.compile(Unary(function), (torch.from_numpy(x),), cache=False, **options)


@pytest.mark.parametrize("vectorize", [False, True], ids=["loops", "vectorized"])
def test_exp_within_two_ulp(vectorize):
    x = np.concatenate([np.linspace(-110, 110, 40001), EDGES]).astype(np.float32)
    compiled = _compile_unary(torch.exp, x, vectorize=vectorize)
    assert "math.exp" not in compiled.ir["optimized"]
    got = np.asarray(compiled(x))
    expected = torch.exp(torch.from_numpy(x)).numpy()
    # subnormal results (below -87.3) carry fewer significant bits
    np.testing.assert_allclose(got, expected, rtol=2.4e-7, atol=1e-44)


@pytest.mark.parametrize("vectorize", [False, True], ids=["loops", "vectorized"])
def test_erf_within_2e_7(vectorize):
    x = np.concatenate([np.linspace(-6, 6, 24001), EDGES]).astype(np.float32)
    compiled = _compile_unary(torch.erf, x, vectorize=vectorize)
    got = np.asarray(compiled(x))
    expected = torch.erf(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=2e-7)
    small = np.abs(x) < 1e-3  # the Taylor branch keeps relative accuracy near 0
    np.testing.assert_allclose(got[small], expected[small], rtol=1e-6)


def test_softmax_max_drops_its_argmax():
    x = torch.randn(4, 8, 33)
    compiled = mlirc.compile(Unary(lambda t: torch.softmax(t, dim=-1)), (x,), cache=False)
    assert "xi64>" in compiled.ir["linalg"]      # max.dim: value and index
    assert "xi64>" not in compiled.ir["optimized"]
    np.testing.assert_allclose(compiled(x.numpy()), torch.softmax(x, -1).numpy(),
                               rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", ["mlp", "cnn", "transformer"])
def test_vectorized_stage_matches_eager(name):
    model, inputs = load_model_file(EXAMPLES / f"{name}.py")
    compiled = mlirc.compile(model, inputs, vectorize=True, cache=False)
    assert "vectorized" in [s.name for s in compiled.stages]
    assert "vector.transfer_read" in compiled.ir["vectorized"]
    with torch.no_grad():
        expected = model(*inputs).numpy()
    np.testing.assert_allclose(compiled(*[t.numpy() for t in inputs]), expected,
                               rtol=1e-4, atol=1e-5)


class VarMean(torch.nn.Module):
    def forward(self, x):
        variance, mean = torch.var_mean(x, dim=(0, 2), correction=1)
        return variance, mean, torch.nn.functional.layer_norm(x, x.shape[-1:])


def test_var_mean_stays_f32_and_matches_torch():
    """torch-mlir's decomposition computes var_mean in f64; ours in f32 with
    two passes, which stays accurate on data far from zero."""
    torch.manual_seed(0)
    x = torch.randn(3, 5, 64) * 100 + 1000
    compiled = mlirc.compile(VarMean(), (x,), cache=False)
    assert "xf64>" not in compiled.ir["linalg"]  # no f64 tensors (an f64 eps constant is fine)
    for got, expected in zip(compiled(x), VarMean()(x)):
        np.testing.assert_allclose(np.asarray(got), expected.numpy(), rtol=2e-5, atol=2e-5)
