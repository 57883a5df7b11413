"""The peer benchmark runs and reports every runner (no speed is asserted:
speed is measured by benchmarks/peers.py, not by tests)."""

import torch

from mlirc import bench


class Tiny(torch.nn.Module):
    def forward(self, x):
        return torch.relu(x @ x.T)


def test_benchmark_reports_each_runner_and_eager_is_the_reference():
    results = bench.benchmark(Tiny(), (torch.randn(8, 8),),
                              ["eager", "onnxruntime", "mlirc-jit", "mlirc-iree-cpu"],
                              rounds=2, calls=2, log=lambda *_: None)
    assert [r.name for r in results] == ["eager", "onnxruntime", "mlirc-jit", "mlirc-iree-cpu"]
    assert all(not r.error and len(r.samples) == 2 and r.latency > 0 for r in results)
    rows = bench.table("tiny", results)
    assert rows[0][3] == "1.00" and len(rows) == 4


def test_a_failing_runner_is_reported_not_fatal():
    (result,) = bench.benchmark(Tiny(), (torch.randn(8, 8),), ["no-such-runner"],
                                rounds=1, calls=1, log=lambda *_: None)
    assert "unknown runner" in result.error


def test_every_runners_outputs_are_checked_against_eager():
    results = bench.benchmark(Tiny(), (torch.randn(8, 8),), ["eager", "onnxruntime", "mlirc-jit"],
                              rounds=1, calls=1, log=lambda *_: None)
    assert all(r.max_error <= 1 for r in results)
    assert bench._error_ratio([torch.ones(2).numpy()], [torch.zeros(2).numpy()]) > 1
    assert bench._error_ratio([torch.ones(2).numpy()], [torch.ones(3).numpy()]) == float("inf")
