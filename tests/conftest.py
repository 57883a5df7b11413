import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
warnings.filterwarnings("ignore", category=FutureWarning)


@pytest.fixture(scope="session")
def examples_dir() -> Path:
    return ROOT / "examples"
