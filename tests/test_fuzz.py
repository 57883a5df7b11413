"""The fuzzing harness (`make fuzz`): that it counts crashes, hangs and
untyped errors instead of dying with them, and a short deterministic slice of
every target, which must produce no finding."""

import json

import pytest

from fuzz import cases, harness, seeds

SLICE_CASES = 140


@pytest.fixture(scope="module")
def seed_folder(tmp_path_factory):
    return seeds.write(tmp_path_factory.mktemp("fuzz") / "seeds")


def test_the_harness_counts_crashes_hangs_and_untyped_errors(seed_folder, tmp_path):
    todo = [{"target": "selftest", "do": do} for do in ("ok", "abort", "raise", "sleep", "ok")]
    summary = harness.run_cases(todo, seed_folder, tmp_path, jobs=1, timeout=20)
    assert dict(summary.counts["selftest"]) == {"ok": 2, "crash": 1, "untyped": 1, "hang": 1}
    crash = next(f for f in summary.findings if f.outcome == "crash")
    assert "SIGABRT" in crash.detail
    written = sorted(p.name for p in (tmp_path / "findings").iterdir())
    assert written == ["crash-selftest-0000.json", "hang-selftest-0002.json",
                       "untyped-selftest-0001.json"]
    assert json.loads((tmp_path / "summary.json").read_text())["cases"] == 5


def test_cases_are_the_same_for_the_same_seed(seed_folder):
    first = cases.generate(seed_folder, 40, seed=7)
    assert first == cases.generate(seed_folder, 40, seed=7)
    assert {c["target"] for c in first} == set(cases.SHARES)


def test_a_slice_of_every_target_finds_nothing(seed_folder, tmp_path):
    todo = cases.generate(seed_folder, SLICE_CASES, seed=0)
    summary = harness.run_cases(todo, seed_folder, tmp_path, jobs=2, timeout=120)
    assert summary.total == len(todo)
    assert summary.bad() == 0, "\n".join(
        f"{r.outcome} {r.case['target']}: {r.detail}" for r in summary.findings)
    # the slice reaches past refusals: some cases of most targets run
    assert sum(c["ok"] + c["changed"] for c in summary.counts.values()) >= SLICE_CASES // 10
