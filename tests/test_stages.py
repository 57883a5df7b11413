"""The stage registry, pipeline editing, and passes written in Python."""

from dataclasses import dataclass

import pytest
import torch

import mlirc
from mlirc import ir
from mlirc.passes import MlirPass, PassFailure, parse_pipeline
from mlirc.passes.base import split_pipeline


class Tanh(torch.nn.Module):
    def forward(self, x):
        return torch.tanh(x) * 2.0


def test_default_stage_order():
    assert mlirc.default_pipeline("jit").names() == [
        "torch", "torch-backend", "linalg", "optimized", "bufferized", "blas", "parallel", "loops",
        "llvm"]
    assert "blas" not in mlirc.default_pipeline("jit", blas=False).names()
    assert mlirc.default_pipeline("iree-cpu").names() == ["torch", "torch-backend", "linalg"]


def test_every_stage_but_the_first_has_passes():
    pipeline = mlirc.default_pipeline()
    assert pipeline.stages[0].passes == []
    assert all(stage.passes for stage in pipeline.stages[1:])


def test_unknown_stage_names_are_input_errors():
    with pytest.raises(mlirc.InputError, match="no stage named 'linalgg'"):
        mlirc.default_pipeline()["linalgg"]
    with pytest.raises(mlirc.InputError, match="no stage named"):
        mlirc.compile(Tanh(), (torch.randn(2),), stop_at="nope")


def test_split_pipeline_respects_nesting():
    text = "cse,func.func(canonicalize,cse),one-shot-bufferize{a=1 b=x,y},inline"
    assert split_pipeline(text) == ["cse", "func.func(canonicalize,cse)",
                                    "one-shot-bufferize{a=1 b=x,y}", "inline"]


def test_mlir_pass_name_is_the_inner_pass():
    assert MlirPass("func.func(linalg-fuse-elementwise-ops)").name == "linalg-fuse-elementwise-ops"
    assert MlirPass("one-shot-bufferize{x=1}").name == "one-shot-bufferize"


def test_python_pass_options_round_trip_through_text():
    @mlirc.register_pass
    @dataclass(frozen=True)
    class Scale(mlirc.PythonPass):
        name = "test-scale-options"
        factor: int = 2
        verbose: bool = False
        dims: tuple[int, ...] = ()

        def run(self, module_op):
            pass

    original = Scale(factor=5, verbose=True, dims=(1, 2))
    assert original.text == "test-scale-options{factor=5 verbose=true dims=1,2}"
    (parsed,) = parse_pipeline(original.text)
    assert parsed == original
    with pytest.raises(ValueError, match="no option 'speed'"):
        parse_pipeline("test-scale-options{speed=3}")


def test_replace_a_stage_pipeline_with_text():
    x = torch.randn(4, 4)
    pipeline = mlirc.default_pipeline()
    pipeline.set_passes("optimized", "func.func(canonicalize)")
    compiled = mlirc.compile(Tanh(), (x,), pipeline=pipeline)
    assert [name for name, _ in compiled.stages[3].pass_seconds] == ["canonicalize"]
    torch.testing.assert_close(compiled(x), Tanh()(x))


def test_insert_a_stage_of_our_own():
    x = torch.randn(4, 4)
    pipeline = mlirc.default_pipeline().insert_after(
        "linalg", mlirc.Stage("generalized", "named ops as linalg.generic",
                              parse_pipeline("func.func(linalg-generalize-named-ops)")))
    compiled = mlirc.compile(Tanh(), (x,), pipeline=pipeline)
    assert "generalized" in compiled.ir
    torch.testing.assert_close(compiled(x), Tanh()(x))


def test_python_pass_runs_inside_a_stage():
    seen = []

    @dataclass(frozen=True)
    class CountOps(mlirc.PythonPass):
        name = "test-count-ops"

        def run(self, module_op):
            seen.append(sum(1 for _ in ir.walk_ops(module_op)))

    x = torch.randn(3)
    pipeline = mlirc.default_pipeline().add_passes("linalg", CountOps())
    mlirc.compile(Tanh(), (x,), pipeline=pipeline)
    assert len(seen) == 1 and seen[0] > 0


def test_pattern_pass_rewrites_ir():
    """A Python rewrite pattern: tanh(x) -> 2*sigmoid(2x)-1 written as new ops."""
    arith, math = ir.dialects.arith, ir.dialects.math

    @dataclass(frozen=True)
    class TanhToExp(mlirc.PatternPass):
        name = "test-tanh-to-exp"

        def patterns(self):
            def rewrite(op, rewriter):
                x = op.operands[0]
                with rewriter.ip:
                    two = arith.ConstantOp(x.type, 2.0)
                    one = arith.ConstantOp(x.type, 1.0)
                    e = math.ExpOp(arith.MulFOp(x, two.result).result)
                    numerator = arith.SubFOp(e.result, one.result)
                    denominator = arith.AddFOp(e.result, one.result)
                    result = arith.DivFOp(numerator.result, denominator.result)
                rewriter.replace_op(op, result.operation)
                return False
            return [(math.TanhOp, rewrite)]

    x = torch.randn(8)
    pipeline = mlirc.default_pipeline().add_passes("optimized", TanhToExp())
    compiled = mlirc.compile(Tanh(), (x,), pipeline=pipeline)
    assert "math.tanh" not in compiled.ir["optimized"]
    assert "math.exp" in compiled.ir["optimized"]
    torch.testing.assert_close(compiled(x), Tanh()(x), rtol=1e-5, atol=1e-6)


def test_python_pass_failure_is_a_pipeline_error(tmp_path):
    @dataclass(frozen=True)
    class Refuse(mlirc.PythonPass):
        name = "test-refuse"

        def run(self, module_op):
            raise PassFailure("cannot handle this", "model.py:7")

    pipeline = mlirc.default_pipeline().add_passes("loops", Refuse())
    with pytest.raises(mlirc.PipelineError) as caught:
        mlirc.compile(Tanh(), (torch.randn(2),), pipeline=pipeline, dump_dir=tmp_path)
    error = caught.value
    assert (error.stage, error.pass_name, error.location) == ("loops", "test-refuse", "model.py:7")
    assert "cannot handle this" in str(error)
    assert error.repro.startswith("mlirc-opt") or "mlirc-opt" in error.repro


def test_stage_timings_and_op_counts_are_recorded():
    compiled = mlirc.compile(Tanh(), (torch.randn(2),))
    linalg = compiled.stages[2]
    assert linalg.name == "linalg" and linalg.seconds > 0
    assert linalg.op_counts["linalg"] >= 1
    assert compiled.stages[-1].op_counts.keys() == {"llvm"}


class Chain(torch.nn.Module):
    """Three layers whose temporaries each die at the next layer."""

    def __init__(self):
        super().__init__()
        self.layers = torch.nn.Sequential(torch.nn.Linear(16, 64), torch.nn.ReLU(),
                                          torch.nn.Linear(64, 64), torch.nn.Tanh(),
                                          torch.nn.Linear(64, 8))

    def forward(self, x):
        return self.layers(x)


def _frees_and_return(text: str) -> tuple[list[int], int]:
    lines = [line.strip() for line in text.splitlines()]
    frees = [i for i, line in enumerate(lines) if line.startswith("memref.dealloc")]
    return frees, max(i for i, line in enumerate(lines) if line.startswith("return"))


def test_buffers_are_freed_after_their_last_use():
    """MLIR's deallocation frees a block's buffers at its end; the loops
    stage's mlirc-free-after-last-use moves each free up to the buffer's last
    use, so later allocations of the call reuse memory still in the caches."""
    torch.manual_seed(0)
    model, x = Chain().eval(), torch.randn(4, 16)
    compiled = mlirc.compile(model, (x,), cache=False)
    frees, end = _frees_and_return(compiled.ir["bufferized"])
    assert frees and all(end - i <= len(frees) for i in frees)  # piled up before the return
    frees, end = _frees_and_return(compiled.ir["loops"])
    assert any(end - i > len(frees) for i in frees)
    torch.testing.assert_close(compiled(x), model(x), rtol=1e-4, atol=1e-5)


def test_allocations_go_to_the_shims_buffer_cache_with_blas():
    """With BLAS offload the llvm stage allocates through the shim
    (kernels/src/buffers.c hands out the block freed last); without it, malloc."""
    torch.manual_seed(0)
    model, x = Chain().eval(), torch.randn(4, 16)
    with_blas = mlirc.compile(model, (x,), cache=False)
    without = mlirc.compile(model, (x,), cache=False, blas=False)
    assert "_mlir_memref_to_llvm_alloc" in with_blas.ir["llvm"]
    assert "_mlir_memref_to_llvm_alloc" not in without.ir["llvm"]
    for compiled in (with_blas, without):
        for _ in range(3):  # reused blocks: the same results every call
            torch.testing.assert_close(compiled(x), model(x), rtol=1e-4, atol=1e-5)


class ResidualBlocks(torch.nn.Module):
    """Two bottleneck blocks, then a head: each block ends in
    relu(conv1x1(y) + bias + x), whose shortcut x is dead after that
    convolution."""

    def __init__(self):
        super().__init__()
        self.stem = torch.nn.Conv2d(3, 32, 3, padding=1)
        self.blocks = torch.nn.ModuleList(
            torch.nn.ModuleList([torch.nn.Conv2d(32, 8, 1), torch.nn.Conv2d(8, 8, 3, padding=1),
                                 torch.nn.Conv2d(8, 32, 1)]) for _ in range(2))
        self.head = torch.nn.Conv2d(32, 4, 1)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        for reduce, spatial, expand in self.blocks:
            y = torch.relu(spatial(torch.relu(reduce(x))))
            x = torch.relu(expand(y) + x)
        return self.head(x)


def test_residual_convolution_writes_over_its_dead_shortcut():
    """mlirc-residual-in-place: a residual convolution's call writes into
    its shortcut's buffer when the call is the shortcut's last use; one
    buffer fewer per block, and the same results call after call."""
    torch.manual_seed(0)
    model, x = ResidualBlocks().eval(), torch.randn(1, 3, 16, 16)
    pipeline = mlirc.default_pipeline("jit")
    pipeline.set_passes("loops", [p for p in pipeline["loops"].passes
                                  if p.name != "mlirc-residual-in-place"])
    separate = mlirc.compile(model, (x,), cache=False, pipeline=pipeline)
    in_place = mlirc.compile(model, (x,), cache=False)
    residual_calls = [line for line in in_place.ir["loops"].splitlines()
                      if "call @mlirc_conv2d_nchw_bias_residual_f32" in line]
    assert len(residual_calls) == 2
    allocations = in_place.ir["loops"].count("memref.alloc(")
    assert allocations < separate.ir["loops"].count("memref.alloc(")
    for _ in range(3):
        torch.testing.assert_close(in_place(x), model(x), rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(separate(x), model(x), rtol=1e-4, atol=1e-5)
