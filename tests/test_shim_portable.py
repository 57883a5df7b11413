"""The BLAS shim's paths without AVX-512, which the model tests never take
on this project's machines: tests/c/shim_check.c (every convolution and
pooling path and the packed-weights GEMM against naive loops) built for
x86-64-v3 (AVX2 and FMA, no AVX-512) and for the host, and run. The 8-wide
Winograd path wrote garbage rows without AVX-512 until this check existed."""

import os
import platform
import shutil
import subprocess
from pathlib import Path

import pytest

from mlirc.kernels import library

CHECK = Path(__file__).parent / "c" / "shim_check.c"


def _host_has(*flags: str) -> bool:
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    line = next((l for l in cpuinfo.splitlines() if l.startswith("flags")), "")
    return all(flag in line.split() for flag in flags)


@pytest.mark.skipif(platform.machine() != "x86_64", reason="x86-64 instruction sets")
@pytest.mark.parametrize("march", ["native", "x86-64-v3"])
def test_shim_paths_match_naive_loops(march, tmp_path):
    compiler = os.environ.get("CC", "cc")
    if not shutil.which(compiler):
        pytest.skip(f"no C compiler ('{compiler}')")
    if march == "x86-64-v3" and not _host_has("avx2", "fma"):
        pytest.skip("the host cannot run AVX2 code")
    binary = tmp_path / "shim_check"
    build = subprocess.run([compiler, "-O2", f"-march={march}", f"-I{library.HEADER.parent}",
                            "-o", str(binary), str(CHECK),
                            "-ldl", "-lpthread", "-lm"], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-2000:]
    run = subprocess.run([str(binary), str(library.blas_library())], capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
