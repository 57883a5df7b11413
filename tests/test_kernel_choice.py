"""The kernel choice: CPU levels, the policy's vetoes, the user's overrides,
and the kernel written into the IR."""

import re

import pytest
import torch

import mlirc
from mlirc import artifact
from mlirc.kernels import choice, host


@pytest.mark.parametrize("flags,level", [
    ({"sse2"}, "generic"),
    ({"avx2", "fma", "bmi2"}, "avx2"),
    ({"avx2", "fma", "bmi2", "avx512f", "avx512bw", "avx512dq", "avx512vl"}, "avx512"),
    ({"avx512f", "avx2"}, "generic"),  # AVX-512 without FMA/BMI2: not a level GCC builds for
])
def test_level_from_cpu_flags(flags, level):
    assert host.detected_level(flags) == level


def test_target_isa_cannot_exceed_the_machine(monkeypatch):
    host.host.cache_clear()
    monkeypatch.setenv("MLIRC_TARGET_ISA", "avx9")
    try:
        with pytest.raises(mlirc.InputError, match="levels are"):
            host.host()
    finally:
        host.host.cache_clear()


def test_avx2_never_chooses_the_avx512_shaped_kernels():
    vetoed = choice.SLOWER_THAN_BLAS["avx2"]
    assert {"conv2d:packed", "conv2d:winograd_f4x4", "conv2d:direct"} <= vetoed
    assert "gemm:packed" not in vetoed  # its AVX2 tile beats BLAS
    assert "gemm:packed" in choice.SLOWER_THAN_BLAS["generic"]
    assert not choice.SLOWER_THAN_BLAS["avx512"]


@pytest.mark.parametrize("text,message", [
    ('{"conv2d": "fastest"}', "is not a kernel"),
    ('{"matmul:0": "blas"}', "is not a kernel"),
    ('{"gemm:x": "blas"}', "keys are"),
    ('[1, 2]', "a JSON object"),
    ('{"gemm": ', "not JSON"),
    ("/no/such/kernels.json", "kernel choices file"),
])
def test_bad_kernel_choices_are_input_errors(text, message):
    with pytest.raises(mlirc.InputError, match=message):
        choice.KernelOverrides(text)


def test_numbered_choices_are_strict_and_kind_wide_ones_soft():
    overrides = choice.KernelOverrides('{"gemm:1": "packed", "conv2d": "direct"}')
    assert overrides.get("gemm", 1) == ("packed", True)
    assert overrides.get("gemm", 0) == (None, False)
    assert overrides.get("conv2d", 5) == ("direct", False)


def test_the_choice_is_in_the_ir_and_an_impossible_one_is_refused():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU()).eval()
    x = torch.randn(1, 3, 12, 12)
    compiled = mlirc.compile(model, (x,), stop_at="blas", cache=False,
                             kernels={"conv2d:0": "im2col_blas"})
    assert re.search(r'call @mlirc_conv2d_\w+\(.*\{mlirc.kernel = "im2col_blas"[^}]*\}',
                     compiled.ir["blas"])
    with pytest.raises(mlirc.PipelineError, match="cannot run 'winograd_f4x4'"):
        mlirc.compile(model, (x,), stop_at="blas", cache=False,
                      kernels={"conv2d:0": "winograd_f4x4"})
    with pytest.raises(mlirc.InputError, match="needs the blas stage"):
        mlirc.compile(model, (x,), backend="iree-cpu", stop_at="linalg", cache=False,
                      kernels={"conv2d": "direct"})


@pytest.mark.parametrize("cpu", [{"machine": "aarch64", "level": "generic"},
                                 {"machine": "x86_64", "level": "avx1024"}, "x"])
def test_an_artifact_for_another_cpu_is_refused(cpu, tmp_path):
    """Native code (generated and kernels) is for the CPU it was built on: a
    saved artifact of another machine kind or a higher level is refused
    with a typed error instead of dying of SIGILL."""
    import json
    model = torch.nn.Linear(8, 4).eval()
    folder = mlirc.compile(model, (torch.randn(2, 8),), backend="aot", cache=False).save(
        tmp_path / "model")
    manifest = json.loads((folder / "manifest.json").read_text())
    level = host.target_level(host.aot_target(None))  # x86-64-v3 where AVX2 is
    assert manifest["cpu"] == {"machine": host.host().machine, "level": level}
    mlirc.load(folder)
    manifest["cpu"] = cpu
    manifest["manifest_sha256"] = artifact.manifest_digest(manifest)  # as if built there
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(mlirc.ArtifactError, match="recompile it here"):
        mlirc.load(folder)
