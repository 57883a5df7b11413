"""Latency of mlirc against its peers on one model, measured in one process:
eager PyTorch, torch.compile, ONNX Runtime, OpenVINO (when installed), and
mlirc's jit, aot and iree-cpu. Every runner's outputs are checked against
eager PyTorch's; a mismatch is reported in the table's note.

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
RTOL, ATOL = 1e-4, 1e-5


@dataclass
class RunnerResult:
    name: str
    compile_seconds: float = float("nan")
    memory_mb: float = float("nan")
    samples: list[float] = field(default_factory=list)   # per-round medians, seconds
    error: str = ""
    max_error: float = float("nan")  # against eager, relative to rtol/atol: <= 1 matches

    @property
    def latency(self) -> float:
        return statistics.median(self.samples) if self.samples else float("nan")


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _prepare(name: str, model, inputs, threads: int | None = None):
    """(callable running the model once, compile seconds). `threads` caps
    the peers' own thread pools (mlirc's: MLIRC_NUM_THREADS; torch's:
    torch.set_num_threads, both set by the caller before any run)."""
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
        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(buffer.getvalue(), options,
                                               providers=["CPUExecutionProvider"])
        feeds = {i.name: a for i, a in zip(session.get_inputs(), arrays)}
        return (lambda: session.run(None, feeds)), time.perf_counter() - started
    if name == "openvino":
        import openvino
        converted = openvino.convert_model(model, example_input=tuple(inputs))
        # f32 like every other runner: on CPUs with bf16 instructions
        # OpenVINO would otherwise compute in bf16
        config = {"INFERENCE_PRECISION_HINT": "f32"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        request = openvino.compile_model(converted, "CPU", config).create_infer_request()
        return (lambda: request.infer(arrays)), time.perf_counter() - started
    if name.startswith("mlirc-"):
        import mlirc
        compiled = mlirc.compile(model, tuple(inputs), backend=name[len("mlirc-"):], cache=False)
        from .runtime.inputs import flatten_arguments
        flat, _ = flatten_arguments(compiled.signature, tuple(arrays))
        return (lambda: compiled.run_flat(flat)), time.perf_counter() - started
    raise ValueError(f"unknown runner {name}")


def _arrays(value) -> list:
    """A runner's outputs as a flat list of numpy arrays."""
    import numpy as np
    if hasattr(value, "detach"):
        return [value.detach().numpy()]
    if isinstance(value, np.ndarray):
        return [value]
    if hasattr(value, "to_tuple"):  # Hugging Face's ModelOutput
        value = value.to_tuple()
    elif hasattr(value, "values") and not isinstance(value, (list, tuple)):  # dicts, OpenVINO's
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return [array for item in value for array in _arrays(item)]
    return [np.asarray(value)]


def _error_ratio(got: list, want: list) -> float:
    """The largest |got - want| / (ATOL + RTOL |want|): <= 1 where the
    outputs match eager within tolerance; inf for a shape mismatch."""
    import numpy as np
    if len(got) != len(want):
        return float("inf")
    worst = 0.0
    for a, b in zip(got, want):
        a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        if a.shape != b.shape:
            return float("inf")
        if a.size:
            worst = max(worst, float(np.max(np.abs(a - b) / (ATOL + RTOL * np.abs(b)))))
    return worst


def benchmark(model, inputs, runners=RUNNERS, rounds: int = 7, calls: int = 10,
              log=print, threads: int | None = None) -> list[RunnerResult]:
    import torch
    with torch.no_grad():
        reference = _arrays(model(*inputs))
    results, prepared = [], {}
    for name in runners:
        result = RunnerResult(name)
        before = _rss_mb()
        try:
            modes = {module: module.training for module in model.modules()}
            try:
                run, result.compile_seconds = _prepare(name, model, inputs, threads)
            finally:  # an exporter that restores only the top module's mode
                for module, training in modes.items():
                    module.training = training
            result.max_error = _error_ratio(_arrays(run()), reference)
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
        note = "" if r.max_error <= 1 else f"differs from eager ({r.max_error:.3g}x tolerance)"
        rows.append([model_name, r.name, f"{r.latency * 1000:.3f}", f"{r.latency / eager:.2f}",
                     f"{r.compile_seconds:.1f}", f"{r.memory_mb:.0f}", note])
    return rows


HEADERS = ["model", "runner", "latency ms", "vs eager", "compile s", "mem MB", "note"]


def gflops(flops: float, results: list[RunnerResult]) -> dict[str, float]:
    return {r.name: flops / r.latency / 1e9 for r in results if not r.error}

