"""The cost analysis (op costs, roofline, `mlirc analyze`) and the tuner
(`mlirc tune`, its database, compiles that read it)."""

import json
import sqlite3

import pytest
import torch

import mlirc
from mlirc.analysis import machine as machine_module
from mlirc.analysis.opcost import analyze_text
from mlirc.analysis.tuner import NOISE_MARGIN, _decide, candidates, spearman, tune
from mlirc.analysis.tuning_db import TuningDB
from mlirc.cli import main
from mlirc.kernels.choice import ConvShape


class ConvThenLinear(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.linear = torch.nn.Linear(8 * 8 * 8, 5)

    def forward(self, x):
        return self.linear(torch.relu(self.conv(x)).flatten(1))


@pytest.fixture(scope="module")
def linalg_ops():
    compiled = mlirc.compile(ConvThenLinear().eval(), (torch.randn(2, 3, 8, 8),),
                             stop_at="linalg", cache=False)
    return analyze_text(compiled.full_text("linalg"))


def test_convolution_and_matmul_costs_are_read_off_the_linalg_ops(linalg_ops):
    (conv,) = [op for op in linalg_ops if op.kind == "convolution"]
    assert conv.loops == [2, 8, 8, 8, 3, 3, 3]
    assert conv.iterators == ["parallel"] * 4 + ["reduction"] * 3
    assert conv.flops == 2 * 2 * 8 * 8 * 8 * 3 * 3 * 3
    assert conv.dims["output_channel"] == [1] and conv.dims["filter_loop"] == [5, 6]
    (matmul,) = [op for op in linalg_ops if op.kind == "contraction"]
    assert matmul.loops == [2, 5, 512] and matmul.dims["k"] == [2]
    # A (2x512), B (512x5) read, C (2x5) read and written: compulsory bytes
    assert matmul.bytes == 4 * (2 * 512 + 512 * 5 + 2 * 2 * 5)
    assert any(op.kind == "constant" for op in linalg_ops)  # the weight's transpose
    relu = [op for op in linalg_ops if op.kind == "elementwise" and op.loops == [2, 8, 8, 8]]
    assert relu and relu[0].body_ops >= 1


def test_machine_is_measured_once_and_a_bad_cache_file_is_measured_again(tmp_path,
                                                                       monkeypatch):
    monkeypatch.setenv("MLIRC_CACHE_DIR", str(tmp_path))
    first = machine_module.machine()
    assert first.peak_gflops > 0.1 and first.bandwidth_gbs > 0.1 and first.ridge > 0
    (cached,) = (tmp_path / "machine").glob("*.json")
    assert machine_module.machine() == first
    cached.write_text(json.dumps({**json.loads(cached.read_text()), "peak_gflops": -1}))
    again = machine_module.machine()
    assert again.peak_gflops > 0.1


def test_analyze_reports_ops_measures_source_lines_and_plots(tmp_path):
    report = mlirc.analyze(ConvThenLinear().eval(), (torch.randn(2, 3, 8, 8),), measure=True,
                           repeat=3)
    table = report.table()
    assert "conv_2d_nchw_fchw" in table and "matmul" in table and "GFLOP/s" in table
    assert report.measured and report.measured_wall > 0
    assert any(line.measured_seconds for line in report.by_source_line())
    png = report.plot(tmp_path / "roofline.png")
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_analyze_command_writes_the_plot_and_json(tmp_path, capsys):
    model_file = tmp_path / "model.py"
    model_file.write_text(
        "import torch\n"
        "def model():\n    return torch.nn.Sequential(torch.nn.Linear(16, 8), torch.nn.ReLU())\n"
        "def example_inputs():\n    return (torch.randn(4, 16),)\n")
    code = main(["analyze", str(model_file), "--png", str(tmp_path / "r.png"),
                 "--json", str(tmp_path / "r.json")])
    assert code == 0
    assert "matmul" in capsys.readouterr().out
    data = json.loads((tmp_path / "r.json").read_text())
    assert {op["kind"] for op in data["ops"]} >= {"contraction"}
    assert (tmp_path / "r.png").stat().st_size > 1000


def test_the_default_stays_unless_a_candidate_beats_it_by_the_margin():
    assert _decide({"direct": 1.0, "im2col_blas": 0.97}, "direct") == "direct"
    assert _decide({"direct": 1.0, "im2col_blas": 0.5}, "direct") == "im2col_blas"
    assert _decide({}, "direct") == "direct"


def test_spearman_is_rank_correlation():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)


def test_problem_keys_round_trip_and_candidates_fit():
    shape = ConvShape(1, 16, 14, 14, 32, 3, 3, (1, 1), (1, 1), (1, 1), True)
    assert ConvShape.from_key(shape.key()) == shape
    found = candidates(shape)
    assert "im2col_blas" in found and len(found) >= 2
    variable = ConvShape(1, 16, 14, 14, 32, 3, 3, (1, 1), (1, 1), (1, 1), False)
    assert not {"winograd_f4x4", "packed", "winograd_f2x2_packed"} & set(candidates(variable))


def test_tuning_database_refuses_other_files_and_skips_bad_rows(tmp_path):
    not_a_database = tmp_path / "notes.db"
    not_a_database.write_text("hello")
    with pytest.raises(mlirc.InputError, match="not a readable mlirc tuning database"):
        TuningDB(not_a_database)
    path = tmp_path / "tuning.db"
    database = TuningDB(path)
    problem = "conv2d@1,16,14,14,32,3,3,1,1,1,1,1,1,1"
    database.record(problem, "direct", 2e-5, 1e-5, threads=2)
    database.record(problem, "im2col_blas", 3e-5, 2e-5, threads=2)
    database.record(problem, "im2col_blas", 1e-5, 2e-5, threads=1)
    with sqlite3.connect(path) as raw:  # rows nobody should trust
        raw.execute("INSERT INTO measurements VALUES (?, ?, ?, 'no_such_kernel', 2, 1e-9, 0, 0)",
                    (problem, database.machine, database.versions))
        raw.execute("INSERT INTO measurements VALUES (?, ?, ?, 'strided', 2, -1, 0, 0)",
                    (problem, database.machine, database.versions))
    assert set(database.measured(problem, 2)) == {"direct", "im2col_blas"}
    assert database.measured(problem, 1) == {"im2col_blas": (1e-5, 2e-5)}
    # the decision made on the threads a compile runs on wins where there is one
    database.choose(problem, "direct", 2)
    database.choose(problem, "im2col_blas", 1)
    with sqlite3.connect(path) as raw:
        raw.execute("INSERT INTO choices VALUES ('conv2d@1', ?, ?, 2, 'no_such_kernel')",
                    (database.machine, database.versions))
    assert database.best_choices(threads=2) == {problem: "direct"}
    assert database.best_choices(threads=1) == {problem: "im2col_blas"}
    assert database.best_choices(threads=8)[problem] in ("direct", "im2col_blas")


class TwoConvolutions(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.first = torch.nn.Conv2d(8, 16, 3, padding=1)
        self.second = torch.nn.Conv2d(16, 16, 3, padding=1)

    def forward(self, x):
        return self.second(torch.relu(self.first(x)))


def test_tune_measures_keeps_resumes_and_compiles_read_it(tmp_path):
    model, x = TwoConvolutions().eval(), torch.randn(1, 8, 12, 12)
    path = tmp_path / "tuning.db"
    report = tune(model, (x,), db=path)
    assert len(report.problems) == 2 and report.measured_now >= 3
    for result in report.problems:
        fastest = min(result.measured, key=result.measured.get)
        assert result.best in (fastest, result.default)
        assert result.speedup >= 1.0 / NOISE_MARGIN
    assert "median Spearman" in report.table() or all(
        r.rank_correlation is None for r in report.problems)
    assert tune(model, (x,), db=path).measured_now == 0  # resumed: nothing left
    # a compile that reads the database runs the measured best kernels
    forced = {r.problem: r.best for r in report.problems}
    compiled = mlirc.compile(model, (x,), tuning_db=path, stop_at="blas", cache=False)
    blas = compiled.ir["blas"]
    for problem, kernel in forced.items():
        assert f'mlirc.kernel = "{kernel}", mlirc.problem = "{problem}"' in blas
    ran = mlirc.compile(model, (x,), tuning_db=path, cache=False)
    assert ran.verify(x, rtol=1e-4, atol=1e-4).passed  # Winograd rounds differently


def test_tune_in_a_process_pool(tmp_path):
    model, x = TwoConvolutions().eval(), torch.randn(1, 8, 12, 12)
    report = tune(model, (x,), db=tmp_path / "pool.db", jobs=2)
    assert report.measured_now >= 3 and all(r.measured for r in report.problems)


def test_tune_on_a_local_ray_cluster(tmp_path):
    ray = pytest.importorskip("ray")
    model, x = TwoConvolutions().eval(), torch.randn(1, 8, 12, 12)
    ray.init(num_cpus=2, include_dashboard=False, ignore_reinit_error=True)
    try:
        report = tune(model, (x,), db=tmp_path / "ray.db", ray_address="local")
    finally:
        ray.shutdown()
    assert report.measured_now >= 3
