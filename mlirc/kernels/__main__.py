"""`python -m mlirc.kernels build [--folder DIR]`: builds the kernel library
for this host's level (the shared library the JIT loads, its object file),
the portable library `aot` links (x86-64: a copy per level) and the profile
timers, by default into the package's prebuilt/ folder, so that the first
compile does not wait for the C compiler; what is built already is kept.
`python -m mlirc.kernels info` prints the host's level and where the
library is."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import buildspec, library
from .buildspec import PREBUILT
from .host import host


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlirc.kernels", description=__doc__)
    parser.add_argument("command", choices=["build", "info"])
    parser.add_argument("--folder", type=Path, default=PREBUILT)
    args = parser.parse_args(argv)
    if args.command == "info":
        print(f"host: {host().describe()}")
        print(f"library: {library.build_shim()}")
        return 0
    start = time.perf_counter()
    try:
        paths = buildspec.build_all(args.folder, host().level)
    except buildspec.BuildFailed as error:
        print(f"mlirc: building the kernels failed: {error}", file=sys.stderr)
        return 1
    for path in paths:
        print(path)
    print(f"built for {host().describe()} in {time.perf_counter() - start:.0f} s",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
