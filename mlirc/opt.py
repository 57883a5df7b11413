"""mlirc-opt: runs pipeline text on a .mlir file with mlirc's bindings,
Python passes included. The repro command of every pipeline failure uses it.

    mlirc-opt --pass-pipeline='builtin.module(cse,mlirc-emit-c-interface)' in.mlir
    mlirc-opt --stage bufferized in.mlir     # one of the default pipeline's stages
"""

from __future__ import annotations

import argparse
import sys

from . import ir, passes
from .errors import MlircError, PipelineError
from .frontends.mlir_text import parse_source
from .runner import run_stage
from .stages import Stage, default_pipeline


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mlirc-opt", description=__doc__.splitlines()[0])
    parser.add_argument("input", help=".mlir file")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--pass-pipeline", help="MLIR pipeline text; Python passes by name")
    what.add_argument("--stage", help="run this stage of the default (jit) pipeline")
    parser.add_argument("-o", "--output", help="write the result here (default: stdout)")
    args = parser.parse_args(argv)
    try:
        module, _ = parse_source(args.input)
        if args.stage:
            stage = default_pipeline("jit")[args.stage]
        else:
            stage = Stage("mlirc-opt", "command line", passes.parse_pipeline(args.pass_pipeline))
        text = open(args.input).read()
        run_stage(module, stage, text, dump_dir=None)
    except PipelineError as error:
        print(f"mlirc-opt: error: {error.pass_name}: {error.diagnostic} "
              f"{'at ' + error.location if error.location else ''}", file=sys.stderr)
        return 1
    except MlircError as error:
        print(f"mlirc-opt: error: {error}", file=sys.stderr)
        return 2
    text = ir.module_text(module, debug_info=False)
    if args.output:
        open(args.output, "w").write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
