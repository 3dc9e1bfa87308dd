"""The registry of methods and metrics is the one list every consumer reads or is held to."""

import importlib.util
import re

import pytest
import yaml
from conftest import REPO

from audiomnist_denoise import __main__ as cli
from audiomnist_denoise.names import (
    BASELINES,
    CEILINGS,
    METHODS,
    MODEL_FREE,
    MODEL_METHODS,
    QUALITY,
    QUALITY_METRICS,
    RECONSTRUCTIONS,
    SAMPLE_SOURCES,
)


def test_the_registry_is_consistent():
    assert set(BASELINES) <= set(METHODS) and set(CEILINGS) <= set(MODEL_FREE)
    assert set(MODEL_METHODS) | set(MODEL_FREE) == set(METHODS) and not set(MODEL_METHODS) & set(MODEL_FREE)
    assert set(RECONSTRUCTIONS.values()) == set(MODEL_METHODS)
    assert SAMPLE_SOURCES == ("clean", *METHODS) and QUALITY_METRICS == tuple(QUALITY)


def test_dvc_yaml_charts_every_method_in_the_registrys_order():
    plots = yaml.safe_load((REPO / "dvc.yaml").read_text())["plots"]
    charted = [list(plot.values())[0]["y"] for plot in plots]
    kinds = yaml.safe_load((REPO / "params.yaml").read_text())["evaluate"]["sweep_kinds"]
    expected = [f"plots/sweep/{kind}/{metric}.csv" for kind in kinds for metric in QUALITY_METRICS]
    assert charted == [{path: list(METHODS)} for path in expected]


def test_check_reproduction_compares_exactly_the_model_free_methods_as_rounding_only():
    spec = importlib.util.spec_from_file_location("check_reproduction", REPO / "scripts" / "check_reproduction.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for method in METHODS:
        tolerance = next(tol for pattern, _, tol in module.TOLERANCES if re.search(pattern, f"test.{method}.si_sdr"))
        assert (tolerance == 1e-3) == (method in MODEL_FREE), method


def test_denoise_offers_each_reconstruction_of_the_model_and_nothing_else(capsys):
    parser = cli.build_parser()
    for method in RECONSTRUCTIONS:
        assert parser.parse_args(["denoise", "in.wav", "-o", "out", "--method", method]).method == method
    with pytest.raises(SystemExit):
        parser.parse_args(["denoise", "in.wav", "-o", "out", "--method", "unet_mask"])
    assert "invalid choice" in capsys.readouterr().err
