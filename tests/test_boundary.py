"""What crosses a compiled model's boundary besides tensors: inputs updated in
place (written back into the caller's tensors and arrays), Python scalars
(run-time values or specialized ones, checked), None, and the errors that
name what cannot be compiled. The e2e suite checks the numerics per backend;
these check the calling conventions."""

import numpy as np
import pytest
import torch

import mlirc
from mlirc.errors import FrontendError, InputError
from mlirc.runtime.signature import Signature


class Lambda(torch.nn.Module):
    def __init__(self, function):
        super().__init__()
        self.function = function

    def forward(self, *args):
        return self.function(*args)


def _add_one_in_place(x):
    return x.add_(1.0) * 2


def test_in_place_update_reaches_torch_and_numpy_callers():
    compiled = mlirc.compile(Lambda(_add_one_in_place), (torch.zeros(2, 3),), cache=False)
    assert compiled.signature.input_updates == [0]
    x = torch.arange(6.0).reshape(2, 3)
    out = compiled(x)
    assert torch.equal(x, torch.arange(6.0).reshape(2, 3) + 1)
    assert torch.equal(out, x * 2)
    array = np.zeros((2, 3), np.float32)
    compiled(array)
    assert np.array_equal(array, np.ones((2, 3), np.float32))
    frozen = np.zeros((2, 3), np.float32)
    frozen.flags.writeable = False
    with pytest.raises(InputError, match="updates it in place"):
        compiled(frozen)


def test_verify_compares_the_updated_inputs_and_leaves_the_callers_alone():
    compiled = mlirc.compile(Lambda(_add_one_in_place), (torch.zeros(2, 3),), cache=False)
    x = torch.randn(2, 3)
    before = x.clone()
    report = compiled.verify(x)
    assert report.passed and len(report.outputs) == 2
    assert torch.equal(x, before)


def test_runtime_scalar_takes_any_value_and_is_typed():
    compiled = mlirc.compile(Lambda(lambda x, n, s: (x * n + s, n * 2)),
                             (torch.ones(3), 2, 0.5), cache=False)
    out, doubled = compiled(torch.ones(3), 5, -1.0)
    assert torch.allclose(out, torch.full((3,), 4.0)) and doubled == 10
    assert isinstance(doubled, int)
    with pytest.raises(InputError, match="expected a Python int"):
        compiled(torch.ones(3), 1.5, 0.5)


def test_scalar_the_code_depends_on_is_specialized_and_checked():
    compiled = mlirc.compile(Lambda(lambda x, rows: x.reshape(rows, -1)),
                             (torch.randn(4, 6), 8), cache=False)
    assert compiled(torch.ones(4, 6), 8).shape == (8, 3)
    with pytest.raises(InputError, match="compiled for the value 8"):
        compiled(torch.ones(4, 6), 6)


def test_none_argument_must_stay_none():
    compiled = mlirc.compile(Lambda(lambda x, bias: x if bias is None else x + bias),
                             (torch.ones(2), None), cache=False)
    assert torch.equal(compiled(torch.ones(2), None), torch.ones(2))
    with pytest.raises(InputError, match="compiled with None"):
        compiled(torch.ones(2), torch.ones(2))


def test_scalar_outputs_come_back_as_python_values():
    compiled = mlirc.compile(Lambda(lambda x: (x.sum().item(), x.shape[0], x + 1)),
                             (torch.ones(3, 2),), cache=False)
    total, rows, plus = compiled(torch.full((3, 2), 2.0))
    assert total == 12.0 and isinstance(total, float)
    assert rows == 3 and isinstance(rows, int)
    assert torch.equal(plus, torch.full((3, 2), 3.0))


def test_updates_and_scalars_survive_save_and_load(tmp_path):
    compiled = mlirc.compile(Lambda(lambda x, n: x.mul_(n).sum()), (torch.ones(2), 3),
                             backend="aot", cache=False)
    loaded = mlirc.load(compiled.save(tmp_path / "model"))
    x = torch.ones(2)
    assert float(loaded(x, 4)) == 8.0
    assert torch.equal(x, torch.full((2,), 4.0))


def test_data_dependent_control_flow_names_the_cause_and_line():
    def branch(x):
        return x * 2 if x.sum().item() > 0 else x
    with pytest.raises(FrontendError, match=r"depend on a tensor's value.*test_boundary\.py:\d+"):
        mlirc.compile(Lambda(branch), (torch.randn(3),), cache=False)


def test_values_read_with_float_int_bool_stay_run_time_values():
    def scaled(x):
        return x * int(x.abs().max() * 3) + float(x[0]), x * bool(x.sum() > 0)
    x = torch.randn(4)
    compiled = mlirc.compile(Lambda(scaled), (x,), cache=False)
    for y in (x, torch.randn(4) * 5, -torch.rand(4)):  # other values, other reads
        for got, expected in zip(compiled(y), scaled(y)):
            torch.testing.assert_close(torch.as_tensor(got), expected)


def test_size_from_a_tensor_value_is_refused_as_such():
    with pytest.raises(FrontendError, match="a size in the model depends on a tensor's value"):
        mlirc.compile(Lambda(lambda x, n: x[:int(n)]), (torch.randn(5), torch.tensor(3)),
                      cache=False)


def test_complex_tensors_in_and_out_for_torch_and_numpy_callers(tmp_path):
    def rotate(z, angle):
        return z * torch.polar(torch.ones_like(angle), angle), (z * z.conj()).real
    z, angle = torch.randn(3, 4, dtype=torch.complex64), torch.randn(4)
    compiled = mlirc.compile(Lambda(rotate), (z, angle), cache=False)
    expected = rotate(z, angle)
    got = compiled(z, angle)
    assert got[0].dtype == torch.complex64 and got[1].dtype == torch.float32
    torch.testing.assert_close(got[0], expected[0])
    from_numpy = compiled(z.numpy(), angle.numpy())
    assert from_numpy[0].dtype == np.complex64
    np.testing.assert_allclose(from_numpy[0], expected[0].numpy(), rtol=1e-5, atol=1e-6)
    loaded = mlirc.load(compiled.save(tmp_path / "rotate"))
    torch.testing.assert_close(loaded(z, angle)[0], expected[0])
    with pytest.raises(InputError, match="complex64"):
        compiled(torch.randn(3, 4), angle)


def test_complex_op_without_a_rule_names_the_op_and_line():
    with pytest.raises(FrontendError, match=r"aten\.sin.*test_boundary\.py"):
        mlirc.compile(Lambda(lambda z: torch.sin(z)), (torch.randn(3, dtype=torch.complex64),),
                      cache=False)


def test_buffer_updated_in_forward_is_refused():
    class Counter(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("calls", torch.zeros(1))

        def forward(self, x):
            self.calls.add_(1)
            return x + self.calls
    with pytest.raises(FrontendError, match="updates its buffer 'calls'"):
        mlirc.compile(Counter(), (torch.randn(2),), cache=False)


@pytest.mark.parametrize("edit, message", [
    ({"input_updates": [5]}, "input_updates"),
    ({"input_updates": "0"}, "input_updates"),
    ({"out_tree": {"tuple": ["*", "*", "*"]}}, "out_tree has 3 leaves"),
    ({"in_tree": {"tuple": [{"tuple": ["*", "int"]}, {"dict": []}]}}, "in_tree has 2 leaves"),
    ({"outputs": ["2xf32", "3xf32"], "out_tree": "complex64"}, "complex64 leaf needs a f32"),
    ({"out_tree": "complex128"}, "complex128 leaf needs a f64"),
])
def test_edited_signature_is_refused(edit, message):
    good = {"inputs": ["2xf32"], "outputs": ["2xf32", "2xf32"],
            "in_tree": {"tuple": [{"tuple": ["*"]}, {"dict": []}]}, "out_tree": "*",
            "input_names": ["x"], "input_updates": [0]}
    Signature.from_json(__import__("json").dumps(good))
    with pytest.raises(InputError, match=message):
        Signature.from_json(__import__("json").dumps({**good, **edit}))
