"""The mlirc command line: each command, and one-line errors with exit code 2."""

import subprocess
import sys
from pathlib import Path

import pytest

from mlirc.cli import main

ROOT = Path(__file__).resolve().parent.parent
MLP = str(ROOT / "examples" / "mlp.py")
MLIRC = [sys.executable, "-m", "mlirc"]


def test_stages_lists_stages_and_passes(capsys):
    assert main(["stages"]) == 0
    out = capsys.readouterr().out
    for name in ["00 torch", "02 linalg", "04 bufferized", "06 llvm"]:
        assert name in out
    assert "one-shot-bufferize" in out and "mlirc-emit-c-interface" in out


def test_explore_writes_one_file_per_stage_and_a_table(tmp_path, capsys):
    assert main(["explore", MLP, "--dump-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "ops per dialect" in out and "02-linalg" in out and "linalg:" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "00-torch.mlir", "01-torch-backend.mlir", "02-linalg.mlir", "03-optimized.mlir",
        "04-bufferized.mlir", "05-loops.mlir", "06-llvm.mlir"]


def test_compile_to_a_stage_then_from_it(tmp_path, capsys):
    saved = tmp_path / "mlp-linalg.mlir"
    assert main(["compile", MLP, "--to", "linalg", "-o", str(saved)]) == 0
    assert "linalg.matmul" in saved.read_text()
    assert main(["compile", str(saved), "--from", "linalg"]) == 0
    assert "to stage 'llvm'" in capsys.readouterr().out


def test_verify_passes_on_the_bundled_mlp(capsys):
    assert main(["verify", MLP]) == 0
    assert "PASS" in capsys.readouterr().out


def test_run_prints_results(capsys):
    assert main(["run", MLP]) == 0
    assert "result[0]: 32x10xfloat32" in capsys.readouterr().out


def test_check_lists_unsupported_ops(tmp_path, capsys):
    model = tmp_path / "spectrum.py"
    model.write_text(
        "import torch\n"
        "class Spectrum(torch.nn.Module):\n"
        "    def forward(self, x):\n"
        "        return torch.fft.fft(x).real + x\n"
        "def model():\n    return Spectrum()\n"
        "def example_inputs():\n    return (torch.randn(4, 8),)\n")
    assert main(["check", str(model)]) == 1
    out = capsys.readouterr().out
    assert "torch.aten.fft_fft" in out and "spectrum.py:4" in out
    assert main(["check", MLP]) == 0


@pytest.mark.parametrize("arguments,message", [
    (["compile", "missing.py"], "no such file: missing.py"),
    (["compile", "model.onnx"], "expected a .py model file or a .mlir module"),
    (["compile", MLP, "--to", "nowhere"], "no stage named 'nowhere'"),
])
def test_errors_are_one_line_with_exit_code_2(arguments, message):
    result = subprocess.run(MLIRC + arguments, capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("mlirc: error: ") and message in line


def test_bad_model_file_is_a_clear_error(tmp_path):
    not_a_model = tmp_path / "nothing.py"
    not_a_model.write_text("x = 1\n")
    result = subprocess.run(MLIRC + ["compile", str(not_a_model)], capture_output=True, text=True)
    assert result.returncode == 2
    assert "must define model()" in result.stderr and "Traceback" not in result.stderr


def test_unparseable_mlir_file(tmp_path):
    bad = tmp_path / "bad.mlir"
    bad.write_text("func.func @main( {\n")
    result = subprocess.run(MLIRC + ["compile", str(bad)], capture_output=True, text=True)
    assert result.returncode == 2
    assert "cannot parse" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
