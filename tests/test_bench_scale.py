"""bench/bench_scale.py runs dvc.yaml's stages by their own commands: in an order DVC would accept."""

import importlib.util

import pytest
import yaml
from conftest import REPO

spec = importlib.util.spec_from_file_location("bench_scale", REPO / "bench" / "bench_scale.py")
bench_scale = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench_scale)


def test_every_stage_runs_after_the_stages_whose_outputs_it_reads():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    order = bench_scale.stage_order(stages)
    assert sorted(order) == sorted(stages)
    assert order.index("conditions") < order.index("evaluate")  # evaluate reads metrics/conditions.json
    assert order.index("train") < order.index("evaluate") and order[0] in ("corpus", "natural")


def test_a_cycle_is_refused_naming_its_stages():
    stages = {"a": {"deps": ["y"], "outs": ["x"]}, "b": {"deps": ["x"], "outs": ["y"]}, "c": {"outs": ["z"]}}
    with pytest.raises(SystemExit, match="cycle"):
        bench_scale.stage_order(stages)
    assert bench_scale.stage_order({"b": {"deps": ["x"]}, "a": {"metrics": [{"x": {"cache": False}}]}}) == ["a", "b"]


def test_the_exponent_of_a_power_law_is_recovered():
    assert bench_scale.exponent([1000, 2000, 4000], [3.0, 6.0, 12.0]) == pytest.approx(1.0)
    assert bench_scale.exponent([1000, 2000, 4000], [5.0, 5.0, 5.0]) == pytest.approx(0.0, abs=1e-9)


def test_a_size_s_params_are_the_checkouts_with_its_reps_epochs_and_changes(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text((REPO / "params.yaml").read_text())
    clips = bench_scale.set_params(params, 6, 1, ["split.val_fraction=0.17", "evaluate.snr_sweep=[0, 5]"])
    written = yaml.safe_load(params.read_text())
    assert clips == written["data"]["tts"]["speakers"] * 6 * 10
    assert written["data"]["tts"]["reps"] == 6 and written["train"]["epochs"] == 1
    assert written["split"]["val_fraction"] == 0.17 and written["evaluate"]["snr_sweep"] == [0, 5]
    with pytest.raises(SystemExit, match="params.yaml has no split.val_fractoin"):
        bench_scale.set_params(params, 6, 1, ["split.val_fractoin=0.2"])
