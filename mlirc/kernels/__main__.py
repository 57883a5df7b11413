"""`python -m mlirc.kernels build [--folder DIR]`: builds the kernel library
(shared library and the object file `aot` links) and the profile timers for
this host, by default into the package's prebuilt/ folder, so that the first
compile does not wait for the C compiler. `python -m mlirc.kernels info`
prints the host's level and where the library is."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import library
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
    paths = [library.build_shim(args.folder), library.shim_object(args.folder),
             library.profile_library(args.folder)]
    for path in paths:
        print(path)
    print(f"built for {host().describe()} in {time.perf_counter() - start:.0f} s",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
