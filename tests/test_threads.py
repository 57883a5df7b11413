"""Generated loops on all cores: ops the kernel library does not take are
tiled into parallel loops (passes/parallel_tiles.py) whose OpenMP runtime
calls the kernel library answers on its own pool (kernels/src/openmp.c).

The runtime's static schedule is checked on its own (every iteration run by
exactly one thread, for team sizes that do and do not divide the loop),
then whole models on `jit` and `aot` at several thread counts against
eager PyTorch, and the `aot` library's symbols: it must neither need nor
export an OpenMP runtime."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

import mlirc

SCHEDULE_PROBE = r"""
import ctypes, json, sys
from mlirc.kernels import library
lib = ctypes.CDLL(library.load()[0])
MICROTASK = ctypes.CFUNCTYPE(None, ctypes.POINTER(ctypes.c_int32),
                             ctypes.POINTER(ctypes.c_int32), ctypes.c_void_p)
i64 = ctypes.c_int64
init = lib.mlirc_omp_for_static_init_8
init.argtypes = [ctypes.c_void_p, ctypes.c_int32, ctypes.c_int32,
                 ctypes.POINTER(ctypes.c_int32), ctypes.POINTER(i64), ctypes.POINTER(i64),
                 ctypes.POINTER(i64), i64, i64]

def shares_of(trips, chunk):
    shares = []
    def body(global_tid, bound_tid, unused):
        tid = lib.mlirc_omp_global_thread_num(None)
        assert tid == global_tid[0]
        last, lower, upper, stride = ctypes.c_int32(), i64(0), i64(trips - 1), i64()
        init(None, tid, 33 if chunk else 34, ctypes.byref(last), ctypes.byref(lower),
             ctypes.byref(upper), ctypes.byref(stride), 1, chunk)
        start, end = lower.value, upper.value
        while start < trips:
            shares.append([tid, start, min(end, trips - 1), last.value])
            if not chunk:
                break
            start, end = start + stride.value, end + stride.value
    callback = MICROTASK(body)
    lib.mlirc_omp_fork_call(None, ctypes.c_int32(1), callback, ctypes.c_void_p(0))
    return shares

print(json.dumps([shares_of(trips, chunk) for trips, chunk in json.loads(sys.argv[1])]))
"""
CASES = [(1, 0), (2, 0), (7, 0), (100, 0), (100, 8), (5, 2)]  # trips, chunk (0: unchunked)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_static_schedule_runs_each_iteration_once(threads):
    env = dict(os.environ, MLIRC_NUM_THREADS=str(threads))
    ran = subprocess.run([sys.executable, "-c", SCHEDULE_PROBE, json.dumps(CASES)],
                         env=env, capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr[-2000:]
    results = json.loads(ran.stdout.strip().splitlines()[-1])
    for (trips, chunk), shares in zip(CASES, results):
        covered = sorted(i for _, start, end, _ in shares for i in range(start, end + 1))
        assert covered == list(range(trips)), (trips, chunk, shares)
        # shares: TASKS_PER_THREAD per thread, taken one at a time (kernels.h)
        assert {tid for tid, *_ in shares} <= set(range(threads * 4 if threads > 1 else 1))
        if not chunk:
            assert sum(last for *_, last in shares) == 1  # one thread has the last iteration


class Mixed(torch.nn.Module):
    """Ops no kernel takes: depthwise convolution, elementwise chains,
    softmax, layer norm, average pooling, a transpose and a concat."""

    def __init__(self):
        super().__init__()
        self.depthwise = torch.nn.Conv2d(48, 48, 3, padding=1, groups=48)
        self.norm = torch.nn.LayerNorm(20)

    def forward(self, x):
        y = torch.nn.functional.hardswish(self.depthwise(x))
        y = y * torch.sigmoid(y.mean(dim=(2, 3), keepdim=True))
        z = torch.softmax(self.norm(y), dim=-1)
        pooled = torch.nn.functional.avg_pool2d(z, 2)
        return torch.cat([pooled, pooled.transpose(2, 3)], dim=1)


def _mixed():
    torch.manual_seed(0)
    model = Mixed().eval()
    x = torch.randn(1, 48, 20, 20)
    with torch.no_grad():
        return model, x, model(x).numpy()


RUN_SAVED = (
    "import sys, numpy as np, mlirc\n"
    "m = mlirc.load(sys.argv[1])\n"
    "np.save(sys.argv[2], m(np.load(sys.argv[3])))\n")


@pytest.mark.e2e
@pytest.mark.parametrize("backend", ["jit", "aot"])
def test_parallel_loops_match_eager_at_any_thread_count(backend, tmp_path):
    model, x, expected = _mixed()
    compiled = mlirc.compile(model, (x,), backend=backend, cache=False)
    assert "omp.parallel" in compiled.ir["loops"]
    np.testing.assert_allclose(compiled(x).numpy(), expected, rtol=1e-4, atol=1e-5)
    saved = compiled.save(tmp_path / "model")
    np.save(tmp_path / "x.npy", x.numpy())
    for threads in ["1", "3"]:
        env = dict(os.environ, MLIRC_NUM_THREADS=threads)
        ran = subprocess.run([sys.executable, "-c", RUN_SAVED, str(saved),
                              str(tmp_path / "y.npy"), str(tmp_path / "x.npy")],
                             env=env, capture_output=True, text=True)
        assert ran.returncode == 0, ran.stderr[-2000:]
        np.testing.assert_allclose(np.load(tmp_path / "y.npy"), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.e2e
@pytest.mark.skipif(not shutil.which("nm"), reason="needs nm (binutils)")
def test_an_aot_library_brings_its_own_threads(tmp_path):
    model, x, expected = _mixed()
    compiled = mlirc.compile(model, (x,), backend="aot", cache=False)
    library = next(compiled.save(tmp_path / "model").glob("lib*.so"))
    symbols = subprocess.run(["nm", "-D", str(library)], capture_output=True,
                             text=True).stdout
    assert "__kmpc" not in symbols  # neither needs nor shadows an OpenMP runtime
    assert " T mlirc_omp_fork_call" in symbols


@pytest.mark.e2e
def test_small_models_stay_serial():
    model = torch.nn.Sequential(torch.nn.ReLU()).eval()
    compiled = mlirc.compile(model, (torch.randn(4, 8),), backend="jit", cache=False)
    assert "omp.parallel" not in compiled.ir["loops"]
