"""Typed params: the repository's params.yaml loads, and every kind of bad value is named."""

import copy
import subprocess
import sys

import pytest
import yaml
from conftest import REPO

from audiomnist_denoise.errors import PipelineError
from audiomnist_denoise.params import Params, load_params, parse_params

RAW = yaml.safe_load((REPO / "params.yaml").read_text())


def with_value(dotted: str, value) -> dict:
    """The repository's params with one key set (or added)."""
    raw = copy.deepcopy(RAW)
    *parents, key = dotted.split(".")
    section = raw
    for parent in parents:
        section = section[parent]
    section[key] = value
    return raw


def test_repository_params_load():
    params = load_params(REPO / "params.yaml")
    assert params.data.source == "tts" and params.noise.snr_db == -8.0


@pytest.mark.parametrize(
    "dotted, value, message",
    [
        ("noise.snr", 3, "noise.snr: unknown key (allowed: kind, snr_db, seed, babble_talkers, dir, workers)"),
        ("data.tts.voices", 3, "data.tts.voices: unknown key (allowed: speakers, reps, sample_rate, seed)"),
        ("bogus", {"lr": 1}, "bogus: unknown key (allowed: data, noise, features, split"),
        ("noise.snr_db", "-8", "noise.snr_db: Input should be a valid number"),
        ("noise.snr_db", 100.0, "noise.snr_db: Input should be less than or equal to 40 (got 100.0)"),
        ("noise.kind", "purple", "noise.kind: Input should be 'white', 'pink', 'brown', 'babble' or 'files'"),
        ("data.tts.speakers", 0, "data.tts.speakers: Input should be greater than or equal to 1"),
        ("data.downmix", "yes", "data.downmix: Input should be a valid boolean"),
        ("data.on_bad_file", "ignore", "data.on_bad_file: Input should be 'error' or 'skip' (got 'ignore')"),
        ("data.speakers", ["1"], "data.speakers.0: String should match pattern"),
        ("data.audiomnist_sha256", "abc", "data.audiomnist_sha256: String should match pattern"),
        ("noise.workers", -1, "noise.workers: Input should be greater than or equal to 0"),
        ("data.speakers", [], "data.speakers: List should have at least 1 item"),
        ("split.test_speakers", [], "split.test_speakers: List should have at least 1 item"),
        ("split.val_fraction", 1.0, "split.val_fraction: Input should be less than 1"),
        ("split.val_by", "digit", "split.val_by: Input should be 'clip' or 'speaker'"),
        ("features.size", [112], "features.size: List should have at least 2 items"),
        ("features.fmax", 30000.0, "features: Value error, need fmin < fmax <= sample_rate / 2 = 24000"),
        ("features.hop_length", 4096, "features: Value error, hop_length must not exceed n_fft"),
        ("features.dtype", "float64", "features.dtype: Input should be 'float16' or 'float32'"),
    ],
)
def test_bad_values_are_named_with_what_is_allowed(dotted, value, message):
    with pytest.raises(PipelineError) as error:
        parse_params(with_value(dotted, value), "params.yaml")
    assert str(error.value).startswith("params.yaml: ")
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_a_missing_key_is_an_error():
    raw = copy.deepcopy(RAW)
    del raw["noise"]["seed"]
    with pytest.raises(PipelineError, match="noise.seed: missing"):
        parse_params(raw)


def test_unreadable_files_are_named(tmp_path):
    with pytest.raises(PipelineError, match="nowhere.yaml: cannot read"):
        load_params(tmp_path / "nowhere.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("data: [unclosed\n")
    with pytest.raises(PipelineError, match="broken.yaml: not valid YAML"):
        load_params(broken)


def _declared_params(stage: dict) -> set[str]:
    return {entry for entry in stage.get("params", []) if isinstance(entry, str)}


# what the conditions stage reads and evaluate does not: evaluate names the condition of its own test clips only
CONDITIONS_ONLY = {"evaluate.noise_kinds", "evaluate.sweep_kinds", "evaluate.snr_sweep", "evaluate.sweep_reps"}


@pytest.mark.parametrize(
    "stage, sections, not_read",
    [
        ("corpus", ["data"], set()),
        ("mix", ["noise"], set()),
        ("split", ["split"], set()),
        ("featurize", ["features"], set()),
        ("train", ["features", "noise", "model", "train"], {"noise.snr_db", "noise.seed"}),
        ("evaluate", ["noise", "evaluate"], {"noise.seed", "noise.babble_talkers", "noise.dir"} | CONDITIONS_ONLY),
        ("conditions", ["noise", "evaluate"], {"noise.kind", "evaluate.age_bands", "evaluate.test_reps"}),
        ("samples", ["samples"], set()),
        ("natural", ["natural"], set()),
    ],
)
def test_each_stage_declares_every_param_it_reads_except_workers_and_checkpoint_every(stage, sections, not_read):
    """A param missing from dvc.yaml would change outputs without DVC rerunning the stage."""
    declared = _declared_params(yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"][stage])
    expected = {
        f"{section}.{name}"
        for section in sections
        for name in Params.model_fields[section].annotation.model_fields
        if name not in ("workers", "checkpoint_every")
    } - not_read
    assert declared == expected


def test_params_is_a_leaf_that_loads_no_heavy_library():
    """Every stage imports params: it must not pull in what only some stages need."""
    heavy = ("torch", "librosa", "numpy", "scipy", "pandas", "cv2", "espeakng_loader", "soundfile")
    probe = "import sys, audiomnist_denoise.params; print(' '.join(sorted(sys.modules)))"
    loaded = set(
        subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    )
    assert not {module.split(".")[0] for module in loaded} & set(heavy)
    project = {module for module in loaded if module.startswith("audiomnist_denoise.")}
    assert project == {"audiomnist_denoise.params", "audiomnist_denoise.errors"}
