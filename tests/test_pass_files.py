"""Per-pass IR tests: each tests/passes/*.mlir file holds `// RUN:` lines
(mlirc-opt ... %s | filecheck %s), run here with the venv's tools on PATH."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

FILES = sorted((Path(__file__).parent / "passes").glob("*.mlir"))


def run_lines(path: Path) -> list[str]:
    return [line.split("RUN:", 1)[1].strip().replace("%s", str(path)).replace("%S", str(path.parent))
            for line in path.read_text().splitlines() if line.startswith("// RUN:")]


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_pass_file(path):
    commands = run_lines(path)
    assert commands, f"{path.name} has no RUN line"
    environment = dict(os.environ)
    environment["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environment['PATH']}"
    for command in commands:
        result = subprocess.run(["bash", "-o", "pipefail", "-c", command], env=environment,
                                capture_output=True, text=True)
        assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
