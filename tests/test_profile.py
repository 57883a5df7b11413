"""The per-op profiler: timers around each op after BLAS offload, read back
with labels that name the op, the buffer it writes and its source."""

import subprocess
import sys

import torch

import mlirc


class Small(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(16, 8)

    def forward(self, x):
        return torch.relu(self.linear(x)) * 2.0


def test_profile_times_each_op_with_labels():
    report = mlirc.profile(Small().eval(), (torch.randn(4, 16),), repeat=3)
    kinds = [entry.op for entry in report.entries]
    assert "call mlirc_gemm_f32" in kinds
    assert any(kind.startswith("linalg.generic") for kind in kinds)
    assert all(entry.seconds >= 0 for entry in report.entries)
    assert report.timed_seconds > 0 and report.wall_seconds > 0
    gemm = next(e for e in report.entries if e.op == "call mlirc_gemm_f32")
    assert gemm.type.startswith("memref<4x8xf32") and "test_profile.py" in gemm.where
    assert "| call mlirc_gemm_f32 |" in report.table()


def test_profile_command_prints_the_table():
    result = subprocess.run([sys.executable, "-m", "mlirc.cli", "profile", "examples/mlp.py",
                             "--repeat", "2", "--top", "3"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "| op kind | ops | ms | share |" in result.stdout
    assert "slowest ops (top 3)" in result.stdout
