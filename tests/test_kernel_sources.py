"""The kernel library's sources as a C project: every src/*.c is a real
translation unit that compiles on its own against kernels.h, for AVX-512
and for AVX2; the built library exports exactly the public header's entry
points (everything else is internal)."""

import os
import re
import shutil
import subprocess

import pytest

from mlirc.kernels import buildspec, library

COMPILER = os.environ.get("CC", "cc")


def _public_functions() -> set[str]:
    text = buildspec.HEADER.read_text()
    return set(re.findall(r"^(?:void|int64_t|const char|void \*)\s*\*?\s*(\w+)\(", text, re.M))


@pytest.mark.skipif(not shutil.which(COMPILER), reason="no C compiler")
@pytest.mark.parametrize("march", ["x86-64-v4", "x86-64-v3"])
@pytest.mark.parametrize("unit", [path.name for path in buildspec.UNITS])
def test_each_unit_compiles_on_its_own(unit, march):
    result = subprocess.run([COMPILER, f"-march={march}", "-fsyntax-only", "-Wall", "-Werror",
                             "-Wno-psabi", str(buildspec.SOURCES / unit)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.skipif(not shutil.which("nm"), reason="no nm")
def test_the_library_exports_the_public_header_and_nothing_else():
    result = subprocess.run(["nm", "-D", "--defined-only", str(library.build_shim())],
                            capture_output=True, text=True, check=True)
    exported = {line.split()[-1] for line in result.stdout.splitlines() if " T " in line}
    assert exported == _public_functions()
