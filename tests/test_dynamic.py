"""Dynamic dimensions: a model compiled once runs at every size within the
declared bounds, on jit, aot and iree-cpu, with results equal to eager's
(random sizes, seeded); sizes out of bounds or inconsistent between inputs
are typed errors; the record of symbols survives save/load and is checked
when read back."""

import json
import random

import pytest
import torch
from torch import nn

import mlirc
from mlirc.errors import InputError
from mlirc.runtime.signature import Signature

BACKENDS = ["jit", "aot", "iree-cpu"]
SIZES_PER_MODEL = 3


class Encoder(nn.Module):
    """Attention reshapes [b, s, 32] to [b, 4*s, 8]: the views torch-mlir
    lowers wrongly with dynamic sizes (frontends/torch_graph.py rewrites them)."""

    def __init__(self):
        super().__init__()
        self.layer = nn.TransformerEncoderLayer(32, 4, 64, batch_first=True, dropout=0.0)

    def forward(self, x):
        return self.layer(x)


class TwoInputs(nn.Module):
    def forward(self, x, y):
        return torch.cat([x, y], 1).flatten(1), x.sum(0)


class TransposedLinear(nn.Module):
    """A Linear on a transposed 3-D input, which PyTorch traces as a bmm by
    the weight broadcast over the batch (frontends/torch_graph.py folds it
    into one matmul)."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(16, 8)

    def forward(self, x):
        return torch.relu(self.linear(x.transpose(0, 1)))


class AttentionView(nn.Module):
    """Hugging Face GPT-2's attention: scaled_dot_product_attention, then a
    transpose and a `view` that merges the heads, which failed in
    decomposition with a symbolic batch (frontends/torch_graph.py turns
    views into reshapes)."""

    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(16, 48)

    def forward(self, x):
        batch, length, _ = x.shape
        q, k, v = (t.view(batch, length, 2, 8).transpose(1, 2)
                   for t in self.qkv(x).split(16, dim=2))
        out = nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        return out.transpose(1, 2).contiguous().view(batch * length, 16)


class PermutedPool(nn.Module):
    """ConvNeXt's head: a Linear over channels-last, permuted back, then an
    average pool, which decomposes into a mean and an `as_strided` that the
    FX importer refuses with a symbolic size (frontends/torch_graph.py reads
    it as the view it is)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        y = self.fc(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return nn.functional.adaptive_avg_pool2d(y, 1).flatten(1)


def _cnn():
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Conv2d(8, 8, 3, stride=2),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5))


def _grouped_split():
    """A grouped convolution (one kernel call per group) and a convolution on
    half the channels (a view whose images are not packed one after the
    other), both on a dynamic batch."""
    class GroupedSplit(nn.Module):
        def __init__(self):
            super().__init__()
            self.grouped = nn.Conv2d(16, 16, 3, stride=2, padding=1, groups=2)
            self.pointwise = nn.Conv2d(8, 8, 1)

        def forward(self, x):
            first, second = torch.relu(self.grouped(x)).chunk(2, dim=1)
            return torch.cat([first, self.pointwise(second)], dim=1)
    return GroupedSplit()


MODELS = {
    # name: (model, example shapes, dynamic, shape of a call from its sizes)
    "linear_3d": (lambda: nn.Linear(16, 8), [(2, 5, 16)],
                  {0: {0: "batch", 1: ("seq", 2, 64)}}, lambda b, s: [(b, s, 16)]),
    "cnn_batch": (_cnn, [(2, 3, 16, 16)], {0: {0: ("batch", 1, 32)}},
                  lambda b, s: [(b, 3, 16, 16)]),
    "cnn_spatial": (_cnn, [(2, 3, 16, 16)], {"input": {2: ("h", 10, 48), 3: ("w", 10, 48)}},
                    lambda b, s: [(2, 3, s, b + 9)]),
    "encoder": (Encoder, [(2, 6, 32)], {0: {0: "batch", 1: ("seq", 2, 40)}},
                lambda b, s: [(b, s, 32)]),
    "transposed_linear": (TransposedLinear, [(5, 2, 16)], {0: {1: "batch"}},
                          lambda b, s: [(5, b, 16)]),
    "attention_view": (AttentionView, [(2, 6, 16)], {0: {0: "batch"}},
                       lambda b, s: [(b, 6, 16)]),
    "transposed_linear_rows": (TransposedLinear, [(2, 5, 16)], {0: {0: "batch"}},
                               lambda b, s: [(b, 5, 16)]),
    "permuted_pool": (PermutedPool, [(2, 8, 5, 5)], {0: {0: "batch"}},
                      lambda b, s: [(b, 8, 5, 5)]),
    "grouped_split": (_grouped_split, [(2, 16, 9, 9)], {0: {0: "batch"}},
                      lambda b, s: [(b, 16, 9, 9)]),
    "shared_symbol": (TwoInputs, [(3, 2), (3, 4)], {0: {0: "rows"}, 1: {0: "rows"}},
                      lambda b, s: [(b, 2), (b, 4)]),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(MODELS))
def test_random_sizes_match_eager(name, backend):
    make, shapes, dynamic, call_shapes = MODELS[name]
    torch.manual_seed(0)
    model = make().eval()
    compiled = mlirc.compile(model, tuple(torch.randn(*s) for s in shapes), backend=backend,
                             dynamic_shapes=dynamic, cache=False)
    assert compiled.signature.dynamic is not None
    chooser = random.Random(name)
    for _ in range(SIZES_PER_MODEL):
        inputs = [torch.randn(*shape)
                  for shape in call_shapes(chooser.randint(1, 9), chooser.randint(10, 30))]
        report = compiled.verify(*inputs, rtol=1e-3, atol=1e-4)
        assert report.passed, f"sizes {[list(i.shape) for i in inputs]}\n{report}"


@pytest.mark.parametrize("shape, dynamic", [
    ((5, 2, 16), None), ((5, 2, 16), {0: {1: "batch"}}),
    ((2, 5, 16), {0: {0: "batch"}}),  # the symbolic size in the product's rows
])
def test_broadcast_weight_matmul_becomes_one_gemm(shape, dynamic):
    compiled = mlirc.compile(TransposedLinear().eval(), (torch.randn(*shape),),
                             dynamic_shapes=dynamic, stop_at="linalg", cache=False)
    linalg = compiled.ir["linalg"]
    assert "linalg.batch_matmul" not in linalg and "linalg.matmul" in linalg


def test_bounds_and_shared_sizes_are_checked():
    compiled = mlirc.compile(TwoInputs(), (torch.randn(3, 2), torch.randn(3, 4)),
                             dynamic_shapes={"x": {0: ("rows", 1, 8)}, "y": {0: "rows"}},
                             cache=False)
    assert compiled.signature.dynamic["symbols"]["rows"]["max"] == 8
    assert compiled(torch.ones(8, 2), torch.ones(8, 4))[0].shape == (8, 6)
    with pytest.raises(InputError, match=r"dimension 0 is 9, outside the compiled range 1\.\.8"):
        compiled(torch.ones(9, 2), torch.ones(9, 4))
    with pytest.raises(InputError, match="another input has 5"):
        compiled(torch.ones(5, 2), torch.ones(6, 4))
    with pytest.raises(InputError, match=r"expected shape \[\?, 2\]"):
        compiled(torch.ones(5, 3), torch.ones(5, 4))


def test_torch_export_dims_and_user_names():
    batch = torch.export.Dim("batch", min=1, max=16)
    compiled = mlirc.compile(nn.Linear(4, 3), (torch.randn(2, 4),),
                             dynamic_shapes=({0: batch},), cache=False)
    assert compiled.signature.describe() == "(?x4xf32) -> (?x3xf32)"
    assert compiled(torch.ones(11, 4)).shape == (11, 3)
    short = mlirc.compile(nn.Linear(4, 3), (torch.randn(2, 4),),
                          dynamic_shapes={"input": {0: "batch"}}, cache=False)
    assert short.signature.dynamic["inputs"] == [[0, 0, "batch"]]
    assert short.signature.dynamic["outputs"] == [[0, 0, "batch"]]


@pytest.mark.parametrize("dynamic", [{0: {0: "batch"}}, ({0: torch.export.Dim("b", max=16)},)])
def test_batch_one_example_with_a_dynamic_batch(dynamic):
    # torch.export alone refuses this: it specializes a size-1 example to 1
    torch.manual_seed(0)
    model = _cnn().eval()
    compiled = mlirc.compile(model, (torch.randn(1, 3, 16, 16),), dynamic_shapes=dynamic,
                             cache=False)
    for batch in (1, 5):
        assert compiled.verify(torch.randn(batch, 3, 16, 16), rtol=1e-3, atol=1e-4).passed


def test_saved_dynamic_model_keeps_its_sizes(tmp_path):
    compiled = mlirc.compile(nn.Linear(4, 3), (torch.randn(2, 4),), backend="aot",
                             dynamic_shapes={0: {0: ("batch", 1, 32)}}, cache=False)
    folder = compiled.save(tmp_path / "model")
    header = (folder / "model.h").read_text()
    assert "?x4xf32" in header and "dim 0 = batch" in header
    loaded = mlirc.load(folder)
    x = torch.randn(7, 4)
    assert torch.allclose(loaded(x), compiled(x))


@pytest.mark.parametrize("edit, message", [
    ({"inputs": [[0, 1, "batch"]]}, "does not name a dynamic dimension"),
    ({"inputs": [[0, 0, "other"]]}, "unknown symbol"),
    ({"outputs": [[0, 0, "__import__('os')"]]}, "unknown symbol __import__"),
    ({"outputs": [[0, 0, "batch.real"]]}, "not integer arithmetic"),
    ({"outputs": [[0, 0, "batch * other"]]}, "unknown symbol other"),
    ({"outputs": []}, "not each named once"),
])
def test_edited_dynamic_record_is_refused(edit, message):
    record = {"symbols": {"batch": {"min": 1, "max": None, "example": 2}},
              "inputs": [[0, 0, "batch"]], "outputs": [[0, 0, "batch"]]}
    good = {"inputs": ["?x4xf32"], "outputs": ["?x3xf32"], "dynamic": record}
    Signature.from_json(json.dumps(good))
    with pytest.raises(InputError, match=message):
        Signature.from_json(json.dumps({**good, "dynamic": {**record, **edit}}))


def test_dynamic_shapes_errors_are_typed():
    with pytest.raises(InputError, match="not a tensor input"):
        mlirc.compile(nn.Linear(4, 3), (torch.randn(2, 4),), dynamic_shapes={"nope": {0: "b"}})
    with pytest.raises(InputError, match="Python scalar"):
        mlirc.compile(Scale(), (torch.randn(2, 4), 3), dynamic_shapes={0: {0: "b"}})


class Scale(nn.Module):
    def forward(self, x, factor):
        return x * factor


def test_cli_dynamic_option(tmp_path):
    import subprocess
    import sys
    model = tmp_path / "model.py"
    model.write_text("import torch\n"
                     "def model():\n    return torch.nn.Linear(8, 4).eval()\n"
                     "def example_inputs():\n    return (torch.randn(2, 8),)\n")
    mlirc_cli = [sys.executable, "-m", "mlirc", "run", str(model), "--no-cache"]
    ran = subprocess.run(mlirc_cli + ["--dynamic", "0:0=batch:1:16", "--input=5x8xf32=1"],
                         capture_output=True, text=True)
    assert ran.returncode == 0 and "5x4xf32=" in ran.stdout, ran.stderr
    refused = subprocess.run(mlirc_cli + ["--dynamic", "0:0=batch:1:16", "--input=17x8xf32=1"],
                             capture_output=True, text=True)
    assert refused.returncode == 2 and "outside the compiled range 1..16" in refused.stderr
    malformed = subprocess.run(mlirc_cli + ["--dynamic", "0:0"], capture_output=True, text=True)
    assert malformed.returncode == 2 and malformed.stderr.startswith("mlirc: error: --dynamic")
