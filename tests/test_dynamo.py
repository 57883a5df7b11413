"""torch.compile(model, backend="mlirc")."""

import warnings

import torch


class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(8, 4)

    def forward(self, x):
        return torch.relu(self.linear(x)) * 2


def test_torch_compile_runs_graphs_through_mlirc(monkeypatch):
    import mlirc.compiler
    compiled_graphs = []
    original = mlirc.compiler.compile
    monkeypatch.setattr(mlirc.compiler, "compile",
                        lambda *a, **k: compiled_graphs.append(1) or original(*a, **k))
    torch._dynamo.reset()
    model, x = Block().eval(), torch.randn(3, 8)
    compiled = torch.compile(model, backend="mlirc")
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x), rtol=1e-4, atol=1e-5)
    assert compiled_graphs


def test_unsupported_ops_fall_back_to_eager_with_one_warning():
    class Histogram(torch.nn.Module):
        def forward(self, x):
            return torch.histc(x, bins=4) + 1
    torch._dynamo.reset()
    x = torch.randn(4, 8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = torch.compile(Histogram(), backend="mlirc")(x)
    torch.testing.assert_close(result, Histogram()(x))
    messages = [str(w.message) for w in caught if "mlirc" in str(w.message)]
    assert messages == ["mlirc: running a graph eagerly: unsupported ops torch.aten.histc"]
