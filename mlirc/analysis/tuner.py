"""`mlirc tune`: the kernel of each convolution, measured.

For each distinct convolution problem of a model (read off the `blas`
stage's `mlirc.problem` attributes), every kernel the library takes for it
is a candidate. The cost model (`predict_seconds`: the kernel's arithmetic
and data movement on this machine's roofline) ranks them; each is then
compiled and timed in isolation (one convolution of that problem, random
weights, mlirc's own pipeline with the kernel forced) and the result kept in
the tuning database (analysis/tuning_db.py). Later compiles with
`tuning_db=` run the fastest measured kernel of each problem.

Measurements run in this process (`jobs=1`, on the threads the model will
run on), in a local process pool (`jobs=N`, each worker given cores // N
threads so they do not compete), or as Ray tasks (`ray_address=`, one thread
each); the database records the threads of each measurement. A run is resumable: candidates already in the
database for this machine and these versions are not measured again.
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass, field

from ..errors import InputError
from ..kernels import choice
from .machine import Machine, machine
from ..settings import thread_count
from .tuning_db import TuningDB

# A candidate replaces the compiler's default only when it is this much faster
# in isolation, and then only if the whole model gets faster with it.
NOISE_MARGIN = 1.05
MODEL_MARGIN = 1.01


@dataclass
class ProblemResult:
    problem: str
    sites: list[str]
    default: str                       # the compiler's own choice
    measured: dict[str, float]         # candidate -> seconds
    predicted: dict[str, float]
    best: str = ""
    rejected_in_model: str = ""        # faster alone, not in the model (kept the default)

    @property
    def speedup(self) -> float:
        """Default kernel's time over the best one's."""
        return self.measured[self.default] / self.measured[self.best] \
            if self.default in self.measured and self.best in self.measured else 1.0

    @property
    def rank_correlation(self) -> float | None:
        common = [c for c in self.measured if c in self.predicted]
        if len(common) < 3:
            return None
        return spearman([self.predicted[c] for c in common], [self.measured[c] for c in common])


@dataclass
class TuneReport:
    machine: Machine
    problems: list[ProblemResult] = field(default_factory=list)
    measured_now: int = 0
    seconds: float = 0.0

    def table(self) -> str:
        lines = [self.machine.describe(),
                 f"{len(self.problems)} convolution problems; {self.measured_now} candidates "
                 f"measured now in {self.seconds:.0f} s", "",
                 "| problem | sites | default | best | speed-up | Spearman | predicted ms / "
                 "measured ms per candidate |", "|---|---|---|---|---|---|---|"]
        for result in self.problems:
            detail = ", ".join(
                f"{c} {result.predicted.get(c, float('nan')) * 1e3:.3f}/{s * 1e3:.3f}"
                for c, s in sorted(result.measured.items(), key=lambda kv: kv[1]))
            rho = result.rank_correlation
            best = result.best + (f" ({result.rejected_in_model} lost in the model)"
                                  if result.rejected_in_model else "")
            lines.append(f"| {result.problem.split('@')[1]} | {len(result.sites)} | "
                         f"{result.default} | {best} | {result.speedup:.2f}x | "
                         f"{'-' if rho is None else f'{rho:.2f}'} | {detail} |")
        correlations = [r.rank_correlation for r in self.problems
                        if r.rank_correlation is not None]
        if correlations:
            median = sorted(correlations)[len(correlations) // 2]
            lines += ["", f"median Spearman (predicted vs measured, problems with >= 3 "
                          f"candidates): {median:.2f} over {len(correlations)} problems"]
        speedups = [r.speedup for r in self.problems]
        if speedups:
            geomean = math.exp(sum(math.log(s) for s in speedups) / len(speedups))
            lines.append(f"geometric mean speed-up of the tuned kernel over the default, per "
                         f"problem: {geomean:.2f}x")
        return "\n".join(lines)


def spearman(xs: list[float], ys: list[float]) -> float:
    def ranks(values):  # tied values share their mean rank
        order = sorted(range(len(values)), key=lambda i: values[i])
        result = [0.0] * len(values)
        start = 0
        while start < len(order):
            end = start
            while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
                end += 1
            for position in range(start, end + 1):
                result[order[position]] = (start + end) / 2
            start = end + 1
        return result
    rx, ry = ranks(xs), ranks(ys)
    n = len(xs)
    mean = (n - 1) / 2
    cov = sum((a - mean) * (b - mean) for a, b in zip(rx, ry))
    spread = math.sqrt(sum((a - mean) ** 2 for a in rx) * sum((b - mean) ** 2 for b in ry))
    return cov / spread if spread else 0.0


# --- what there is to tune --------------------------------------------------

def conv_problems(model, example_args=(), **compile_options) -> dict[str, list[str]]:
    """problem key -> the sites ("conv2d:N") of the model's convolutions."""
    import re

    from .. import compiler
    compiled = compiler.compile(model, example_args, stop_at="blas", cache=False,
                                **compile_options)
    problems: dict[str, list[str]] = {}
    for attributes in re.findall(r"\{([^{}]*mlirc\.problem[^{}]*)\}", compiled.ir["blas"]):
        problem = re.search(r'mlirc\.problem = "([^"]+)"', attributes).group(1)
        site = re.search(r'mlirc\.site = "([^"]+)"', attributes)
        sites = problems.setdefault(problem, [])
        if site and site.group(1) not in sites:
            sites.append(site.group(1))
    return problems


def candidates(shape: choice.ConvShape) -> list[str]:
    """Every kernel the library as built here takes for `shape` (the
    policy's vetoes are what the tuner measures, so they do not apply)."""
    return [kernel for kernel in choice.CONV_KERNELS
            if (shape.constant_filter or kernel not in choice.NEEDS_CONSTANT_FILTER)
            and choice.conv_fits(kernel, shape)]


def predict_seconds(shape: choice.ConvShape, kernel: str, host: Machine,
                    threads: int | None = None) -> float:
    """The cost model. The convolution proper: its multiply-adds at the peak
    rate against its operands at the bandwidth of where they live (the
    longer of the two). Winograd F(m x m, 3 x 3) does 9 m^2 / (m + 2)^2 times
    fewer multiplies; its input and output transforms, and im2col's column
    matrix, are passes of their own over memory, added to it. `threads`:
    the cores a measurement gets (the peak scales with them)."""
    out_h = (shape.in_h + 2 * shape.padding[0] - shape.dilation[0] * (shape.kh - 1) - 1) \
        // shape.stride[0] + 1
    out_w = (shape.in_w + 2 * shape.padding[1] - shape.dilation[1] * (shape.kw - 1) - 1) \
        // shape.stride[1] + 1
    outputs = shape.images * shape.filters * out_h * out_w
    flops = 2.0 * outputs * shape.channels * shape.kh * shape.kw
    inputs = 4.0 * shape.images * shape.channels * shape.in_h * shape.in_w
    weights = 4.0 * shape.filters * shape.channels * shape.kh * shape.kw
    traffic = inputs + weights + 4.0 * outputs
    passes = 0.0  # bytes of the separate transform passes
    if kernel == "im2col_blas":
        passes = 2 * 4.0 * shape.images * out_h * out_w * shape.channels * shape.kh * shape.kw
    elif kernel.startswith("winograd"):
        m = 4 if kernel == "winograd_f4x4" else 2
        tiles = shape.images * math.ceil(out_h / m) * math.ceil(out_w / m)
        flops /= 9 * m * m / (m + 2) ** 2
        passes = 2 * 4.0 * tiles * (m + 2) ** 2 * (shape.channels + shape.filters)
    peak = host.peak_gflops * 1e9 * min(1.0, (threads or host.cores) / host.cores)
    compute = max(flops / peak, traffic / (host.bandwidth_for(traffic) * 1e9))
    return compute + passes / (host.bandwidth_for(passes) * 1e9)


# --- measuring ----------------------------------------------------------------

def measure(problem: str, kernel: str, repeat: int = 15) -> float:
    """Seconds per call of one convolution of `problem` run by `kernel`,
    compiled by mlirc's own pipeline (best of 3 medians of `repeat` calls)."""
    import torch

    from .. import compiler
    shape = choice.ConvShape.from_key(problem)
    torch.manual_seed(0)
    convolution = torch.nn.Conv2d(shape.channels, shape.filters, (shape.kh, shape.kw),
                                  shape.stride, shape.padding, shape.dilation).eval()
    x = torch.randn(max(shape.images, 1), shape.channels, shape.in_h, shape.in_w)
    if shape.constant_filter:
        model, args = convolution, (x,)
    else:
        model, args = _filter_as_input(convolution), (x, convolution.weight.detach().clone())
    compiled = compiler.compile(model, args, backend="jit", kernels={"conv2d:0": kernel},
                                cache=False)
    return min(compiled.time(*args, repeat=repeat) for _ in range(3))


def _validate_in_model(model, example_args, report: TuneReport, compile_options) -> None:
    """Whole-model latency with each changed kernel alone against the
    compiler's defaults: the isolated problem has a plain bias where the
    model may fuse ReLU, a residual or a max pool into the call, and a win
    there can be a loss here. A change the model does not confirm by
    MODEL_MARGIN is undone (`rejected_in_model`)."""
    from .. import compiler
    changed = [r for r in report.problems if r.best != r.default]
    if not changed:
        return

    def latency(kernels) -> float:
        compiled = compiler.compile(model, example_args, backend="jit", kernels=kernels,
                                    cache=False, **compile_options)
        return min(compiled.time(*example_args, repeat=10) for _ in range(3))
    baseline = latency(None)
    for result in changed:
        with_change = latency({result.problem: result.best})
        if with_change * MODEL_MARGIN > baseline:
            result.rejected_in_model = result.best
            result.best = result.default


def _decide(measured: dict[str, float], default: str) -> str:
    """The fastest candidate, unless the compiler's default is within
    NOISE_MARGIN of it: a kernel that wins by less in isolation can lose in
    the model, where its neighbours and fused epilogues differ."""
    if not measured:
        return default
    fastest = min(measured, key=measured.get)
    if default in measured and measured[default] <= measured[fastest] * NOISE_MARGIN:
        return default
    return fastest


def _measure_task(problem: str, kernel: str, threads: int | None) -> tuple[str, str, float]:
    if threads:
        os.environ["MLIRC_NUM_THREADS"] = str(threads)
    return problem, kernel, measure(problem, kernel)


def _filter_as_input(convolution):
    """`convolution` with its filter taken as a second input (a filter that
    is not a constant, as the problem says)."""
    import torch

    class FilterAsInput(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.convolution = convolution

        def forward(self, x, weight):
            c = self.convolution
            return torch.nn.functional.conv2d(x, weight, c.bias, c.stride, c.padding,
                                              c.dilation)
    return FilterAsInput().eval()


def tune(model, example_args=(), *, db, jobs: int = 1, ray_address: str | None = None,
         measure_missing: bool = True, validate: bool = True, progress=None,
         **compile_options) -> TuneReport:
    """Measures every candidate kernel of every convolution problem of
    `model` not yet in `db` (a path or TuningDB) and returns the report;
    with `measure_missing=False`, only reports what `db` holds. With
    `validate`, each kernel that beat the default in isolation is kept only
    if the whole model (on `example_args`) runs faster with it."""
    started = time.perf_counter()
    database = db if isinstance(db, TuningDB) else TuningDB(db)
    host = machine()
    problems = conv_problems(model, example_args, **compile_options)
    if not problems:
        raise InputError("nothing to tune: the model has no convolution the kernel "
                         "library runs (the blas stage shows none)")
    shapes = {p: choice.ConvShape.from_key(p) for p in problems}
    threads = 1 if ray_address else thread_count() if jobs <= 1 \
        else max(1, host.cores // jobs)
    predicted = {p: {k: predict_seconds(shapes[p], k, host, threads)
                     for k in candidates(shapes[p])} for p in problems}
    # most promising first, so an interrupted run has measured what matters
    todo = []
    for p in problems if measure_missing else []:
        already = database.measured(p, threads)
        todo += [(p, k) for k in sorted(predicted[p], key=predicted[p].get) if k not in already]
    report = TuneReport(host)
    for done, (problem, kernel, seconds) in enumerate(
            _run(todo, jobs, ray_address, threads), start=1):
        database.record(problem, kernel, seconds, predicted[problem][kernel], threads)
        if progress:
            progress(done, len(todo), time.perf_counter() - started, problem, kernel, seconds)
    for problem, sites in problems.items():
        shape = shapes[problem]
        measured = {c: s for c, (s, _) in database.measured(problem, threads).items()
                    if c in predicted[problem]}
        default = choice.choose_conv(shape, shape.constant_filter, True, True)
        result = ProblemResult(problem, sites, default, measured, predicted[problem])
        result.best = _decide(measured, default)
        report.problems.append(result)
    if not measure_missing:  # a report: the decisions the database holds
        stored = database.best_choices(threads)
        for result in report.problems:
            result.best = stored.get(result.problem, result.best)
    else:
        if validate and example_args:
            _validate_in_model(model, example_args, report, compile_options)
        for result in report.problems:
            database.choose(result.problem, result.best, threads)
    report.measured_now = len(todo)
    report.seconds = time.perf_counter() - started
    return report


def _run(todo: list, jobs: int, ray_address: str | None, threads: int):
    """Yields (problem, kernel, seconds) as measurements finish."""
    if ray_address:
        yield from _run_on_ray(todo, ray_address)
        return
    if jobs <= 1:
        for problem, kernel in todo:
            yield problem, kernel, measure(problem, kernel)
        return
    import concurrent.futures
    import multiprocessing
    with concurrent.futures.ProcessPoolExecutor(
            jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(_measure_task, p, k, threads) for p, k in todo]
        for future in concurrent.futures.as_completed(futures):
            yield future.result()


def _run_on_ray(todo: list, address: str):
    yield from ray_tasks(_measure_task, [(p, k, 1) for p, k in todo], address)


def ray_tasks(function, argument_tuples: list, address: str):
    """Runs function(*arguments) for each tuple as a one-CPU Ray task on the
    cluster at `address` ('local' starts one); yields results as they end."""
    try:
        import ray
    except ImportError:
        raise InputError("--ray needs the ray package (pip install ray)") from None
    if not ray.is_initialized():
        ray.init(address=None if address == "local" else address, ignore_reinit_error=True,
                 log_to_driver=False)
    remote = ray.remote(num_cpus=1)(function)
    pending = [remote.remote(*arguments) for arguments in argument_tuples]
    while pending:
        ready, pending = ray.wait(pending, num_returns=1)
        yield ray.get(ready[0])


def print_progress(done: int, total: int, elapsed: float, problem: str, kernel: str,
                   seconds: float) -> None:
    eta = elapsed / done * (total - done) if done else 0.0
    print(f"\r[{done}/{total}] {kernel:<22} {seconds * 1e3:8.3f} ms  "
          f"elapsed {elapsed:5.0f} s, ETA {eta:5.0f} s", end="" if done < total else "\n",
          file=sys.stderr, flush=True)
