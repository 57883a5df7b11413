"""The e2e numerics suite: every registered case against eager PyTorch, on
each backend. Expected failures come from tests/e2e/xfail.py (strict)."""

import pytest

from tests.e2e.registry import load_all_cases
from tests.e2e.run import run_case
from tests.e2e.xfail import expected_failure

CASES = load_all_cases()
BACKENDS = ["jit", "aot", "iree-cpu"]


def _params():
    for backend in BACKENDS:
        for name in CASES:
            reason = expected_failure(backend, name)
            marks = [pytest.mark.xfail(reason=reason, strict=True)] if reason else []
            yield pytest.param(backend, name, marks=marks, id=f"{backend}-{name}")


def test_suite_is_large_enough():
    assert len(CASES) >= 40


@pytest.mark.parametrize("backend,name", list(_params()))
def test_case_matches_eager(backend, name):
    case = CASES[name]
    report = run_case(case, backend)
    assert report.passed, f"\n{report}"
