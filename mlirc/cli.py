"""mlirc command line: compile | run | verify | explore | check | export | bench | profile | stages.

Every user error prints one line and exits with status 2.
"""

from __future__ import annotations

import argparse
import re
import sys
import warnings
from collections import Counter
from pathlib import Path

from . import compiler
from .frontends import mlir_text
from .errors import BackendError, InputError, MlircError
from .report import format_counts, table


def _load_source(path: str):
    """(source for mlirc.compile, example inputs or None, reference model or None)."""
    if path.endswith(".py"):
        from .frontends.python_file import load_model_file
        model, inputs = load_model_file(path)
        return model, inputs, model
    if path.endswith((".mlir", ".onnx")):
        if not Path(path).exists():
            raise InputError(f"no such file: {path}")
        return path, None, None
    raise InputError(f"{path}: expected a .py model file, a .onnx model or a .mlir module")


def _is_artifact(path: str) -> bool:
    return Path(path).is_dir() and (Path(path) / "manifest.json").exists()


def _parse_input_shapes(texts: list[str] | None) -> dict | None:
    """['x=1x3x224x224'] -> {'x': (1, 3, 224, 224)}."""
    if not texts:
        return None
    shapes = {}
    for text in texts:
        name, equals, dims = text.rpartition("=")
        if not equals or not name or not all(d.isdigit() for d in dims.split("x")):
            raise InputError(f"--input-shape '{text}': expected NAME=1x3x224x224")
        shapes[name] = tuple(int(d) for d in dims.split("x"))
    return shapes


def _parse_dynamic(texts: list[str] | None) -> dict | None:
    """['x:0=batch', '0:1=seq:2:128'] -> {'x': {0: 'batch'}, 0: {1: ('seq', 2, 128)}}."""
    if not texts:
        return None
    dynamic: dict = {}
    for text in texts:
        match = re.fullmatch(r"(\w+):(-?\d+)=([A-Za-z_]\w*)(?::(\d+):(\d+))?", text)
        if not match:
            raise InputError(f"--dynamic '{text}': expected INPUT:AXIS=NAME or "
                             "INPUT:AXIS=NAME:MIN:MAX (INPUT a name or a position)")
        key, axis, name, low, high = match.groups()
        key = int(key) if key.isdigit() else key
        dynamic.setdefault(key, {})[int(axis)] = (name, int(low), int(high)) if low else name
    return dynamic


def _compile(args, stop_at=None, on_stage=None, **options):
    source, inputs, reference = _load_source(args.source)
    use_cache = False if getattr(args, "no_cache", False) else None
    compiled = compiler.compile(
        source, inputs or (), backend=args.backend, stop_at=stop_at,
        start_from=getattr(args, "start_from", None),
        dump_dir=getattr(args, "dump_dir", None), on_stage=on_stage, cache=use_cache,
        input_shapes=_parse_input_shapes(getattr(args, "input_shape", None)),
        dynamic_shapes=_parse_dynamic(getattr(args, "dynamic", None)),
        blas=not getattr(args, "no_blas", False), opt_level=getattr(args, "opt_level", 3),
        vectorize=getattr(args, "vectorize", False),
        kernels=getattr(args, "kernels", None), tuning_db=getattr(args, "tuning_db", None),
        target_cpu=getattr(args, "target_cpu", None), **options)
    return compiled, inputs, reference


def cmd_compile(args) -> int:
    compiled, _, _ = _compile(args, stop_at=args.to)
    final = compiled.stages[-1]
    if args.output:  # a restart point: weights in full
        Path(args.output).write_text(mlir_text.restart_point(compiled.full_text(final.name)))
    print(f"compiled {args.source} to stage '{final.name}' in "
          f"{compiled.compile_seconds:.2f}s: {compiled.signature.describe()}")
    if args.output:
        print(f"wrote {args.output}")
    return 0


def cmd_run(args) -> int:
    from .runtime.compiled_model import load as load_artifact
    from .runtime import cli_io
    from .runtime.inputs import flatten_arguments
    if _is_artifact(args.source):
        compiled, inputs = load_artifact(args.source), None
    else:
        compiled, inputs, _ = _compile(args)
    if args.input:  # one flat tensor per --input, in signature order
        arrays = [cli_io.parse_input(text, i + 1) for i, text in enumerate(args.input)]
        flat, _ = flatten_arguments(compiled.signature, tuple(arrays), flat=True)
    elif inputs is not None:
        flat, _ = flatten_arguments(compiled.signature, tuple(inputs))
    else:
        raise InputError(f"give --input for each of the {len(compiled.signature.inputs)} "
                         f"inputs: {compiled.signature.describe().split(' -> ')[0]}")
    outputs = compiled.run_flat(flat)
    updates = compiled.signature.input_updates  # the model's in-place updates come first
    print("EXEC @main")
    for index, value in enumerate(outputs):
        label = f"result[{index}]" + (f" (input {updates[index]} updated in place)"
                                       if index < len(updates) else "")
        if args.output and index < len(args.output):
            path = cli_io.save_output(value, args.output[index], index + 1)
            print(f"{label}: saved to {path}")
        else:
            print(f"{label}: hal.buffer_view\n{cli_io.format_result(value)}")
    return 0


def cmd_export(args) -> int:
    if args.to:
        return _export_level(args)
    name = args.name or re.sub(r"\W", "_", Path(args.source).stem)
    compiled, _, _ = _compile(args, name=name)
    path = compiled.save(args.output)
    print(f"wrote {args.backend} artifact to {path}/: "
          f"{', '.join(sorted(p.name for p in path.iterdir()))}")
    if args.backend == "aot":
        print(f"  C entry point: _mlir_ciface_{name} (see {path}/{name}.h); "
              f"build the example with: make -C {path}")
    return 0


def _export_level(args) -> int:
    """`export --to LEVEL`: the model's IR at an output level, as one .mlir file."""
    from .frontends import onnx as onnx_frontend
    from .stages import output_level_pipeline
    frontend = ("onnx" if onnx_frontend.is_onnx_source(args.source) else
                "stablehlo" if mlir_text.is_stablehlo(args.source) else "torch")
    pipeline = output_level_pipeline(args.to, frontend)
    source, inputs, _ = _load_source(args.source)
    compiled = compiler.compile(source, inputs or (), pipeline=pipeline,
                                stop_at=pipeline.names()[-1],
                                input_shapes=_parse_input_shapes(args.input_shape))
    Path(args.output).write_text(
        mlir_text.restart_point(compiled.full_text(compiled.stages[-1].name)))
    print(f"wrote {args.source} at level '{args.to}' to {args.output}")
    return 0


def cmd_verify(args) -> int:
    compiled, inputs, reference = _compile(args)
    if reference is None:
        raise InputError("verify needs a .py model file: it compares with eager PyTorch")
    report = compiled.verify(*inputs, rtol=args.rtol, atol=args.atol)
    print(report)
    return 0 if report.passed else 1


def cmd_explore(args) -> int:
    rows = []

    def on_stage(result):
        rows.append([f"{len(rows):02d}-{result.name}", f"{result.seconds * 1000:.1f}",
                     sum(result.op_counts.values()), format_counts(result.op_counts)])
    compiled, _, _ = _compile(args, stop_at=args.to, on_stage=on_stage)
    print(table(["stage", "time ms", "ops", "ops per dialect"], rows, "lrrl"))
    choices = _kernel_choices(compiled)
    if choices:
        print("\nkernels (the blas stage's calls; override with --kernels):")
        print(table(["op", "call", "kernel"], choices, "lll"))
    tiles = _parallel_tiles(compiled)
    if tiles:
        print("\nparallel tile loops (the parallel stage's mlirc.parallel_tiles; "
              "0: loop not split):")
        print(table(["tile sizes", "ops"], tiles, "lr"))
    if args.dump_dir:
        print(f"wrote {len(rows)} files to {args.dump_dir}/")
    if args.passes:
        for result in compiled.stages:
            for name, seconds in result.pass_seconds:
                print(f"  {result.name:<14} {name:<48} {seconds * 1000:8.1f} ms")
    return 0


def _parallel_tiles(compiled) -> list[list]:
    """[tile sizes, how many ops] for the ops the parallel stage split."""
    text = compiled.ir.get("parallel") if "parallel" in compiled.ir else None
    found = re.findall(r"mlirc\.parallel_tiles = array<i64: ([\d, ]+)>", text or "")
    return [[f"[{sizes}]", count] for sizes, count in Counter(found).most_common()]


def _kernel_choices(compiled) -> list[list[str]]:
    """[op, callee, kernel] for each call that carries the compiler's kernel
    choice, numbered as --kernels numbers them."""
    text = compiled.ir.get("blas") if "blas" in compiled.ir else None
    if not text:
        return []
    rows, counts = [], {"conv2d": 0, "gemm": 0}
    for callee, kernel in re.findall(r'call @(mlirc_\w+)\(.*\{mlirc.kernel = "(\w+)"[^}]*\}', text):
        kind = "conv2d" if "conv2d" in callee else "gemm"
        rows.append([f"{kind}:{counts[kind]}", callee, kernel])
        counts[kind] += 1
    return rows


def cmd_check(args) -> int:
    from .analysis.support import find_unsupported_ops
    from .errors import UnsupportedOpsError
    try:
        compiled, _, _ = _compile(args, stop_at="torch-backend")
        ops = find_unsupported_ops(compiled.ir["torch-backend"])
    except UnsupportedOpsError as error:
        ops = error.ops
    if not ops:
        print(f"{args.source}: every op lowers to linalg")
        return 0
    print(table(["unsupported op", "count", "source"],
                [[o.name, o.count, ", ".join(o.sources) or "?"] for o in ops], "lrl"))
    return 1


def cmd_bench(args) -> int:
    from . import bench
    from .frontends.python_file import load_model_file
    model, inputs = load_model_file(args.source)
    results = bench.benchmark(model, inputs, args.runners.split(","), args.rounds, args.calls)
    print(table(bench.HEADERS, bench.table(Path(args.source).stem, results), "llrrrrl"))
    if any(r.name in ("mlirc-jit", "mlirc-aot") and not r.error for r in results):
        from .kernels import library as blas
        try:
            print(f"BLAS: {blas.describe()}")
        except BackendError:  # no BLAS installed: the models ran without it
            pass
    return 0


def cmd_profile(args) -> int:
    from .profiler import profile
    source, inputs, _ = _load_source(args.source)
    report = profile(source, inputs or (), repeat=args.repeat, blas=not args.no_blas,
                     vectorize=args.vectorize,
                     input_shapes=_parse_input_shapes(args.input_shape),
                     opt_level=args.opt_level)
    print(report.table(top=args.top))
    return 0


def cmd_analyze(args) -> int:
    from .analysis.machine import machine
    from .analysis.roofline import analyze, write_json
    if args.refresh_machine:
        machine(refresh=True)
    source, inputs, _ = _load_source(args.source)
    report = analyze(source, inputs or (), measure=args.measure, repeat=args.repeat,
                     blas=not args.no_blas,
                     input_shapes=_parse_input_shapes(args.input_shape))
    print(report.table(top=args.top))
    if args.png:
        print(f"wrote {report.plot(args.png)}")
    if args.json:
        write_json(report, args.json)
        print(f"wrote {args.json}")
    return 0


def cmd_tune(args) -> int:
    from .analysis import iree_tuner, tuner
    source, inputs, _ = _load_source(args.source)
    if args.jobs < 1:
        raise InputError("--jobs must be at least 1")
    if args.backend == "iree-cpu":
        tune, what = iree_tuner.tune, "IREE tile sizes"
    elif args.backend in ("jit", "aot"):
        tune, what = tuner.tune, "kernels"
    else:
        raise InputError(f"mlirc tune measures the native backends' kernels (jit, aot) or "
                         f"iree-cpu's tile sizes, not {args.backend}")
    report = tune(source, inputs or (), db=args.db, jobs=args.jobs, ray_address=args.ray,
                  measure_missing=not args.report, progress=tuner.print_progress,
                  input_shapes=_parse_input_shapes(args.input_shape))
    print(report.table())
    print(f"\ncompile with --tuning-db {args.db} (tuning_db=) to use these {what}")
    return 0


def cmd_stages(args) -> int:
    from .stages import default_pipeline
    for index, stage in enumerate(default_pipeline(args.backend, blas=not args.no_blas,
                                                   vectorize=args.vectorize)):
        print(f"{index:02d} {stage.name}: {stage.description}")
        for pass_ in stage.passes:
            print(f"     {pass_.text}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from .backends import backend_names
    parser = argparse.ArgumentParser(prog="mlirc", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    def source_command(name, handler, help_text, backend="jit"):
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("source", help="a .py model file (model(), example_inputs()) or a .mlir file")
        sub.add_argument("--backend", default=backend, choices=backend_names())
        sub.add_argument("--from", dest="start_from", metavar="STAGE",
                         help="the stage a .mlir input is at (default: the first)")
        sub.add_argument("--no-cache", action="store_true", help="do not use the compilation cache")
        sub.add_argument("--input-shape", action="append", metavar="NAME=1x3x224x224",
                         help="ONNX: fix a dynamic input's shape")
        sub.add_argument("--dynamic", action="append", metavar="INPUT:AXIS=NAME[:MIN:MAX]",
                         help="PyTorch: a size that may change per call (x:0=batch:1:64)")
        sub.add_argument("--no-blas", action="store_true",
                         help="keep matmuls and convolutions in MLIR (no BLAS offload stage)")
        sub.add_argument("--vectorize", action="store_true",
                         help="tile and vectorize elementwise ops and row reductions with the "
                              "transform dialect (the 'vectorized' stage)")
        sub.add_argument("--opt-level", type=int, default=3, choices=[0, 1, 2, 3],
                         help="LLVM optimisation level of the native backends")
        sub.add_argument("--kernels", metavar="JSON",
                         help='per-op kernels, JSON text or file: {"conv2d:0": "im2col_blas"}')
        sub.add_argument("--tuning-db", metavar="FILE",
                         help="run the kernels `mlirc tune` measured fastest (its database)")
        sub.set_defaults(handler=handler)
        return sub

    sub = source_command("compile", cmd_compile, "compile a model, optionally to a stage")
    sub.add_argument("--to", metavar="STAGE", help="stop after this stage")
    sub.add_argument("--dump-dir", help="write every stage's IR here")
    sub.add_argument("-o", "--output", help="write the last stage's IR to this file")
    sub = source_command("run", cmd_run, "run a model, .mlir or saved artifact on inputs")
    sub.add_argument("--input", action="append", metavar="VALUE",
                     help="2x3xf32=1,2,3,4,5,6 or @x.npy, once per input (default: the "
                          "model file's example inputs)")
    sub.add_argument("--output", action="append", metavar="@FILE.npy",
                     help="save the corresponding result instead of printing it")
    sub = source_command("export", cmd_export,
                         "write a compiled artifact folder, or the IR at an output level",
                         backend="aot")
    sub.add_argument("-o", "--output", required=True,
                     help="artifact folder to write (a .mlir file with --to)")
    sub.add_argument("--to", choices=["torch", "linalg", "stablehlo", "tosa"],
                     help="write the model's IR at this level instead of compiling")
    sub.add_argument("--name", help="C entry point name for aot (default: the file's stem)")
    sub.add_argument("--target-cpu", help="aot: the CPUs the library is for: x86-64-v3 "
                                          "(default: any AVX2 machine), x86-64-v4, x86-64, host")
    sub = source_command("verify", cmd_verify, "compare with eager PyTorch")
    sub.add_argument("--rtol", type=float, default=1e-4)
    sub.add_argument("--atol", type=float, default=1e-5)
    sub = source_command("explore", cmd_explore, "show every stage: time and ops per dialect")
    sub.add_argument("--dump-dir", help="write NN-stage.mlir files here")
    sub.add_argument("--to", metavar="STAGE", help="stop after this stage")
    sub.add_argument("--passes", action="store_true", help="also print each pass's time")
    source_command("check", cmd_check, "list ops that cannot be lowered")
    sub = commands.add_parser("bench", help="time mlirc against eager, torch.compile, "
                                            "ONNX Runtime and IREE on a model file")
    sub.add_argument("source", help="a .py model file")
    sub.add_argument("--runners", default="eager,torch.compile,onnxruntime,mlirc-jit,"
                                           "mlirc-aot,mlirc-iree-cpu")
    sub.add_argument("--rounds", type=int, default=7)
    sub.add_argument("--calls", type=int, default=10)
    sub.set_defaults(handler=cmd_bench)
    sub = source_command("profile", cmd_profile,
                         "time each op of the JIT-compiled model (loop nests, BLAS calls)")
    sub.add_argument("--repeat", type=int, default=20, help="model calls to time")
    sub.add_argument("--top", type=int, default=12, help="slowest ops to list")
    sub = source_command("analyze", cmd_analyze,
                         "each linalg op's loops, work, bytes and place on this machine's "
                         "roofline")
    sub.add_argument("--measure", action="store_true",
                     help="also run the model under the profiler: time per source line")
    sub.add_argument("--repeat", type=int, default=10, help="model calls to time (--measure)")
    sub.add_argument("--top", type=int, default=20, help="heaviest ops to list")
    sub.add_argument("--png", metavar="FILE", help="write the roofline plot")
    sub.add_argument("--json", metavar="FILE", help="write every op's numbers")
    sub.add_argument("--refresh-machine", action="store_true",
                     help="measure the machine's peak and bandwidths again")
    sub = source_command("tune", cmd_tune, "measure each convolution's candidate kernels "
                                           "(--backend iree-cpu: each IREE dispatch's tile "
                                           "sizes) and keep the fastest in a tuning database")
    sub.add_argument("--db", default="mlirc-tuning.db", help="the tuning database (SQLite)")
    sub.add_argument("--jobs", type=int, default=1,
                     help="measure in this many processes (each gets cores / jobs threads)")
    sub.add_argument("--ray", metavar="ADDRESS",
                     help="measure as Ray tasks on this cluster ('local' starts one)")
    sub.add_argument("--report", action="store_true",
                     help="measure nothing: report what the database holds for the model")
    sub = commands.add_parser("stages", help="list the stages and their passes")
    sub.add_argument("--backend", default="jit", choices=backend_names())
    sub.add_argument("--no-blas", action="store_true")
    sub.add_argument("--vectorize", action="store_true")
    sub.set_defaults(handler=cmd_stages)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    warnings.filterwarnings("ignore", category=FutureWarning)
    try:
        return args.handler(args)
    except MlircError as error:
        print(f"mlirc: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
