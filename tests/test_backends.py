"""Backends beyond the JIT: IREE (cpu; GPU targets compile everywhere, run
where a device exists), AOT shared library with its C example, save/load."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import mlirc
from mlirc import artifact
from mlirc.backends.iree import TARGETS, device_available
from mlirc.frontends.python_file import load_model_file

CPU_BACKENDS = ["jit", "aot", "iree-cpu"]
GPU_BACKENDS = ["iree-cuda", "iree-rocm", "iree-vulkan"]


class Small(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(5, 3)

    def forward(self, x, y):
        return {"out": torch.tanh(self.linear(x)), "sum": (x * y).sum(dim=1)}


@pytest.fixture(scope="module")
def small():
    torch.manual_seed(0)
    return Small().eval(), (torch.randn(4, 5), torch.randn(4, 5))


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("name", ["mlp", "cnn", "transformer"])
def test_bundled_models_on_every_cpu_backend(backend, name, examples_dir):
    model, inputs = load_model_file(examples_dir / f"{name}.py")
    report = mlirc.compile(model, inputs, backend=backend).verify(*inputs)
    assert report.passed, f"\n{report}"


@pytest.mark.parametrize("backend", ["jit", "aot"])
def test_native_calls_from_several_threads_at_once(backend, examples_dir):
    """The native backends reuse their argument descriptors between calls
    (one set per thread) and the BLAS shim shares one thread pool: calls
    from several threads at once, on different inputs, each get their own
    right answer."""
    from concurrent.futures import ThreadPoolExecutor
    model, (x,) = load_model_file(examples_dir / "cnn.py")
    compiled = mlirc.compile(model, (x,), backend=backend)
    inputs = [torch.randn_like(x) for _ in range(8)]
    with torch.no_grad():
        expected = [model(i).numpy() for i in inputs]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda i: compiled(i).numpy(), inputs * 3))
    for index, result in enumerate(results):
        np.testing.assert_allclose(result, expected[index % len(inputs)], rtol=1e-4, atol=1e-4)


EXECUTABLE_FORMATS = {"iree-cuda": b"cuda-nvptx-fb", "iree-rocm": b"rocm-hsaco-fb",
                      "iree-vulkan": b"vulkan-spirv-fb"}


@pytest.mark.parametrize("backend", GPU_BACKENDS)
def test_gpu_targets_compile_without_a_device(backend, small):
    import iree.runtime
    model, inputs = small
    compiled = mlirc.compile(model, inputs, backend=backend, cache=False)
    vmfb = compiled.executable.payload()["module.vmfb"]
    assert EXECUTABLE_FORMATS[backend] in vmfb  # the device code for that target
    module = iree.runtime.VmModule.copy_buffer(iree.runtime.VmInstance(), vmfb)
    assert "main" in module.function_names


@pytest.mark.parametrize("backend", GPU_BACKENDS)
def test_gpu_targets_run_where_the_device_exists(backend, small):
    available, why = device_available(TARGETS[backend].driver)
    if not available:
        pytest.skip(f"{backend}: {why}")
    model, inputs = small
    assert mlirc.compile(model, inputs, backend=backend).verify(*inputs).passed


def test_gpu_backend_without_device_fails_clearly_at_call(small):
    available, _ = device_available("cuda")
    if available:
        pytest.skip("a CUDA device is present")
    model, inputs = small
    compiled = mlirc.compile(model, inputs, backend="iree-cuda")
    with pytest.raises(mlirc.BackendError, match="cannot run iree-cuda here"):
        compiled(*inputs)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_save_and_load_every_backend(backend, small, tmp_path):
    model, inputs = small
    compiled = mlirc.compile(model, inputs, backend=backend)
    path = compiled.save(tmp_path / f"small-{backend}")
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["backend"] == backend
    assert manifest["signature"]["inputs"] == ["4x5xf32", "4x5xf32"]
    assert {"mlirc", "torch-mlir", "iree-base-compiler"} <= set(manifest["versions"])
    assert len(manifest["source_ir_sha256"]) == 64
    loaded = mlirc.load(path)
    result = loaded(*inputs)
    expected = model(*inputs)
    torch.testing.assert_close(result["out"], expected["out"], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(result["sum"], expected["sum"], rtol=1e-4, atol=1e-5)


def test_aot_c_example_matches_eager(small, tmp_path):
    if not shutil.which("cc"):
        pytest.skip("no C compiler")
    model, inputs = small
    path = mlirc.compile(model, inputs, backend="aot", name="small").save(tmp_path / "small")
    header = (path / "small.h").read_text()
    assert "void _mlir_ciface_small(" in header
    assert "mlirc_memref_2d_f32 *in0 /* input 0 x: 4x5xf32 */" in header
    assert "mlirc_memref_1d_f32 *out1 /* output 1: 4xf32 (caller allocates) */" in header
    subprocess.run(["make", "-s", "-C", str(path)], check=True, capture_output=True)
    files = []
    for index, tensor in enumerate(inputs):
        file = tmp_path / f"input{index}.bin"
        tensor.numpy().astype("<f4").tofile(file)
        files.append(str(file))
    run = subprocess.run([str(path / "small_example"), *files], check=True,
                         capture_output=True, text=True)
    lines = run.stdout.splitlines()
    assert lines[0] == "output 0: 4x3xf32" and lines[13] == "output 1: 4xf32"
    out0 = np.array([float(v) for v in lines[1:13]]).reshape(4, 3)
    out1 = np.array([float(v) for v in lines[14:18]])
    expected = model(*inputs)
    np.testing.assert_allclose(out0, expected["out"].detach().numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out1, expected["sum"].detach().numpy(), rtol=1e-4, atol=1e-5)


def test_aot_large_weights_ship_as_data_and_match_eager(tmp_path):
    """Weights over a megabyte go into the AOT library as raw bytes (an
    assembly file's .incbin), not through LLVM: the library, loaded on its
    own from a saved folder, still computes the model."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(1024, 512), torch.nn.ReLU(),
                                torch.nn.Linear(512, 16)).eval()
    x = torch.randn(8, 1024)
    compiled = mlirc.compile(model, (x,), backend="aot", cache=False)
    library = compiled.save(tmp_path / "big")
    symbols = subprocess.run(["nm", "-S", "--defined-only", str(next(library.glob("lib*.so")))],
                             capture_output=True, text=True).stdout.split("\n")
    # the 512x1024 weight: a global read-only symbol from weights.s
    assert any(line.split()[1:3] == [f"{512 * 1024 * 4:016x}", "R"] for line in symbols
               if len(line.split()) == 4), symbols
    loaded = mlirc.load(library)
    np.testing.assert_allclose(loaded(x).numpy(), model(x).detach().numpy(),
                               rtol=1e-4, atol=1e-4)


def test_aot_entry_name_must_be_a_c_identifier(small):
    model, inputs = small
    with pytest.raises(mlirc.BackendError, match="not a valid C identifier"):
        mlirc.compile(model, inputs, backend="aot", name="my-model", cache=False)


class TestArtifactErrors:
    @pytest.fixture
    def saved(self, small, tmp_path):
        model, inputs = small
        return mlirc.compile(model, inputs, backend="jit").save(tmp_path / "model")

    def test_missing_folder(self, tmp_path):
        with pytest.raises(mlirc.ArtifactError, match="no artifact at"):
            mlirc.load(tmp_path / "nothing")

    def test_missing_manifest(self, saved):
        (saved / "manifest.json").unlink()
        with pytest.raises(mlirc.ArtifactError, match="manifest.json is missing"):
            mlirc.load(saved)

    def test_truncated_manifest(self, saved):
        text = (saved / "manifest.json").read_text()
        (saved / "manifest.json").write_text(text[: len(text) // 2])
        with pytest.raises(mlirc.ArtifactError, match="not valid JSON"):
            mlirc.load(saved)

    def test_missing_payload(self, saved):
        (saved / "llvm.mlir").unlink()
        with pytest.raises(mlirc.ArtifactError, match="payload file llvm.mlir is missing"):
            mlirc.load(saved)

    def test_truncated_payload(self, saved):
        data = (saved / "llvm.mlir").read_bytes()
        (saved / "llvm.mlir").write_bytes(data[:100])
        with pytest.raises(mlirc.ArtifactError, match="llvm.mlir is truncated"):
            mlirc.load(saved)

    def test_modified_payload(self, saved):
        data = bytearray((saved / "llvm.mlir").read_bytes())
        data[50] ^= 1
        (saved / "llvm.mlir").write_bytes(bytes(data))
        with pytest.raises(mlirc.ArtifactError, match="does not match its SHA-256"):
            mlirc.load(saved)

    def test_version_mismatch(self, saved):
        manifest = json.loads((saved / "manifest.json").read_text())
        manifest["versions"]["torch-mlir"] = "19990101"
        # as another mlirc would have written it: the manifest's own hash matches
        manifest["manifest_sha256"] = artifact.manifest_digest(manifest)
        (saved / "manifest.json").write_text(json.dumps(manifest))
        with pytest.raises(mlirc.ArtifactError, match="built with torch-mlir 19990101"):
            mlirc.load(saved)

    @pytest.mark.parametrize("edit", ["signature", "backend", "files", "format"])
    def test_an_edited_manifest_is_refused(self, saved, edit):
        manifest = json.loads((saved / "manifest.json").read_text())
        if edit == "signature":
            manifest["signature"]["inputs"][0] = "4x6xf64"
        elif edit == "backend":
            manifest["backend"] = "aot" if manifest["backend"] != "aot" else "jit"
        elif edit == "files":
            manifest["files"] = {}
        else:
            manifest["format_version"] = 1
        (saved / "manifest.json").write_text(json.dumps(manifest))
        with pytest.raises(mlirc.ArtifactError, match="manifest"):
            mlirc.load(saved)

    def test_a_manifest_that_is_not_utf8(self, saved):
        (saved / "manifest.json").write_bytes(b"\xff\xfe{}")
        with pytest.raises(mlirc.ArtifactError, match="not valid JSON"):
            mlirc.load(saved)

    def test_save_of_a_stopped_compile(self, small, tmp_path):
        model, inputs = small
        with pytest.raises(mlirc.InputError, match="nothing runnable to save"):
            mlirc.compile(model, inputs, stop_at="linalg").save(tmp_path / "x")


def test_mkl_blas_is_named_when_missing(monkeypatch, tmp_path):
    from mlirc.kernels import library as blas
    monkeypatch.setenv("MLIRC_BLAS", "mkl")
    monkeypatch.setattr("sys.prefix", str(tmp_path))
    with pytest.raises(mlirc.BackendError, match="pip install mkl"):
        blas.blas_library()


def test_mkl_blas_matches_eager_when_installed():
    # A separate process: the BLAS is chosen once per process.
    if not list((Path(sys.prefix) / "lib").glob("libmkl_rt.so*")):
        pytest.skip("MKL is optional (pip install mkl); not installed here")
    script = ("import torch, mlirc; torch.manual_seed(0); m = torch.nn.Linear(64, 32).eval(); "
              "x = torch.randn(8, 64); c = mlirc.compile(m, (x,), cache=False); "
              "print((c(x) - m(x)).abs().max().item())")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env={**os.environ, "MLIRC_BLAS": "mkl"})
    assert result.returncode == 0, result.stderr
    assert float(result.stdout.strip().splitlines()[-1]) < 1e-5
