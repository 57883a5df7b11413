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


@pytest.fixture(scope="session")
def examples_dir() -> Path:
    return ROOT / "examples"
