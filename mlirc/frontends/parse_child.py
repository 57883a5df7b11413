"""Parses one .mlir file in a child process, so that a parser abort or
segfault on untrusted text kills this process, not the user's.

Run by path (`python -I parse_child.py FILE`), not as `-m mlirc...`: loading
mlirc/ir.py alone skips the package's imports, which would double the cost of
every check. Exit status 0 means the parser returned (with or without
diagnostics: the caller parses again in process for the message); a signal
or any other status means it died.
"""

import importlib.util
import sys
from pathlib import Path


def _load_gateway():
    path = Path(__file__).resolve().parent.parent / "ir.py"
    spec = importlib.util.spec_from_file_location("_mlirc_ir_child", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


def main(path: str) -> int:
    ir = _load_gateway()
    text = Path(path).read_text(encoding="utf-8")
    try:
        module = ir.parse_module(text)
    except ir.MLIRError:
        return 0
    if ir.is_llvm_dialect(module):
        # Translation to LLVM IR trusts the llvm dialect's verifier, which lets
        # some mistyped ops through (a GEP on a non-pointer): build it here too.
        try:
            ir.ExecutionEngine(module, opt_level=0)
        except Exception:  # a translation error is reported by the real build
            return 0
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
