"""Shared set-up, and the test tiers.

Every test file belongs to one tier (TIERS, a pytest marker): `make test`
runs them all, `make test-fast` the quick ones (`-m "not e2e and not onnx and
not slow"`), and `pytest -m kernels` (or any marker) a tier by itself.
"""

import os
import sys
import tempfile
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
warnings.filterwarnings("ignore", category=FutureWarning)
# Tests never read or fill the user's compilation cache.
os.environ["MLIRC_CACHE_DIR"] = tempfile.mkdtemp(prefix="mlirc-test-cache-")

# test file -> tier (markers declared in pyproject.toml)
TIERS = {
    "test_layering.py": "unit",
    "test_kernel_choice.py": "unit",
    "test_kernel_sources.py": "kernels",
    "test_errors.py": "unit",
    "test_boundary.py": "unit",
    "test_stages.py": "unit",
    "test_pass_files.py": "passes",
    "test_conv_kernels.py": "kernels",
    "test_gemm_kernels.py": "kernels",
    "test_maxpool_kernel.py": "kernels",
    "test_shim_portable.py": "slow",
    "test_install.py": "slow",
    "test_onnx.py": "onnx",
    "test_onnx_lowering.py": "onnx",
}
DEFAULT_TIER = "e2e"


def pytest_collection_modifyitems(config, items):
    deselected, kept = [], []
    for item in items:
        path = Path(str(item.fspath))
        item.add_marker(getattr(pytest.mark, TIERS.get(path.name, DEFAULT_TIER)))
        # The ONNX standard runner's classes hold every ONNX test, skipping
        # those its include filter leaves out: collect only the included.
        included = getattr(item.module, "INCLUDED_ONNX_TESTS", None)
        if included is not None and item.cls is not None and \
                item.cls.__name__.startswith("OnnxBackend") and item.name not in included:
            deselected.append(item)
        else:
            kept.append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept


@pytest.fixture(scope="session")
def examples_dir() -> Path:
    return ROOT / "examples"
