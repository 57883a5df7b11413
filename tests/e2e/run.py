"""Runs the e2e suite outside pytest and prints one line per case and a count.

    python -m tests.e2e.run [--backend jit] [-k substring]
"""

from __future__ import annotations

import argparse
import sys
import traceback
import warnings

from .registry import load_all_cases
from .xfail import expected_failure


def run_case(case, backend: str):
    """Returns the VerifyReport of one case (raises on compile/run errors)."""
    import mlirc
    module, inputs = case.make_module(), case.make_inputs()
    compiled = mlirc.compile(module, inputs, backend=backend)
    return compiled.verify(*inputs, rtol=case.rtol, atol=case.atol)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", default="jit")
    parser.add_argument("-k", default="")
    parser.add_argument("--traceback", action="store_true")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    cases = [c for n, c in load_all_cases().items() if args.k in n]
    passed = 0
    for case in cases:
        try:
            report = run_case(case, args.backend)
            status = "PASS" if report.passed else f"MISMATCH max_abs={report.max_abs_error:.3g}"
        except Exception as error:
            status = f"ERROR {type(error).__name__}: {str(error).splitlines()[0][:160]}"
            if args.traceback:
                traceback.print_exc()
        passed += status == "PASS"
        reason = expected_failure(args.backend, case.name)
        print(f"{case.name:<34} {status}{'  (xfail: ' + reason + ')' if reason else ''}",
              flush=True)
    print(f"{args.backend}: {passed} of {len(cases)} cases pass")
    return 0


if __name__ == "__main__":
    sys.exit(main())
