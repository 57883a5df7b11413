"""`aot` libraries for other x86-64 machines: the model's code is generated
for the target level (no AVX-512 instruction in an x86-64-v3 library, even
when an AVX-512 machine built it), the kernels linked in pick their copy
for the CPU that loads them, and the artifact says which CPUs it runs on."""

import ctypes
import json
import os
import platform
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

import mlirc
from mlirc.errors import InputError
from mlirc.kernels.host import host

pytestmark = pytest.mark.skipif(platform.machine() != "x86_64" or host().level == "generic"
                                or not shutil.which("objdump"),
                                reason="x86-64 levels, an AVX2 host and objdump")


def _model():
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.GELU(), torch.nn.Flatten(),
        torch.nn.Linear(32 * 8 * 8, 10), torch.nn.LayerNorm(10)).eval()
    return model, (torch.randn(2, 3, 16, 16),)


def _evex_instructions(library, functions: set[str]) -> list[str]:
    """Instructions of `functions` in `library` encoded with an EVEX prefix
    (0x62 in 64-bit mode: AVX-512 only)."""
    listing = subprocess.run(["objdump", "-d", "--no-addresses", str(library)],
                             capture_output=True, text=True, check=True).stdout
    found, current = [], None
    for line in listing.splitlines():
        if line.startswith("<") and line.endswith(">:"):
            current = line[1:-2]
            continue
        fields = line.split("\t")
        if current in functions and len(fields) >= 3:
            encoding = fields[1].split()
            while encoding and encoding[0] in ("67", "2e", "3e", "26", "64", "65", "36"):
                encoding = encoding[1:]
            if encoding and encoding[0] == "62":
                found.append(f"{current}: {fields[2].strip()}")
    return found


def _model_functions(compiled) -> set[str]:
    import re
    return set(re.findall(r"llvm\.func @(\w+)\(", compiled.ir["llvm"]))


def test_an_x86_64_v3_library_has_no_avx512_instruction_in_the_models_code(tmp_path):
    model, inputs = _model()
    compiled = mlirc.compile(model, inputs, backend="aot", cache=False)
    assert compiled.extra["options"]["target_cpu"] == "x86-64-v3"
    assert compiled.verify(*inputs).passed
    functions = {name.replace("main", "model") for name in _model_functions(compiled)}
    assert _evex_instructions(compiled.executable.library_path, functions) == []
    if host().level == "avx512":  # the check sees AVX-512 where it is
        native = mlirc.compile(model, inputs, backend="aot", cache=False, target_cpu="host")
        assert _evex_instructions(native.executable.library_path, functions)


def test_the_saved_library_runs_each_kernel_level_it_is_given(tmp_path):
    """Loaded in a fresh process told to act as an AVX2 (or AVX-512) CPU:
    same results, and the library's kernels report that level."""
    model, inputs = _model()
    compiled = mlirc.compile(model, inputs, backend="aot", cache=False)
    path = compiled.save(tmp_path / "model.mlirc")
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["cpu"] == {"machine": "x86_64", "level": "avx2"}
    np.save(tmp_path / "x.npy", inputs[0].numpy())
    expected = model(*inputs).detach().numpy()
    probe = (
        "import ctypes, sys, numpy as np, mlirc\n"
        "m = mlirc.load(sys.argv[1])\n"
        "np.save(sys.argv[2], m(np.load(sys.argv[3])))\n"
        "isa = m.executable._library.mlirc_kernels_isa\n"
        "isa.restype = ctypes.c_char_p\n"
        "print(isa().decode())\n")
    for level in ["avx2", host().level]:
        env = dict(os.environ, MLIRC_TARGET_ISA=level)
        ran = subprocess.run([sys.executable, "-c", probe, str(path), str(tmp_path / "y.npy"),
                              str(tmp_path / "x.npy")], env=env, capture_output=True, text=True)
        assert ran.returncode == 0, ran.stderr[-2000:]
        assert ran.stdout.strip().splitlines()[-1] == level
        np.testing.assert_allclose(np.load(tmp_path / "y.npy"), expected, rtol=1e-4, atol=1e-5)


def test_a_library_for_a_level_above_the_cpu_is_refused():
    model, inputs = _model()
    with pytest.raises(InputError, match="target_cpu"):
        mlirc.compile(model, inputs, backend="aot", cache=False, target_cpu="pentium")
    with pytest.raises(InputError, match="aot"):
        mlirc.compile(model, inputs, backend="jit", cache=False, target_cpu="x86-64-v3")
    if host().level != "avx512":
        with pytest.raises(InputError, match="could not run here"):
            mlirc.compile(model, inputs, backend="aot", cache=False, target_cpu="x86-64-v4")
