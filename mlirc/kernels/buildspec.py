"""What the kernel library is built from and how, in plain Python (the
standard library only, no mlirc import): setup.py loads this file by path to
build the library into the wheel, where torch and mlirc cannot be imported
yet; build.py, host.py and library.py use the same definitions at run time.

Levels (host.py explains them): the GCC `-march` each builds for, and what
a CPU needs of /proc/cpuinfo's flags to run it.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import hashlib
import os
import platform
import re
import signal
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

LEVELS = ("generic", "avx2", "avx512")
MARCH = {"avx512": "x86-64-v4", "avx2": "x86-64-v3", "generic": "x86-64"}
NEEDS = {"avx512": {"avx512f", "avx512bw", "avx512dq", "avx512vl", "avx2", "fma", "bmi2"},
         "avx2": {"avx2", "fma", "bmi2"}, "generic": set()}

HERE = Path(__file__).resolve().parent
PREBUILT = HERE / "prebuilt"
SOURCES = HERE / "src"
HEADER = HERE / "include" / "mlirc_kernels.h"
# One translation unit of all the library's files (src/mlirc_kernels.c says why).
SHIM_SOURCE = SOURCES / "mlirc_kernels.c"
UNITS = tuple(SOURCES / f"{name}.c" for name in (
    "pool", "buffers", "gemm", "maxpool", "conv", "packed_conv", "winograd", "winograd4",
    "strided_conv", "openmp"))
SHIM_INCLUDES = (HEADER, SOURCES / "kernels.h", *UNITS)
PROFILE_SOURCE = SOURCES / "profile_runtime.c"
# The portable library (for `aot`): one copy of the kernels per level and
# the entry points that pick one when loaded (dispatch.c).
ENTRY_POINTS = SOURCES / "entry_points.h"
DISPATCH_SOURCE = SOURCES / "dispatch.c"
DISPATCH_FLAGS = ("-O2", "-march=x86-64", "-mtune=generic")
SHIM_NAME, PROFILE_NAME = "mlirc_kernels", "mlirc_profile"
PORTABLE_NAME = "mlirc_kernels_portable"
SHIM_LIBRARIES = ("dl", "pthread")
PROFILE_FLAGS = ("-O2",)


class BuildFailed(Exception):
    pass


def cpu_flags_and_model() -> tuple[set[str], str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set(), platform.processor() or "unknown CPU"
    flags, model = set(), "unknown CPU"
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags" and not flags:
            flags = set(value.split())
        elif key.strip() == "model name" and model == "unknown CPU":
            model = value.strip()
    return flags, model


def detected_level(flags: set[str]) -> str:
    """The highest level whose features `flags` has."""
    for level in reversed(LEVELS):
        if NEEDS[level] <= flags:
            return level
    return "generic"


def machine_level(machine: str, flags: set[str]) -> str:
    """The level of a machine of kind `machine` with /proc/cpuinfo's `flags`
    (every machine that is not x86-64 builds and runs the generic level)."""
    return detected_level(flags) if machine == "x86_64" else "generic"


def march_flags(machine: str, level: str) -> tuple[str, ...]:
    if machine != "x86_64":
        return ("-march=native",)  # aarch64 and others: the host's own
    return (f"-march={MARCH[level]}", "-mtune=generic")


def shim_flags(machine: str, level: str) -> tuple[str, ...]:
    """The register tiles are GCC vectors sized by the level's instruction
    set. No absolute paths: the flags are part of the build's name, which
    must be the same in the source tree and in an installed wheel."""
    return ("-O3", *march_flags(machine, level))


def entry_points() -> tuple[str, ...]:
    """The public entry points, as entry_points.h lists them."""
    return tuple(re.findall(r"X\((\w+)\)", ENTRY_POINTS.read_text()))


def level_copy_flags(level: str) -> tuple[str, ...]:
    """One level's copy of the kernels in the portable library: built for
    the level, every symbol hidden, the entry points renamed <name>_<level>."""
    return (*shim_flags("x86_64", level), "-fvisibility=hidden",
            *(f"-D{name}={name}_{level}" for name in entry_points()))


def fingerprint(source: Path, includes: tuple[Path, ...], flags: tuple[str, ...]) -> str:
    """A hash of what a build depends on: the sources' text and the flags."""
    text = b"".join(path.read_bytes() for path in (source, *includes))
    return hashlib.sha256(text + " ".join(flags).encode()).hexdigest()


def object_name(name: str, source: Path, includes: tuple[Path, ...],
                flags: tuple[str, ...]) -> str:
    return f"{name}_{fingerprint(source, includes, flags)[:16]}.o"


def compile_object(source: Path, target: Path, flags: tuple[str, ...],
                   announce=None) -> Path:
    """`source` compiled to the position-independent object `target`, under
    a lock (concurrent builders build once), through a temporary file that
    is renamed into place only when the compiler succeeded."""
    compiler = os.environ.get("CC", "cc")
    return _locked_build(target, [compiler, *flags, "-fPIC", "-c", "-o", "{out}", str(source)],
                         announce)


def link_relocatable(objects: list[Path], target: Path) -> Path:
    """Object files joined into one (`ld -r`), for an `aot` link to take."""
    compiler = os.environ.get("CC", "cc")
    return _locked_build(target, [compiler, "-r", "-nostdlib", "-o", "{out}",
                                  *map(str, objects)], None)


def portable_parts() -> list[tuple[str, Path, tuple[Path, ...], tuple[str, ...]]]:
    """(name, source, includes, flags) of each object the portable library
    joins: the dispatching entry points and a copy of the kernels per level."""
    parts = [(f"{SHIM_NAME}_dispatch", DISPATCH_SOURCE, (HEADER, ENTRY_POINTS),
              DISPATCH_FLAGS)]
    for level in LEVELS:
        parts.append((f"{SHIM_NAME}_{level}", SHIM_SOURCE, (*SHIM_INCLUDES, ENTRY_POINTS),
                      level_copy_flags(level)))
    return parts


def portable_object_name() -> str:
    names = "".join(object_name(*part) for part in portable_parts())
    return f"{PORTABLE_NAME}_{hashlib.sha256(names.encode()).hexdigest()[:16]}.o"


def build_portable(folder: Path, announce=None) -> Path:
    """The portable library as one object in `folder` (x86-64 only), its
    parts compiled side by side."""
    target = folder / portable_object_name()
    if target.exists():
        return target
    if announce:
        announce()
    return link_relocatable(_compile_parts(portable_parts(), folder), target)


def link_shared(object_path: Path, target: Path, libraries: tuple[str, ...] = ()) -> Path:
    compiler = os.environ.get("CC", "cc")
    return _locked_build(target, [compiler, "-shared", "-o", "{out}", str(object_path),
                                  *(f"-l{lib}" for lib in libraries)], None)


def _locked_build(target: Path, command: list[str], announce) -> Path:
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target.with_name(f"{target.name}.lock")):
        if target.exists():  # another process built it while we waited
            return target
        for stale in target.parent.glob(f"{target.name}.*.tmp"):  # builders that died
            stale.unlink(missing_ok=True)
        partial = target.with_name(f"{target.name}.{os.getpid()}.tmp")
        if announce:
            announce()
        try:
            result = subprocess.run([part.replace("{out}", str(partial)) for part in command],
                                    capture_output=True, text=True, preexec_fn=_die_with_parent)
        except OSError as error:
            raise BuildFailed(f"{command[0]}: {error.strerror}") from None
        if result.returncode != 0:
            partial.unlink(missing_ok=True)
            raise BuildFailed(result.stderr.strip()[:300])
        os.replace(partial, target)
    return target


@contextlib.contextmanager
def _locked(path: Path):
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _die_with_parent() -> None:
    """In the compiler's process: SIGKILL when the builder dies (Linux), so
    a killed build leaves no compiler running."""
    try:
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def build_all(folder: Path, level: str | None = None) -> list[Path]:
    """The kernel library (object and shared library) for this machine's
    level, the profile timers and, on x86-64, the portable library, into
    `folder` (setup.py's and make's step), compiled side by side."""
    machine = platform.machine()
    if level is None:
        level = machine_level(machine, cpu_flags_and_model()[0])
    parts = [(SHIM_NAME, SHIM_SOURCE, SHIM_INCLUDES, shim_flags(machine, level)),
             (PROFILE_NAME, PROFILE_SOURCE, (), PROFILE_FLAGS)]
    if machine == "x86_64":
        parts += portable_parts()
    objects = _compile_parts(parts, folder)
    shim, profile = objects[:2]
    built = [shim, link_shared(shim, shim.with_name(f"lib{shim.stem}.so"), SHIM_LIBRARIES),
             link_shared(profile, profile.with_name(f"lib{profile.stem}.so"))]
    if machine == "x86_64":
        built.append(link_relocatable(objects[2:], folder / portable_object_name()))
    return built


def _compile_parts(parts: list, folder: Path) -> list[Path]:
    with ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as pool:
        return list(pool.map(
            lambda part: compile_object(part[1], folder / object_name(*part), part[3]), parts))
