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
    for name in ["00 torch", "02 linalg", "04 bufferized", "05 blas", "06 parallel", "08 llvm"]:
        assert name in out
    assert "one-shot-bufferize" in out and "mlirc-emit-c-interface" in out


def test_explore_writes_one_file_per_stage_and_a_table(tmp_path, capsys):
    assert main(["explore", MLP, "--dump-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "ops per dialect" in out and "02-linalg" in out and "linalg:" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "00-torch.mlir", "01-torch-backend.mlir", "02-linalg.mlir", "03-optimized.mlir",
        "04-bufferized.mlir", "05-blas.mlir", "06-parallel.mlir", "07-loops.mlir",
        "08-llvm.mlir"]


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
    assert "result[0]: hal.buffer_view\n32x10xf32=[" in capsys.readouterr().out


def test_check_lists_unsupported_ops(tmp_path, capsys):
    model = tmp_path / "histogram.py"
    model.write_text(
        "import torch\n"
        "class Histogram(torch.nn.Module):\n"
        "    def forward(self, x):\n"
        "        return torch.histc(x, bins=4) + 1\n"
        "def model():\n    return Histogram()\n"
        "def example_inputs():\n    return (torch.randn(4, 8),)\n")
    assert main(["check", str(model)]) == 1
    out = capsys.readouterr().out
    assert "torch.aten.histc" in out and "histogram.py:4" in out
    assert main(["check", MLP]) == 0


@pytest.mark.parametrize("arguments,message", [
    (["compile", "missing.py"], "no such file: missing.py"),
    (["compile", "model.tflite"], "expected a .py model file, a .onnx model or a .mlir module"),
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


def test_export_then_run_the_artifact_with_iree_inputs(tmp_path, capsys):
    folder = tmp_path / "mlp"
    assert main(["export", MLP, "-o", str(folder)]) == 0
    assert "_mlir_ciface_mlp" in capsys.readouterr().out
    assert {"libmlp.so", "mlp.h", "main.c", "Makefile", "manifest.json"} <= \
        {p.name for p in folder.iterdir()}
    assert main(["run", str(folder), "--input=32x256xf32=0"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:2] == ["EXEC @main", "result[0]: hal.buffer_view"]
    assert out[2].startswith("32x10xf32=[")


def test_run_reads_and_writes_npy(tmp_path, capsys):
    import numpy as np
    folder = tmp_path / "mlp"
    main(["export", MLP, "-o", str(folder), "--backend", "jit"])
    np.save(tmp_path / "x.npy", np.ones((32, 256), np.float32))
    out_file = tmp_path / "y.npy"
    assert main(["run", str(folder), f"--input=@{tmp_path / 'x.npy'}",
                 f"--output=@{out_file}"]) == 0
    assert np.load(out_file).shape == (32, 10)


@pytest.mark.parametrize("value,message", [
    ("32x256xq8=1", "unknown element type 'q8'"),
    ("32x256xf32=1,2", "shape [32, 256] holds 8192 values, got 2"),
    ("32xax256xf32=1", "bad shape"),
    ("32x256xf32", "expected SHAPExTYPE=VALUES"),
    ("@missing.npy", "no such file"),
    ("32x25xf32=1", "expected shape [32, 256], got [32, 25]"),
])
def test_bad_input_strings_say_which_input_and_why(value, message, tmp_path):
    folder = tmp_path / "mlp"
    main(["export", MLP, "-o", str(folder), "--backend", "jit"])
    result = subprocess.run(MLIRC + ["run", str(folder), f"--input={value}"],
                            capture_output=True, text=True)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert message in line and ("--input 1" in line or "input 0" in line)


def test_format_result_like_iree_run_module():
    import numpy as np
    from mlirc.runtime.cli_io import format_result, parse_input
    assert format_result(np.arange(6, dtype=np.float32).reshape(2, 3)) == "2x3xf32=[0 1 2][3 4 5]"
    assert format_result(np.array([True, False])) == "2xbool=1 0"
    assert format_result(np.array(2.5, np.float32)) == "f32=2.5"
    np.testing.assert_array_equal(parse_input("2x2xi32=1 2 3 4", 1), [[1, 2], [3, 4]])
    assert parse_input("2xi1=1,0", 1).dtype == np.bool_
