"""StableHLO input (text, and JAX functions when JAX is installed) and the
output levels torch | linalg | stablehlo | tosa."""

import numpy as np
import pytest
import torch

import mlirc
from mlirc.cli import main

STABLEHLO = """
func.func @main(%x: tensor<2x3xf32>, %w: tensor<3x4xf32>) -> tensor<2x4xf32> {
  %0 = stablehlo.dot_general %x, %w, contracting_dims = [1] x [0]
      : (tensor<2x3xf32>, tensor<3x4xf32>) -> tensor<2x4xf32>
  %1 = stablehlo.tanh %0 : tensor<2x4xf32>
  %one = stablehlo.constant dense<1.0> : tensor<2x4xf32>
  %2 = stablehlo.add %1, %one : tensor<2x4xf32>
  return %2 : tensor<2x4xf32>
}
"""


@pytest.mark.parametrize("backend", ["jit", "aot", "iree-cpu"])
def test_stablehlo_text_compiles_on_every_cpu_backend(backend, tmp_path):
    path = tmp_path / "model.mlir"
    path.write_text(STABLEHLO)
    compiled = mlirc.compile(str(path), backend=backend)
    assert list(compiled.ir)[:2] == ["stablehlo", "linalg"] or compiled.extra["cache_hit"]
    x, w = np.random.rand(2, 3).astype(np.float32), np.random.rand(3, 4).astype(np.float32)
    np.testing.assert_allclose(compiled(x, w), np.tanh(x @ w) + 1, rtol=1e-5, atol=1e-6)


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(6, 4)

    def forward(self, x):
        return torch.relu(self.linear(x)).sum(dim=1)


@pytest.mark.parametrize("level,marker", [("torch", "torch.aten."), ("linalg", "linalg."),
                                          ("stablehlo", "stablehlo."), ("tosa", "tosa.")])
def test_export_at_each_output_level(level, marker, tmp_path, capsys):
    model_file = tmp_path / "net.py"
    model_file.write_text(
        "import torch\n"
        "from tests.test_stablehlo import Net\n"
        "def model():\n    torch.manual_seed(0)\n    return Net().eval()\n"
        "def example_inputs():\n    return (torch.ones(2, 6),)\n")
    out = tmp_path / f"net-{level}.mlir"
    assert main(["export", str(model_file), "--to", level, "-o", str(out)]) == 0
    assert marker in out.read_text()


def test_stablehlo_output_compiles_back_and_matches_eager(tmp_path):
    torch.manual_seed(0)
    model, x = Net().eval(), torch.randn(2, 6)
    from mlirc.stages import output_level_pipeline
    pipeline = output_level_pipeline("stablehlo")
    text = mlirc.compile(model, (x,), pipeline=pipeline, stop_at="stablehlo").ir["stablehlo"]
    compiled = mlirc.compile(text)
    np.testing.assert_allclose(compiled(x.numpy()), model(x).detach().numpy(), rtol=1e-5,
                               atol=1e-6)


def test_jax_function():
    jax = pytest.importorskip("jax", reason="JAX is an optional extra (pip install jax)")
    import jax.numpy as jnp

    def function(x, w):
        return jnp.tanh(x @ w) + 1.0, jnp.sum(x, axis=0)
    x, w = np.random.rand(4, 5).astype(np.float32), np.random.rand(5, 3).astype(np.float32)
    for backend in ["jit", "iree-cpu"]:
        compiled = mlirc.compile(function, (x, w), backend=backend)
        for got, want in zip(compiled(x, w), function(x, w)):
            np.testing.assert_allclose(got, np.asarray(want), rtol=1e-5, atol=1e-6)
    assert jax.__version__
