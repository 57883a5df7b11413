"""The kernel library's sources as a C project: every src/*.c is a real
translation unit that compiles on its own against kernels.h, for AVX-512
and for AVX2; the built library exports exactly the public header's entry
points (everything else is internal); the portable library (a copy per CPU
level behind src/dispatch.c's entry points) does too, and runs the copy of
the level it is asked for, never above the CPU's."""

import os
import platform
import re
import shutil
import subprocess
import sys

import pytest

from mlirc.kernels import build, buildspec, library

COMPILER = os.environ.get("CC", "cc")


def _public_functions() -> set[str]:
    text = buildspec.HEADER.read_text()
    return set(re.findall(r"^(?:void|int32_t|int64_t|const char|void \*)\s*\*?\s*(\w+)\(", text, re.M))


@pytest.mark.skipif(not shutil.which(COMPILER), reason="no C compiler")
@pytest.mark.parametrize("march", ["x86-64-v4", "x86-64-v3"])
@pytest.mark.parametrize("unit", [path.name for path in buildspec.UNITS])
def test_each_unit_compiles_on_its_own(unit, march):
    result = subprocess.run([COMPILER, f"-march={march}", "-fsyntax-only", "-Wall", "-Werror",
                             "-Wno-psabi", str(buildspec.SOURCES / unit)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]


def _exported_functions(shared_library) -> set[str]:
    result = subprocess.run(["nm", "-D", "--defined-only", str(shared_library)],
                            capture_output=True, text=True, check=True)
    return {line.split()[-1] for line in result.stdout.splitlines() if " T " in line}


def _portable_shared_library():
    return build.shared_library(build.portable_object(), buildspec.SHIM_LIBRARIES)


@pytest.mark.skipif(not shutil.which("nm"), reason="no nm")
def test_the_library_exports_the_public_header_and_nothing_else():
    assert _exported_functions(library.build_shim()) == _public_functions()


def test_the_portable_librarys_entry_point_list_is_the_headers():
    assert set(buildspec.entry_points()) == _public_functions()
    assert len(buildspec.entry_points()) == len(set(buildspec.entry_points()))


@pytest.mark.skipif(not shutil.which("nm") or platform.machine() != "x86_64",
                    reason="the portable library is x86-64's")
def test_the_portable_library_exports_the_public_header_and_hides_its_copies():
    assert _exported_functions(_portable_shared_library()) == _public_functions()


@pytest.mark.skipif(platform.machine() != "x86_64", reason="the portable library is x86-64's")
@pytest.mark.parametrize("level", buildspec.LEVELS)
def test_the_portable_library_runs_the_copy_of_each_level_the_cpu_has(level):
    """Each copy answers for its level when the environment asks for it;
    a level above the CPU's is not taken."""
    shared = _portable_shared_library()
    probe = ("import ctypes, sys; lib = ctypes.CDLL(sys.argv[1]); "
             "lib.mlirc_kernels_isa.restype = ctypes.c_char_p; "
             "print(lib.mlirc_kernels_isa().decode())")
    env = dict(os.environ, MLIRC_TARGET_ISA=level)
    ran = subprocess.run([sys.executable, "-c", probe, str(shared)], env=env,
                         capture_output=True, text=True, check=True).stdout.strip()
    best = buildspec.machine_level(platform.machine(), buildspec.cpu_flags_and_model()[0])
    lower = min(buildspec.LEVELS.index(level), buildspec.LEVELS.index(best))
    assert ran == buildspec.LEVELS[lower]


def test_processes_that_start_at_once_build_once(tmp_path):
    """Concurrent first uses wait for one build (a file lock) instead of each
    running the C compiler."""
    import subprocess
    import sys
    counter, target = tmp_path / "builds", tmp_path / "lib" / "library.so"
    command = ["sh", "-c", f"echo built >> {counter}; sleep 1; echo done > {{out}}"]
    script = ("import sys; from pathlib import Path; from mlirc.kernels import buildspec; "
              f"buildspec._locked_build(Path(sys.argv[1]), {command!r}, None)")
    processes = [subprocess.Popen([sys.executable, "-c", script, str(target)])
                 for _ in range(3)]
    assert all(p.wait(timeout=60) == 0 for p in processes)
    assert counter.read_text().splitlines() == ["built"]
    assert target.read_text() == "done\n"
    assert not list(target.parent.glob("*.tmp"))
