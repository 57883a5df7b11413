"""The iree-cuda backend on a real GPU, for machines CI never has.

    python benchmarks/iree_cuda_check.py prepare DIR   # here: compile, save inputs and eager's outputs
    python3 iree_cuda_check.py run DIR                  # on the GPU machine: run, compare, time

`prepare` needs mlirc (and compiles for sm_80, which newer GPUs run); `run`
needs only numpy and iree-base-runtime (the GPU machine has neither torch-mlir
nor the IREE compiler). It loads each module the way mlirc's IREE backend
does (backends/iree.py), compares with eager PyTorch's outputs (rtol 1e-4,
atol 1e-5) and prints the median latency of 20 calls; exit status 1 on any
mismatch. The 1024^3 matmul passes also when it is within 1e-5 of the
largest value of the float64 product: its 1024-term sums run in another
order than eager's, and the element-wise tolerance fails near zero.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

MODELS = ["mlp", "cnn", "transformer", "matmul"]
RTOL, ATOL = 1e-4, 1e-5


def prepare(folder: Path) -> None:
    root = Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(root))
    import numpy as np
    import torch
    import mlirc
    from mlirc.frontends.python_file import load_model_file
    folder.mkdir(parents=True, exist_ok=True)
    for name in MODELS:
        model, inputs = load_model_file(root / "examples" / f"{name}.py")
        compiled = mlirc.compile(model, inputs, backend="iree-cuda", cache=False)
        with torch.no_grad():
            expected = model(*inputs)
        (folder / f"{name}.vmfb").write_bytes(compiled.executable.vmfb)
        np.savez(folder / f"{name}.inputs.npz", *[t.numpy() for t in inputs])
        np.savez(folder / f"{name}.expected.npz", expected.numpy())
        print(f"{name}: {len(compiled.executable.vmfb)} bytes")


def run(folder: Path) -> int:
    import numpy as np
    import iree.runtime as runtime
    failures, rows = 0, []
    for name in MODELS:
        config = runtime.Config("cuda")
        context = runtime.SystemContext(config=config)
        module = runtime.VmModule.copy_buffer(context.instance,
                                              (folder / f"{name}.vmfb").read_bytes())
        context.add_vm_module(module)
        function = context.modules[module.name]["main"]
        inputs = list(np.load(folder / f"{name}.inputs.npz").values())
        expected = list(np.load(folder / f"{name}.expected.npz").values())[0]
        result = function(*inputs)
        result = result[0] if isinstance(result, (tuple, list)) else result
        got = np.asarray(result.to_host()).reshape(expected.shape)
        error = float(np.max(np.abs(got - expected) / (ATOL + RTOL * np.abs(expected))))
        ok = error <= 1
        if name == "matmul":
            # a 1024-term sum: against the float64 product, is the GPU as
            # close as eager PyTorch's own f32 result?
            exact = inputs[0].astype(np.float64) @ inputs[1].astype(np.float64)
            gpu_off = float(np.max(np.abs(got - exact)))
            eager_off = float(np.max(np.abs(expected - exact)))
            print(f"matmul: max |gpu - f64| {gpu_off:.2e}, max |eager - f64| {eager_off:.2e}, "
                  f"max |f64| {float(np.max(np.abs(exact))):.1f}")
            # f32 sums in another order: within 1e-5 of the largest value
            # (about 80 units in its last place) is f32 arithmetic, not TF32
            # or a wrong result (TF32 would be off by about 1e-3 of it)
            ok = ok or gpu_off <= 1e-5 * float(np.max(np.abs(exact)))
        failures += not ok
        samples = []
        for _ in range(20):
            started = time.perf_counter()
            out = function(*inputs)
            (out[0] if isinstance(out, (tuple, list)) else out).to_host()
            samples.append(time.perf_counter() - started)
        rows.append({"model": name, "ok": ok, "error_vs_tolerance": round(error, 3),
                     "median_ms": round(statistics.median(samples) * 1000, 3)})
        print(json.dumps(rows[-1]), flush=True)
    print("PASS" if not failures else f"FAIL: {failures} model(s) differ from eager")
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("prepare", "run"):
        raise SystemExit(__doc__)
    if sys.argv[1] == "prepare":
        prepare(Path(sys.argv[2]))
        sys.exit(0)
    sys.exit(run(Path(sys.argv[2])))
