"""IREE's tile sizes chosen by mlirc: dispatches read off iree-compile, the
cost model's candidates, measured configs kept in the tuning database, and
compiles that hand them back to iree-compile as a tuning spec."""

import math
import sqlite3

import pytest
import torch

import mlirc
from mlirc.analysis import iree_tuner
from mlirc.analysis.iree_dispatch import LoweringConfig, tuning_spec
from mlirc.analysis.machine import machine
from mlirc.analysis.opcost import analyze_text
from mlirc.analysis.tuning_db import TuningDB, iree_spec_flags
from mlirc.cli import main


class StridedPointwise(torch.nn.Module):
    """A 1x1 convolution of stride 2: IREE reads its input as a strided view
    inside a matmul-like dispatch, and its own config puts the vector lanes
    along that stride."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(16, 32, 1, stride=2)

    def forward(self, x):
        return torch.relu(self.conv(x))


@pytest.fixture(scope="module")
def model_and_input():
    torch.manual_seed(0)
    return StridedPointwise().eval(), torch.randn(1, 16, 28, 28)


@pytest.fixture(scope="module")
def root(model_and_input):
    model, x = model_and_input
    found = iree_tuner.model_dispatches(model, (x,))
    roots = [d for d in found if "matmul_like" in d.name]
    assert len(roots) == 1, [d.name for d in found]
    return roots[0]


def test_lowering_configs_round_trip_and_bad_keys_are_refused():
    config = LoweringConfig((16, 14, 28, 0), (16, 1, 16, 0), (0, 0, 0, 16))
    assert LoweringConfig.from_key(config.key()) == config
    assert LoweringConfig.from_attribute(config.attribute()) == config
    for bad in ("direct", "iree:1,2;3,4", "iree:1,2;3,4;5", "iree:a;b;c", "iree:1;-1;0", None):
        assert LoweringConfig.from_key(bad) is None
    # fields this tuner does not set (scalable sizes, cache levels) are not read as its own
    assert LoweringConfig.from_attribute(
        "#iree_cpu.lowering_config<cache_parallel = [1], distribution = [1], "
        "vector_common_parallel = [1], vector_reduction = [0]>") is None


def test_dispatch_root_is_read_with_its_strided_input(root):
    assert root.innermost_strides[0] == 2  # the input, subsampled where it is read
    assert root.innermost_strides[1:] == [1, 1]
    assert "%root = linalg.generic" in root.matcher_body and "%arg0, %arg1" in root.matcher_body
    assert "lowering_config" not in root.matcher_body
    cost = analyze_text(root.function_text())[0]
    assert cost.kind == "contraction" and sorted(cost.loops) == [14, 14, 16, 32]
    # the same op in another dispatch is the same problem
    assert root.problem.startswith("iree@matmul_like_32x14x14x16_f32@")


@pytest.mark.parametrize("level", ["avx512", "avx2"])
def test_candidates_fit_the_registers_and_the_workgroup_tiles(root, level):
    unit = iree_tuner.VectorUnit.for_level(level)
    cost = analyze_text(root.function_text())[0]
    found = iree_tuner.candidates(root, cost, unit)
    assert found and root.default not in found
    output_order = [0, 1, 2]  # the output is (out channels, rows, columns)
    assert cost.maps[-1].endswith("-> (d0, d1, d2)")
    for config in found:
        tiled = [d for d in output_order if config.parallel[d] > 1]
        lane = tiled[-1]  # the lanes lie along the innermost tiled loop of the output
        rows = math.prod(config.parallel[d] for d in tiled[:-1])
        assert rows * -(-config.parallel[lane] // unit.lanes) <= unit.registers - 4
        for extent, workgroup, register in zip(cost.loops, config.distribution,
                                               config.parallel):
            # a workgroup tile is a whole number of register tiles, or the whole loop
            assert workgroup in (0, extent) or register == 0 or workgroup % register == 0


def test_cost_model_charges_lanes_along_a_stride_and_short_reduction_steps(root):
    unit, host = iree_tuner.VectorUnit(16, 32), machine()
    cost = analyze_text(root.function_text())[0]
    assert cost.loops == [32, 14, 14, 16]  # out channels, rows, columns (strided), channels
    few_rows = LoweringConfig((0,) * 4, (1, 1, 14, 0), (0, 0, 0, 16))
    many_rows = LoweringConfig((0,) * 4, (16, 1, 14, 0), (0, 0, 0, 16))
    one_step = LoweringConfig((0,) * 4, (16, 1, 14, 0), (0, 0, 0, 1))

    def predict(config):
        return iree_tuner.predict_seconds(cost, config, unit, host, 1, root.innermost_strides)
    # each gathered input element feeds 16 rows instead of one
    assert predict(few_rows) > 2 * predict(many_rows)
    # accumulators read and written at every reduction step
    assert predict(one_step) > predict(many_rows)


def test_tune_keeps_the_fastest_config_and_compiles_apply_it(tmp_path, model_and_input):
    model, x = model_and_input
    path = tmp_path / "iree.db"
    report = iree_tuner.tune(model, (x,), db=path, validate=False)
    assert report.problems and report.measured_now >= 3
    result = report.problems[0]
    assert result.measured and result.best in result.measured
    fastest = min(result.measured, key=result.measured.get)
    assert result.best in (fastest, result.default)
    assert "IREE default ms" in report.table()
    # resumed: nothing left to measure
    assert iree_tuner.tune(model, (x,), db=path, validate=False).measured_now == 0
    flags = iree_spec_flags(path)
    assert len(flags) == 1 and flags[0].startswith("--iree-codegen-tuning-spec-path=")
    spec = open(flags[0].split("=", 1)[1]).read()
    assert LoweringConfig.from_key(result.best).attribute() in spec
    compiled = mlirc.compile(model, (x,), backend="iree-cpu", tuning_db=path, cache=False)
    assert flags[0] in compiled.extra["options"]["iree_flags"]
    with torch.no_grad():
        expected = model(x)
    torch.testing.assert_close(torch.as_tensor(compiled(x)), expected, rtol=1e-4, atol=1e-5)


def test_spec_entries_skip_rows_nobody_should_trust(tmp_path, root):
    path = tmp_path / "iree.db"
    database = TuningDB(path)
    database.remember_root(root.problem, root.matcher_body, root.operand_types,
                           root.translation_info)
    database.choose(root.problem, root.default.key(), 2)
    with sqlite3.connect(path) as raw:
        raw.execute("INSERT INTO iree_roots VALUES ('iree@x@1', 'op', 'tensor<1xf32>', 'evil')")
        raw.execute("INSERT INTO choices VALUES ('iree@x@1', ?, ?, 2, ?)",
                    (database.machine, database.versions, root.default.key()))
        raw.execute("INSERT INTO choices VALUES (?, ?, ?, 1, 'iree:not;a;config')",
                    (root.problem, database.machine, database.versions))
    entries = database.iree_spec_entries(2)
    assert len(entries) == 1 and entries[0][0] == root.matcher_body
    spec = tuning_spec(entries)
    assert spec.count("transform.named_sequence @match_") == 1


def test_cli_tune_refuses_a_backend_it_cannot_measure(capsys, tmp_path):
    source = tmp_path / "model.py"
    source.write_text("import torch\n"
                      "def model():\n    return torch.nn.Linear(4, 4)\n"
                      "def example_inputs():\n    return (torch.randn(2, 4),)\n")
    assert main(["tune", str(source), "--backend", "iree-cuda", "--db",
                 str(tmp_path / "t.db")]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "iree-cpu" in error[0]


def test_tune_on_a_local_ray_cluster(tmp_path, model_and_input):
    ray = pytest.importorskip("ray")
    model, x = model_and_input
    ray.init(num_cpus=2, include_dashboard=False, ignore_reinit_error=True)
    try:
        report = iree_tuner.tune(model, (x,), db=tmp_path / "ray.db", ray_address="local",
                                 validate=False)
    finally:
        ray.shutdown()
    assert report.measured_now >= 3 and report.problems[0].measured
