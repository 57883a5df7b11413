"""A fuzz worker: reads one JSON case per line on stdin, runs it, answers one
JSON line `{"outcome": ..., "detail": ...}`. Native output (MLIR diagnostics,
LLVM errors) goes to stderr; answers use a private copy of stdout."""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path


def main(seeds: str) -> int:
    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # anything native code prints lands in the log, not in answers
    import warnings
    warnings.filterwarnings("ignore")
    from . import targets
    from mlirc.errors import MlircError
    context = targets.Context(Path(seeds))
    for line in sys.stdin:
        case = json.loads(line)
        try:
            outcome, detail = targets.EXECUTORS[case["target"]](context, case)
        except MlircError as error:
            outcome, detail = "typed", f"{type(error).__name__}: {str(error)[:300]}"
        except Exception as error:  # what a user would see as a traceback
            where = traceback.extract_tb(error.__traceback__)[-1]
            outcome = "untyped"
            detail = (f"{type(error).__name__}: {str(error)[:300]} "
                      f"({Path(where.filename).name}:{where.lineno})")
        answers.write(json.dumps({"outcome": outcome, "detail": detail}) + "\n")
        answers.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
