"""`mlirc tune --backend iree-cpu`: IREE's tile sizes, chosen by mlirc.

For each distinct dispatch root of a model (iree_dispatch.py), candidates
are register tiles that fit this CPU's vector registers: one loop of the
output along the vector lanes (one or two vectors wide), a second loop
unrolled across registers, a reduction step of one or IREE's own. mlirc's
cost model (`predict_seconds`) ranks them; the best few and IREE's own
config are compiled and timed alone (the dispatch's benchmark module with
the config swapped in); the fastest goes into the tuning database with the
op's matcher. A compile with `tuning_db=` writes the database's choices as a
tuning spec and hands it to iree-compile.

The cost model counts, per step of the register tile, the vector
multiply-adds (lanes left empty still cost), the loads each input needs
(a vector load where the lane loop is the operand's innermost, contiguous
dimension; GATHER_CYCLES per element where it is strided or transposed;
one broadcast per element where the operand does not vary along the lanes),
reads and writes the accumulators once per reduction step (IREE keeps them
in memory between steps), and charges accumulators beyond the register
file as spills. Two multiply-adds, two loads and one store issue per
cycle; the clock comes from the machine's measured peak.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from ..errors import InputError
from .iree_dispatch import Dispatch, LoweringConfig, dispatches, measure
from .machine import Machine, machine
from .opcost import OpCost, analyze_text
from .tuner import MODEL_MARGIN, NOISE_MARGIN, ProblemResult
from .tuning_db import TuningDB

# measured candidates per dispatch, besides IREE's own config
MEASURED_PER_DISPATCH = 6
ROWS = (1, 2, 4, 8, 16)
# what a vector lane filled from a strided or transposed operand costs, in
# load slots: IREE gathers such lanes one element at a time
GATHER_CYCLES = 8


@dataclass(frozen=True)
class VectorUnit:
    lanes: int       # f32 lanes per vector register
    registers: int   # vector registers

    @classmethod
    def for_level(cls, level: str) -> VectorUnit:
        if level == "avx512":
            return cls(16, 32)
        if level in ("avx2", "x86-64-v3"):
            return cls(8, 16)
        return cls(4, 16)


def candidates(dispatch: Dispatch, cost: OpCost, unit: VectorUnit) -> list[LoweringConfig]:
    """Register tiles for the root op: a lane loop (one of the output's) one
    or two vectors wide, a row loop outside it unrolled 1..16 while the
    accumulators fit the registers, reductions stepped by one or as in
    IREE's own config."""
    loops, iterators, default = cost.loops, cost.iterators, dispatch.default
    if len(loops) != len(default.parallel):
        return []
    parallel = [i for i, it in enumerate(iterators) if it == "parallel" and loops[i] > 1]
    convolution = cost.kind == "convolution"
    if convolution:  # IREE decomposes 2-D convolutions: output rows and filter rows by one
        image = cost.dims.get("output_image", [])
        parallel = [i for i in parallel if i not in image[:1]]
    # IREE puts the lanes along the innermost of the output's tiled loops:
    # the row loop comes before the lane loop there
    order = [d for d, _ in _map_dims(cost.maps[-1])]
    found: list[LoweringConfig] = []
    for lane in parallel:
        widths = sorted({min(w, loops[lane]) for w in (unit.lanes, 2 * unit.lanes)})
        outer = [i for i in parallel if i in order and lane in order and
                 order.index(i) < order.index(lane)]
        for width in widths:
            vectors = math.ceil(width / unit.lanes)
            for row_loop in [None] + outer:
                for rows in ROWS if row_loop is not None else (1,):
                    if rows > loops[row_loop if row_loop is not None else lane] or \
                            rows * vectors > unit.registers - 4:
                        continue
                    tile = [1 if it == "parallel" else 0 for it in iterators]
                    tile[lane] = width
                    if row_loop is not None:
                        tile[row_loop] = rows
                    for reduction in _reduction_steps(default, iterators):
                        found.append(_config(default, loops, tile, reduction))
    unique = list(dict.fromkeys(found))
    return [c for c in unique if c != default]


def _reduction_steps(default: LoweringConfig, iterators: list[str]) -> list[tuple[int, ...]]:
    ones = tuple(0 if it == "parallel" else 1 for it in iterators)
    return list(dict.fromkeys([ones, default.reduction]))


def _config(default: LoweringConfig, loops, tile, reduction) -> LoweringConfig:
    """IREE's workgroup tiles, each made a multiple of the register tile."""
    distribution = []
    for extent, workgroup, register in zip(loops, default.distribution, tile):
        if workgroup and register:
            workgroup = min(extent, math.ceil(max(workgroup, register) / register) * register)
        distribution.append(workgroup)
    return LoweringConfig(tuple(distribution), tuple(tile), tuple(reduction))


def predict_seconds(cost: OpCost, config: LoweringConfig, unit: VectorUnit, host: Machine,
                    threads: int, strides: list[int] | None = None) -> float:
    """The cost model (see the module's docstring). `strides`: each
    operand's innermost stride where the dispatch reads it."""
    strides = strides or [1] * len(cost.maps)
    loops, iterators = cost.loops, cost.iterators
    tile = []
    for index, extent in enumerate(loops):
        size = config.parallel[index] if iterators[index] == "parallel" \
            else config.reduction[index]
        tile.append(max(1, min(extent, size or config.distribution[index] or extent)))
    maps = [_map_dims(m) for m in cost.maps]
    output_dims = maps[-1]
    varying = [d for d in output_dims if tile[d[0]] > 1 and d[1]]
    lane = varying[-1][0] if varying else None
    lane_width = tile[lane] if lane is not None else 1
    vectors_per_row = math.ceil(lane_width / unit.lanes)
    rows = math.prod(t for i, t in enumerate(tile) if iterators[i] == "parallel" and i != lane)
    accumulators = rows * vectors_per_row
    reduction_steps = math.prod(t for i, t in enumerate(tile) if iterators[i] != "parallel")
    multiply_adds = accumulators * reduction_steps
    loads = 0.0
    for operand, dims in enumerate(maps[:-1]):
        used = {d for d, _ in dims}
        elements = math.prod(tile[d] for d in used)
        innermost, pure = dims[-1] if dims else (None, False)
        contiguous = innermost == lane and pure and strides[operand] == 1
        if lane not in used:
            loads += elements                        # broadcasts
        elif contiguous:
            loads += elements / unit.lanes           # vector loads
        else:
            loads += elements * GATHER_CYCLES        # element by element
    # IREE reads and writes the accumulators once per reduction step of the
    # tile: a longer step spreads that over more multiply-adds
    cycles = max(multiply_adds / 2, (loads + accumulators) / 2, accumulators)
    spill = accumulators + 2 - unit.registers
    if spill > 0:
        cycles *= 1 + 4 * spill / unit.registers
    steps = math.prod(loops) / math.prod(tile)
    workgroups = math.prod(math.ceil(extent / w) for extent, w in
                           zip(loops, config.distribution) if w)
    clock = host.peak_gflops * 1e9 / (host.cores * 4 * unit.lanes)
    busy = max(1, min(threads, workgroups))
    compute = steps * cycles / clock / busy + workgroups * 2e-6 / busy
    return max(compute, cost.bytes / (host.bandwidth_for(cost.bytes) * 1e9))


def _map_dims(text: str) -> list[tuple[int, bool]]:
    """(loop, pure) for each loop in a map's results, in order: pure when
    the result is the loop alone (`d3`), not part of `d2 * 2 + d5`."""
    results = text.split("->", 1)[1].strip().strip("()")
    found = []
    for result in results.split(","):
        names = [int(token[1:]) for token in result.replace("*", " ").replace("+", " ").split()
                 if token.startswith("d") and token[1:].isdigit()]
        pure = result.strip().startswith("d") and result.strip()[1:].isdigit()
        found += [(n, pure) for n in names]
    return found


# --- the tuning run -------------------------------------------------------------

@dataclass
class IreeTuneReport:
    machine: Machine
    problems: list[ProblemResult] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)   # candidate -> why
    measured_now: int = 0
    seconds: float = 0.0
    model_seconds: tuple[float, float] | None = None       # IREE's configs, the tuned ones
    reverted: bool = False  # the tuned configs did not make the model faster: not kept

    def table(self) -> str:
        lines = [self.machine.describe(),
                 f"{len(self.problems)} IREE dispatch roots; {self.measured_now} candidates "
                 f"measured now in {self.seconds:.0f} s", "",
                 "| dispatch | sites | IREE default ms | best ms | speed-up | Spearman | best "
                 "config (distribution; vector; reduction) |", "|---|---|---|---|---|---|---|"]
        for result in self.problems:
            rho = result.rank_correlation
            default = result.measured.get(result.default)
            best = result.measured.get(result.best)
            lines.append(
                f"| {result.problem.split('@')[1]} | {len(result.sites)} | "
                f"{_ms(default)} | {_ms(best)} | {result.speedup:.2f}x | "
                f"{'-' if rho is None else f'{rho:.2f}'} | "
                f"{'(default)' if result.best == result.default else result.best[5:]} |")
        correlations = [r.rank_correlation for r in self.problems
                        if r.rank_correlation is not None]
        if correlations:
            median = sorted(correlations)[len(correlations) // 2]
            lines += ["", f"median Spearman (predicted vs measured, dispatches with >= 3 "
                          f"candidates): {median:.2f} over {len(correlations)}"]
        if self.problems:
            total_default = sum(r.measured.get(r.default, 0) * len(r.sites)
                                for r in self.problems)
            total_best = sum(r.measured.get(r.best, 0) * len(r.sites) for r in self.problems)
            if total_best:
                lines.append(f"sum over dispatches (times their sites): IREE default "
                             f"{total_default * 1e3:.2f} ms, tuned {total_best * 1e3:.2f} ms "
                             f"({total_default / total_best:.2f}x)")
        if self.model_seconds:
            default, tuned = self.model_seconds
            lines.append(f"whole model: IREE's configs {default * 1e3:.2f} ms, tuned "
                         f"{tuned * 1e3:.2f} ms ({default / tuned:.2f}x)" +
                         (" -- not faster: IREE's configs kept" if self.reverted else ""))
        if self.failed:
            lines.append(f"{len(self.failed)} candidates did not compile or run "
                         f"(first: {next(iter(self.failed.values()))})")
        return "\n".join(lines)


def _ms(seconds) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:.3f}"


def iree_flags(extra=()) -> list[str]:
    """iree-compile's flags for this CPU, as the iree-cpu backend gives them."""
    from ..backends.iree import cpu_flag
    return [cpu_flag(), *extra]


def model_dispatches(model, example_args=(), iree_flags_extra=(), **compile_options
                     ) -> list[Dispatch]:
    from .. import compiler, ir
    compiled = compiler.compile(model, example_args, backend="iree-cpu", stop_at="linalg",
                                **compile_options)
    text = ir.module_text(compiled.extra["module"])
    return dispatches(text, iree_flags(iree_flags_extra))


def tune(model, example_args=(), *, db, jobs: int = 1, ray_address: str | None = None,
         measure_missing: bool = True, validate: bool = True, progress=None,
         iree_flags_extra=(), **compile_options) -> IreeTuneReport:
    """Measures the candidate configs of every dispatch root of `model` that
    `db` does not hold yet, records the fastest per root, and reports. With
    `validate` (and example inputs), the whole model runs with IREE's
    configs and with the tuned ones; tuned ones that do not make it faster
    by MODEL_MARGIN are not kept."""
    from ..settings import thread_count
    started = time.perf_counter()
    database = db if isinstance(db, TuningDB) else TuningDB(db)
    host = machine()
    unit = VectorUnit.for_level(host.level)
    flags = iree_flags(iree_flags_extra)
    found = model_dispatches(model, example_args, iree_flags_extra, **compile_options)
    if not found:
        raise InputError("nothing to tune: iree-compile gives this model no dispatch with a "
                         "tunable root (a contraction or convolution)")
    roots: dict[str, Dispatch] = {}
    sites: dict[str, list[str]] = {}
    for dispatch in found:
        roots.setdefault(dispatch.problem, dispatch)
        sites.setdefault(dispatch.problem, []).append(dispatch.name)
    threads = 1 if ray_address else thread_count() if jobs <= 1 \
        else max(1, host.cores // jobs)
    predicted: dict[str, dict[str, float]] = {}
    for problem, dispatch in roots.items():
        cost = analyze_text(dispatch.function_text())[0]
        options = candidates(dispatch, cost, unit)
        scores = {c.key(): predict_seconds(cost, c, unit, host, threads,
                                           dispatch.innermost_strides) for c in options}
        kept = sorted(scores, key=scores.get)[:MEASURED_PER_DISPATCH]
        predicted[problem] = {k: scores[k] for k in kept}
        predicted[problem][dispatch.default.key()] = predict_seconds(
            cost, dispatch.default, unit, host, threads, dispatch.innermost_strides)
        database.remember_root(problem, dispatch.matcher_body, dispatch.operand_types,
                               dispatch.translation_info)
    todo = []
    for problem in roots if measure_missing else []:
        already = database.measured(problem, threads)
        todo += [(problem, key) for key in sorted(predicted[problem], key=predicted[problem].get)
                 if key not in already]
    report = IreeTuneReport(host)
    jobs_list = [(problem, key, roots[problem].with_config(LoweringConfig.from_key(key)),
                  flags, threads) for problem, key in todo]
    for done, (problem, key, seconds, error) in enumerate(
            _run(jobs_list, jobs, ray_address), start=1):
        if error:
            report.failed[key] = error
        else:
            database.record(problem, key, seconds, predicted[problem][key], threads)
        if progress:
            progress(done, len(todo), time.perf_counter() - started, problem.split("@")[1],
                     key[5:], seconds if not error else float("nan"))
    for problem, dispatch in roots.items():
        measured = {c: s for c, (s, _) in database.measured(problem, threads).items()
                    if c in predicted[problem]}
        default = dispatch.default.key()
        result = ProblemResult(problem, sites[problem], default, measured, predicted[problem])
        fastest = min(measured, key=measured.get) if measured else default
        keep_default = default in measured and \
            measured[default] <= measured.get(fastest, math.inf) * NOISE_MARGIN
        result.best = default if keep_default else fastest
        if measure_missing:
            database.choose(problem, result.best, threads)
        report.problems.append(result)
    if measure_missing and validate and example_args and \
            any(r.best != r.default for r in report.problems):
        _validate_in_model(model, example_args, report, database, threads, iree_flags_extra,
                           compile_options)
    report.measured_now = len(todo)
    report.seconds = time.perf_counter() - started
    return report


def _validate_in_model(model, example_args, report: IreeTuneReport, database: TuningDB,
                       threads: int, iree_flags_extra, compile_options) -> None:
    """The whole model with IREE's configs against the tuned ones; the tuned
    ones are kept only when the model gets faster by MODEL_MARGIN."""
    from .. import compiler

    def latency(tuning_db) -> float:
        compiled = compiler.compile(model, example_args, backend="iree-cpu", cache=False,
                                    tuning_db=tuning_db, iree_flags=tuple(iree_flags_extra),
                                    **compile_options)
        return min(compiled.time(*example_args, repeat=10) for _ in range(3))
    default, tuned = latency(None), latency(database.path)
    report.model_seconds = (default, tuned)
    if tuned * MODEL_MARGIN > default:
        report.reverted = True
        for result in report.problems:
            database.choose(result.problem, result.default, threads)
            result.rejected_in_model, result.best = result.best, result.default


def _measure_task(problem: str, key: str, text: str, flags: list[str], threads: int):
    try:
        return problem, key, measure(text, flags, threads), ""
    except Exception as error:  # a candidate IREE rejects is a result, not a stop
        return problem, key, math.inf, str(error).splitlines()[0][:200]


def _run(todo: list, jobs: int, ray_address: str | None):
    if ray_address:
        from .tuner import ray_tasks
        yield from ray_tasks(_measure_task, todo, ray_address)
        return
    if jobs <= 1:
        for task in todo:
            yield _measure_task(*task)
        return
    import concurrent.futures
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:  # each task is subprocesses
        futures = [pool.submit(_measure_task, *task) for task in todo]
        for future in concurrent.futures.as_completed(futures):
            yield future.result()
