"""mlirc command line: compile | run | verify | explore | check | stages.

Every user error prints one line and exits with status 2.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

from . import compiler
from .errors import MlircError, InputError
from .report import format_counts, table


def _load_source(path: str):
    """(source for mlirc.compile, example inputs or None, reference model or None)."""
    if path.endswith(".py"):
        from .frontends.python_file import load_model_file
        model, inputs = load_model_file(path)
        return model, inputs, model
    if path.endswith(".mlir"):
        if not Path(path).exists():
            raise InputError(f"no such file: {path}")
        return path, None, None
    raise InputError(f"{path}: expected a .py model file or a .mlir module")


def _compile(args, stop_at=None, on_stage=None):
    source, inputs, reference = _load_source(args.source)
    compiled = compiler.compile(
        source, inputs or (), backend=args.backend, stop_at=stop_at,
        start_from=getattr(args, "start_from", None),
        dump_dir=getattr(args, "dump_dir", None), on_stage=on_stage)
    return compiled, inputs, reference


def _random_inputs(signature) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    arrays = []
    for spec in signature.inputs:
        if spec.dtype == "bool":
            arrays.append(rng.random(spec.shape) > 0.5)
        elif spec.numpy_dtype.kind in "iu":
            arrays.append(rng.integers(0, 10, spec.shape).astype(spec.numpy_dtype))
        else:
            arrays.append(rng.standard_normal(spec.shape).astype(spec.numpy_dtype))
    return arrays


def cmd_compile(args) -> int:
    compiled, _, _ = _compile(args, stop_at=args.to)
    final = compiled.stages[-1]
    if args.output:
        Path(args.output).write_text(final.text)
    print(f"compiled {args.source} to stage '{final.name}' in "
          f"{compiled.compile_seconds:.2f}s: {compiled.signature.describe()}")
    if args.output:
        print(f"wrote {args.output}")
    return 0


def cmd_run(args) -> int:
    compiled, inputs, _ = _compile(args)
    arrays = list(inputs) if inputs is not None else _random_inputs(compiled.signature)
    outputs = compiled(*arrays)
    flat = outputs if isinstance(outputs, (tuple, list)) else [outputs]
    from torch.utils import _pytree as pytree
    for index, value in enumerate(pytree.tree_leaves(flat)):
        value = np.asarray(value)
        print(f"result[{index}]: {'x'.join(map(str, value.shape))}{'x' if value.shape else ''}"
              f"{value.dtype}")
        print(np.array2string(value, threshold=64, precision=6))
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
    if args.dump_dir:
        print(f"wrote {len(rows)} files to {args.dump_dir}/")
    if args.passes:
        for result in compiled.stages:
            for name, seconds in result.pass_seconds:
                print(f"  {result.name:<14} {name:<48} {seconds * 1000:8.1f} ms")
    return 0


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


def cmd_stages(args) -> int:
    from .stages import default_pipeline
    for index, stage in enumerate(default_pipeline(args.backend)):
        print(f"{index:02d} {stage.name}: {stage.description}")
        for pass_ in stage.passes:
            print(f"     {pass_.text}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from .backends import backend_names
    parser = argparse.ArgumentParser(prog="mlirc", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    def source_command(name, handler, help_text):
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("source", help="a .py model file (model(), example_inputs()) or a .mlir file")
        sub.add_argument("--backend", default="jit", choices=backend_names())
        sub.add_argument("--from", dest="start_from", metavar="STAGE",
                         help="the stage a .mlir input is at (default: the first)")
        sub.set_defaults(handler=handler)
        return sub

    sub = source_command("compile", cmd_compile, "compile a model, optionally to a stage")
    sub.add_argument("--to", metavar="STAGE", help="stop after this stage")
    sub.add_argument("--dump-dir", help="write every stage's IR here")
    sub.add_argument("-o", "--output", help="write the last stage's IR to this file")
    source_command("run", cmd_run, "compile and run on the example (or random) inputs")
    sub = source_command("verify", cmd_verify, "compare with eager PyTorch")
    sub.add_argument("--rtol", type=float, default=1e-4)
    sub.add_argument("--atol", type=float, default=1e-5)
    sub = source_command("explore", cmd_explore, "show every stage: time and ops per dialect")
    sub.add_argument("--dump-dir", help="write NN-stage.mlir files here")
    sub.add_argument("--to", metavar="STAGE", help="stop after this stage")
    sub.add_argument("--passes", action="store_true", help="also print each pass's time")
    source_command("check", cmd_check, "list ops that cannot be lowered")
    sub = commands.add_parser("stages", help="list the stages and their passes")
    sub.add_argument("--backend", default="jit", choices=backend_names())
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
