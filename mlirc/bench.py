"""Latency of mlirc against its peers on one model, measured in one process:
eager PyTorch, torch.compile, ONNX Runtime, and mlirc's jit, aot and iree-cpu.

Runners are timed interleaved (each round runs every runner in turn) and the
median over rounds is reported as a ratio to eager (1.00 = as fast as eager).
Before its calls in a round, a runner waits IDLE_SECONDS and then runs
untimed for WARMUP_SECONDS: the runtimes here keep worker threads spinning
for a while after each parallel region (libgomp under PyTorch, ONNX
Runtime's pool), and on a machine with few cores a spinning pool of the
previous runner halves the next one's parallel work; but after the pause the
cores run slowly for about 10 ms of work (the mlp: 0.19 ms a call right
after 0.25 s idle, 0.11 ms once warm), so each runner is warmed up again
before it is timed. Each runner is measured as it runs on its own.
`mlirc bench MODEL.py` prints one model's table; benchmarks/peers.py runs the
bundled set and draws the chart.
"""

from __future__ import annotations

import io
import os
import statistics
import time
import warnings
from dataclasses import dataclass, field

IDLE_SECONDS = 0.05
WARMUP_SECONDS = 0.02
RUNNERS = ["eager", "torch.compile", "onnxruntime", "mlirc-jit", "mlirc-aot", "mlirc-iree-cpu"]


@dataclass
class RunnerResult:
    name: str
    compile_seconds: float = float("nan")
    memory_mb: float = float("nan")
    samples: list[float] = field(default_factory=list)   # per-round medians, seconds
    error: str = ""

    @property
    def latency(self) -> float:
        return statistics.median(self.samples) if self.samples else float("nan")


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _prepare(name: str, model, inputs):
    """(callable running the model once, compile seconds)."""
    import torch
    arrays = [t.numpy() for t in inputs]
    started = time.perf_counter()
    if name == "eager":
        def run():
            with torch.no_grad():
                return model(*inputs)
        return run, 0.0
    if name == "torch.compile":
        compiled = torch.compile(model)
        with torch.no_grad():
            compiled(*inputs)  # compiles
        seconds = time.perf_counter() - started

        def run():
            with torch.no_grad():
                return compiled(*inputs)
        return run, seconds
    if name == "onnxruntime":
        import onnxruntime
        buffer = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, tuple(inputs), buffer, dynamo=False, opset_version=17)
        session = onnxruntime.InferenceSession(buffer.getvalue(),
                                               providers=["CPUExecutionProvider"])
        feeds = {i.name: a for i, a in zip(session.get_inputs(), arrays)}
        return (lambda: session.run(None, feeds)), time.perf_counter() - started
    if name.startswith("mlirc-"):
        import mlirc
        compiled = mlirc.compile(model, tuple(inputs), backend=name[len("mlirc-"):], cache=False)
        from .runtime.inputs import flatten_arguments
        flat, _ = flatten_arguments(compiled.signature, tuple(arrays))
        return (lambda: compiled.run_flat(flat)), time.perf_counter() - started
    raise ValueError(f"unknown runner {name}")


def benchmark(model, inputs, runners=RUNNERS, rounds: int = 7, calls: int = 10,
              log=print) -> list[RunnerResult]:
    results, prepared = [], {}
    for name in runners:
        result = RunnerResult(name)
        before = _rss_mb()
        try:
            run, result.compile_seconds = _prepare(name, model, inputs)
            run()
            prepared[name] = run
        except Exception as error:  # a peer that cannot run this model is reported, not fatal
            result.error = f"{type(error).__name__}: {str(error).strip().splitlines()[0][:120]}"
        result.memory_mb = _rss_mb() - before
        log(f"  {name}: {'compiled in %.1fs' % result.compile_seconds if not result.error else result.error}")
        results.append(result)
    for _ in range(rounds):
        for result in results:
            if result.name not in prepared:
                continue
            run = prepared[result.name]
            time.sleep(IDLE_SECONDS)
            warm_until = time.perf_counter() + WARMUP_SECONDS
            run()
            while time.perf_counter() < warm_until:
                run()
            samples = []
            for _ in range(calls):
                started = time.perf_counter()
                run()
                samples.append(time.perf_counter() - started)
            result.samples.append(statistics.median(samples))
    return results


def table(model_name: str, results: list[RunnerResult]) -> list[list[str]]:
    eager = next((r.latency for r in results if r.name == "eager" and not r.error),
                 float("nan"))
    rows = []
    for r in results:
        if r.error:
            rows.append([model_name, r.name, "-", "-", "-", "-", r.error[:60]])
            continue
        rows.append([model_name, r.name, f"{r.latency * 1000:.3f}", f"{r.latency / eager:.2f}",
                     f"{r.compile_seconds:.1f}", f"{r.memory_mb:.0f}", ""])
    return rows


HEADERS = ["model", "runner", "latency ms", "vs eager", "compile s", "mem MB", "note"]


def gflops(flops: float, results: list[RunnerResult]) -> dict[str, float]:
    return {r.name: flops / r.latency / 1e9 for r in results if not r.error}

