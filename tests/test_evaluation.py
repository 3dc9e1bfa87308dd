"""Evaluation: per-clip losses, means per group, age bands, flat metrics, figures, and the evaluate stage end to end."""

import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
import yaml
from conftest import REPO, make_corpus, new_unet, speaker_entry, tone
from torch import nn

from audiomnist_denoise.audio.spectral import si_sdr
from audiomnist_denoise.data.corpus import META_FILE, clean_metadata
from audiomnist_denoise.errors import PipelineError
from audiomnist_denoise.evaluation.clip_sets import evaluated_clips
from audiomnist_denoise.evaluation.metrics import STOI_RATE, at_stoi_rate, stoi_concatenated
from audiomnist_denoise.evaluation.spectrogram_mse import (
    CLIP_COLUMNS,
    age_band_labels,
    age_bands,
    clip_mse,
    clip_table,
    flat_metrics,
    group_means,
    score_spectrograms,
)
from audiomnist_denoise.features.cache import CLEAN_FILE, INDEX_FILE, NOISY_FILE, IndexRow
from audiomnist_denoise.model.checkpoint import load_checkpoint, save_checkpoint
from audiomnist_denoise.model.unet import predict
from audiomnist_denoise.names import METHODS, QUALITY_METRICS
from audiomnist_denoise.params import load_params
from audiomnist_denoise.reporting.plots import loss_bars

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CPU = torch.device("cpu")
# Speakers of the small corpora below: (gender, accent, age as the metadata file gives it, split).
SPEAKERS = {
    "01": ("male", "German", 30, "train/val"),
    "02": ("female", "english", "22", "train/val"),
    "03": ("male", "german", "1234", "test"),  # an impossible age: missing after cleaning
    "04": ("female", "American", 45, "test"),
}
DIGITS, REPS = (0, 1, 2), (0, 1)


def metadata_entries(speakers=SPEAKERS) -> dict[str, dict]:
    return {
        speaker: speaker_entry(gender=gender, accent=accent, age=age)
        for speaker, (gender, accent, age, _) in speakers.items()
    }


def corpus_tables() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Index, split and clean metadata of 4 speakers x 3 digits x 2 reps; rep 0 of a non-test speaker is train."""
    clips = [(digit, speaker, rep) for speaker in SPEAKERS for digit in DIGITS for rep in REPS]
    index = pd.DataFrame(
        {
            "clip_id": [f"{digit}_{speaker}_{rep}" for digit, speaker, rep in clips],
            "speaker": [speaker for _, speaker, _ in clips],
            "digit": [digit for digit, _, _ in clips],
            "rep": [rep for _, _, rep in clips],
        }
    )
    is_test = index.speaker.map(lambda speaker: SPEAKERS[speaker][3] == "test")
    split = index.assign(split=np.where(is_test, "test", np.where(index.rep == 0, "train", "val")))
    metadata, _ = clean_metadata(metadata_entries())
    return index, split, metadata


def hand_table() -> pd.DataFrame:
    """A clip table with losses chosen so that every mean is known by hand."""
    return pd.DataFrame(
        {
            "split": ["test", "test", "test", "test", "val"],
            "digit": [2, 1, 2, 1, 1],
            "speaker": ["04", "03", "03", "04", "01"],
            "mse": [0.2, 0.1, 0.2, 0.3, 0.9],
            "identity_mse": [0.5, 1.0, 0.5, 1.0, 0.9],
        }
    )


# --- per-clip losses


def test_clip_mse_is_zero_for_a_perfect_output_and_the_squared_offset_otherwise():
    targets = np.random.default_rng(0).uniform(0, 0.8, (3, 8, 8)).astype(np.float32)
    assert clip_mse(targets, targets).tolist() == [0.0, 0.0, 0.0]
    assert clip_mse(targets + np.float32(0.1), targets) == pytest.approx([0.01] * 3, rel=1e-6)
    exact = np.full((2, 4, 4), 0.5, np.float16)  # a dyadic offset is exact in float16 and float32
    assert clip_mse(exact + np.float16(0.125), exact).tolist() == [0.015625, 0.015625]


class Offset(nn.Module):
    """A stand-in model that adds a constant to its input."""

    def __init__(self, offset: float):
        super().__init__()
        self.offset = offset

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.offset


def test_score_spectrograms_gives_model_and_identity_loss_of_the_chosen_rows_in_batches():
    clean = (np.arange(5 * 4 * 4).reshape(5, 4, 4) % 8 / 16).astype(np.float16)  # multiples of 1/16: exact
    noisy = clean + np.float16(0.25)
    rows = np.array([0, 2, 3, 4])
    model_mse, identity_mse = score_spectrograms(Offset(0.125), clean, noisy, rows, batch_size=3, device=CPU)
    assert identity_mse.tolist() == [0.0625] * 4
    assert model_mse.tolist() == [0.140625] * 4  # (0.25 + 0.125) ** 2
    model_mse, identity_mse = score_spectrograms(nn.Identity(), clean, noisy, rows, batch_size=2, device=CPU)
    assert model_mse.tolist() == identity_mse.tolist()


# --- age bands


def test_age_band_labels_name_each_band_in_whole_years():
    assert age_band_labels([25, 30, 40]) == ["<25", "25-29", "30-39", "40+"]
    assert age_band_labels([25, 26]) == ["<25", "25", "26+"]
    assert age_band_labels([18]) == ["<18", "18+"]


@pytest.mark.parametrize("edges", [[], [30, 25], [25, 30, 30]])
def test_bad_age_band_edges_are_refused_naming_the_param(edges):
    with pytest.raises(PipelineError, match=r"^evaluate\.age_bands: .*strictly increasing"):
        age_band_labels(edges)


def test_age_bands_put_each_age_in_its_band_and_missing_ages_in_unknown():
    ages = pd.Series([np.nan, 24, 25, 29, 30, 39.0, 40, 80])
    bands = age_bands(ages, [25, 30, 40])
    assert bands.tolist() == ["unknown", "<25", "25-29", "25-29", "30-39", "30-39", "40+", "40+"]
    assert bands.cat.categories.tolist() == ["<25", "25-29", "30-39", "40+", "unknown"]


def test_age_band_groups_sort_by_age_with_unknown_last_and_skip_empty_bands():
    table = pd.DataFrame({"age": [np.nan, 45.0, 22.0, 41.0], "mse": [1.0, 2.0, 3.0, 4.0], "identity_mse": [1.0] * 4})
    table["age_band"] = age_bands(table.age, [25, 30, 40])
    means = group_means(table, "age_band")
    assert means.age_band.astype(str).tolist() == ["<25", "40+", "unknown"]
    assert means.mse.tolist() == [3.0, 3.0, 1.0]
    assert means.clips.tolist() == [1, 2, 1]


# --- group means and metrics


def test_group_means_match_a_hand_computation():
    test = hand_table().query("split == 'test'")
    by_digit = group_means(test, "digit")
    assert by_digit.columns.tolist() == ["digit", "mse", "identity_mse", "mse_ratio", "clips"]
    assert by_digit.digit.tolist() == [1, 2]
    assert by_digit.mse.tolist() == pytest.approx([0.2, 0.2])
    assert by_digit.identity_mse.tolist() == pytest.approx([1.0, 0.5])
    assert by_digit.mse_ratio.tolist() == pytest.approx([0.2, 0.4])
    assert by_digit.clips.tolist() == [2, 2]
    by_speaker = group_means(test, "speaker")
    assert by_speaker.speaker.tolist() == ["03", "04"]
    assert by_speaker.mse.tolist() == pytest.approx([0.15, 0.25])
    assert by_speaker.identity_mse.tolist() == pytest.approx([0.75, 0.75])


def test_flat_metrics_give_readable_keys_and_rounded_plain_numbers():
    metrics = flat_metrics(hand_table())
    assert metrics == {
        "test.mse": 0.2,
        "test.identity_mse": 0.75,
        "test.mse_ratio": 0.266667,  # 6 significant digits
        "test.clips": 4,
        "val.mse": 0.9,
        "val.identity_mse": 0.9,
        "val.mse_ratio": 1.0,
        "val.clips": 1,
        "test.digit.1": 0.2,
        "test.digit.2": 0.2,
    }
    assert all(type(value) is (int if key.endswith(".clips") else float) for key, value in metrics.items())


def test_a_zero_identity_loss_leaves_the_ratio_undefined_not_infinite():
    table = hand_table().assign(identity_mse=0.0)
    metrics = flat_metrics(table)
    assert metrics["test.mse_ratio"] is None
    json.loads(json.dumps(metrics, allow_nan=False))


# --- the clip table


def test_clip_table_keeps_val_and_test_clips_with_their_feature_rows_and_speakers():
    index, split, metadata = corpus_tables()
    table = clip_table(index, split.sample(frac=1, random_state=0), metadata, [25, 30, 40])
    assert table.columns.tolist() == CLIP_COLUMNS
    assert set(table.split) == {"val", "test"}
    assert len(table) == len(split[split.split != "train"])
    assert (index.clip_id.to_numpy()[table.row] == table.clip_id).all()  # rows point into the feature arrays
    assert table.row.is_monotonic_increasing
    by_speaker = table.drop_duplicates("speaker").set_index("speaker")
    assert by_speaker.gender.to_dict() == {"01": "male", "02": "female", "03": "male", "04": "female"}
    assert by_speaker.accent.to_dict() == {"01": "german", "02": "english", "03": "german", "04": "american"}
    assert by_speaker.age_band.astype(str).to_dict() == {"01": "30-39", "02": "<25", "03": "unknown", "04": "40+"}


@pytest.mark.parametrize("test_reps", [1, None])
def test_the_evaluated_test_set_is_each_speakers_lowest_repetitions_and_every_val_clip(test_reps, tmp_path):
    index, split, _ = corpus_tables()
    split.to_csv(tmp_path / "split.csv", index=False)
    (tmp_path / META_FILE).write_text(json.dumps(metadata_entries()))
    table = evaluated_clips(index, tmp_path, tmp_path / "split.csv", tmp_path, [25], test_reps)
    test = table[table.split == "test"]
    reps = {int(clip_id.rsplit("_", 1)[1]) for clip_id in test.clip_id}
    assert reps == ({0} if test_reps == 1 else {0, 1})
    assert len(test) == 2 * len(DIGITS) * len(reps)  # every digit of both test speakers
    assert (table.split == "val").sum() == (split.split == "val").sum()
    assert (index.clip_id.to_numpy()[table.row] == table.clip_id).all()


def test_no_test_clips_is_an_error_naming_the_split():
    index, split, metadata = corpus_tables()
    split = split.assign(split=split.split.replace("test", "val"))
    with pytest.raises(PipelineError, match=r"^data/split\.csv: no test clips"):
        clip_table(index, split, metadata, [25], split_source="data/split.csv")


def test_a_test_speaker_without_metadata_is_an_error_naming_the_file():
    index, split, metadata = corpus_tables()
    with pytest.raises(PipelineError, match=r"^meta\.txt: no entry for evaluated speaker\(s\) 04$"):
        clip_table(index, split, metadata[metadata.speaker != "04"], [25], metadata_source="meta.txt")


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda index, split: (index.iloc[1:], split), r"1 only in the split \(e\.g\. 0_01_0\)"),
        (lambda index, split: (index, split.iloc[:-1]), r"1 only in the features, 0 only in the split"),
        (lambda index, split: (index, pd.concat([split, split.iloc[:1]])), r"^split: clip 0_01_0 appears more than"),
    ],
)
def test_features_and_split_must_hold_the_same_clips(change, message):
    index, split, metadata = corpus_tables()
    with pytest.raises(PipelineError, match=message):
        clip_table(*change(index, split), metadata, [25])


def test_bad_age_edges_fail_before_the_data_is_checked():
    index, split, metadata = corpus_tables()
    with pytest.raises(PipelineError, match=r"^evaluate\.age_bands"):
        clip_table(index, split.iloc[:0], metadata, [40, 30])


# --- figures


def test_loss_bars_write_the_same_valid_png_every_time(tmp_path: Path):
    import matplotlib.pyplot as plt

    means = group_means(hand_table().query("split == 'test'"), "speaker")
    first, second = tmp_path / "plots" / "first.png", tmp_path / "plots" / "second.png"
    loss_bars(means, "speaker", first, "Mean test loss per speaker")
    loss_bars(means, "speaker", second, "Mean test loss per speaker")
    data = first.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and data[12:16] == b"IHDR" and data.endswith(b"IEND\xaeB`\x82")
    assert data == second.read_bytes()
    assert sorted(path.name for path in first.parent.iterdir()) == ["first.png", "second.png"]  # no partial files
    assert plt.get_fignums() == []  # nothing left open


# --- the stage, end to end


def write_project(root: Path, size: int = 16) -> dict[str, np.ndarray]:
    """A project folder with a tiny feature cache, split, metadata, params.yaml and an untrained model."""
    index, split, _ = corpus_tables()
    rng = np.random.default_rng(0)
    clean = rng.uniform(0, 1, (len(index), size, size)).astype(np.float16)
    noisy = np.clip(clean + rng.normal(0, 0.2, clean.shape), 0, 1).astype(np.float16)
    features = root / "data" / "features"
    features.mkdir(parents=True)
    np.save(features / CLEAN_FILE, clean)
    np.save(features / NOISY_FILE, noisy)
    rows = [
        asdict(IndexRow(row.clip_id, row.speaker, row.digit, row.rep, 48000, 0.5, 256, 40, -60.0, 20.0, -30.0, 21.0))
        for row in index.itertuples()
    ]
    pd.DataFrame(rows).to_csv(features / INDEX_FILE, index_label="row", float_format="%.6f")
    split.to_csv(root / "data" / "split.csv", index=False)
    (root / "data" / "raw").mkdir()
    (root / "data" / "raw" / META_FILE).write_text(json.dumps(metadata_entries(), indent=4))
    audio = write_recordings(root / "data", index)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["evaluate"] |= {"griffin_lim_iters": 2, "workers": 1, "noise_kinds": ["white"], "sweep_kinds": ["white"]}
    params["evaluate"]["snr_sweep"] = [0]
    make_corpus(root / "data" / "natural", speakers=("61",), digits=(0, 1), reps=1, rate=16000)
    params["features"] = AUDIO_FEATURES  # as the model was trained with: the references stage reads them
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    config = {"model": {"channels": [4, 8], "init": "kaiming", "output": "sigmoid"}, "features": AUDIO_FEATURES}
    save_checkpoint(root / "models" / "unet.pt", new_unet(**config["model"], seed=0), config)
    return {"clean": clean, "noisy": noisy, "split": split.split.to_numpy(), "digit": index.digit.to_numpy()} | audio


# The feature settings recorded in the stage test's checkpoint: what its speech-quality part uses.
AUDIO_FEATURES = (
    load_params(REPO / "params.yaml")
    .features.model_copy(update={"sample_rate": 16000, "n_mels": 32, "n_fft": 512, "hop_length": 128, "size": [16, 16]})
    .model_dump()
)


def write_recordings(data: Path, index: pd.DataFrame) -> dict[str, list[np.ndarray]]:
    """A clean tone and a noisy copy (float32, as the mix stage writes) of every clip, at 16 kHz."""
    rng = np.random.default_rng(1)
    audio = {"clean_audio": [], "noisy_audio": []}
    for row in index.itertuples():
        clean = tone(0.6, 16000, 120 + 30 * row.digit, seed=row.rep)
        noisy = (clean + 0.05 * rng.standard_normal(len(clean))).astype(np.float32)
        for folder, samples in (("raw", clean), ("noisy", noisy)):
            path = data / folder / row.speaker / f"{row.clip_id}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, samples, 16000, subtype="FLOAT")
        audio["clean_audio"].append(clean)
        audio["noisy_audio"].append(noisy)
    return audio


def run_stage(root: Path) -> subprocess.CompletedProcess:
    """The `evaluate` stage, after the `references` and `conditions` stages it reads (the result of the first that
    fails)."""
    for stage in ("references", "conditions", "evaluate"):
        result = subprocess.run(
            [sys.executable, str(REPO / "stages" / f"{stage}.py")], cwd=root, capture_output=True, text=True
        )
        if result.returncode:
            return result
    return result


def test_evaluate_stage_writes_metrics_tables_and_figures_that_agree_with_a_direct_computation(tmp_path: Path):
    data = write_project(tmp_path)
    result = run_stage(tmp_path)
    assert result.returncode == 0, result.stderr
    assert "test MSE" in result.stderr and "ratio" in result.stderr

    model, _ = load_checkpoint(tmp_path / "models" / "unet.pt", CPU)
    test = data["split"] == "test"
    expected_mse = clip_mse(predict(model, data["noisy"][test], 5, CPU), data["clean"][test])
    expected_identity = clip_mse(data["noisy"][test], data["clean"][test])
    expected_by_digit = [expected_mse[data["digit"][test] == digit].mean() for digit in DIGITS]

    metrics = json.loads((tmp_path / "metrics" / "eval.json").read_text())
    assert metrics["test.clips"] == test.sum() == 12
    assert metrics["val.clips"] == (data["split"] == "val").sum() == 6
    assert metrics["test.mse"] == pytest.approx(expected_mse.mean(), rel=1e-5)
    assert metrics["test.identity_mse"] == pytest.approx(expected_identity.mean(), rel=1e-5)
    assert metrics["test.mse_ratio"] == pytest.approx(expected_mse.mean() / expected_identity.mean(), rel=1e-5)
    assert [metrics[f"test.digit.{digit}"] for digit in DIGITS] == pytest.approx(expected_by_digit, rel=1e-5)

    plots = tmp_path / "plots" / "eval"
    assert sorted(path.name for path in plots.iterdir()) == [
        "by_accent.csv",
        "by_age.csv",
        "by_digit.csv",
        "by_gender.csv",
        "by_speaker.csv",
        "loss_by_digit.png",
        "loss_by_speaker.png",
    ]
    by_digit = pd.read_csv(plots / "by_digit.csv")
    assert by_digit.columns.tolist()[:4] == ["digit", "mse", "identity_mse", "clips"]
    assert by_digit.columns.tolist()[4:] == [f"{m}_{metric}" for m in METHODS for metric in ("si_sdr", "pesq", "stoi")]
    assert by_digit.digit.tolist() == list(DIGITS)
    assert by_digit.clips.tolist() == [4, 4, 4]
    assert by_digit.mse.tolist() == pytest.approx(expected_by_digit, rel=1e-5)
    by_speaker = pd.read_csv(plots / "by_speaker.csv", dtype={"speaker": str})
    assert by_speaker.speaker.tolist() == ["03", "04"]
    assert by_speaker.mse.tolist() == pytest.approx([expected_mse[:6].mean(), expected_mse[6:].mean()], rel=1e-5)
    assert pd.read_csv(plots / "by_age.csv").age_band.tolist() == ["40+", "unknown"]
    assert pd.read_csv(plots / "by_gender.csv").gender.tolist() == ["female", "male"]
    assert pd.read_csv(plots / "by_accent.csv").accent.tolist() == ["american", "german"]
    for figure in ("loss_by_digit.png", "loss_by_speaker.png"):
        assert (plots / figure).read_bytes().startswith(PNG_SIGNATURE)

    # Speech quality of every method on the test clips, from the recordings.
    assert all(metrics[f"test.{method}.{metric}"] is not None for method in METHODS for metric in QUALITY_METRICS)
    clean, noisy = ([data[name][i] for i in np.flatnonzero(test)] for name in ("clean_audio", "noisy_audio"))
    expected_noisy_sdr = np.mean([si_sdr(reference, audio) for reference, audio in zip(clean, noisy, strict=True)])
    assert metrics["test.noisy.si_sdr"] == pytest.approx(expected_noisy_sdr, rel=1e-5)
    clean_10k, noisy_10k = ([at_stoi_rate(clip, 16000) for clip in clips] for clips in (clean, noisy))
    per_speaker = [stoi_concatenated(clean_10k[k : k + 6], noisy_10k[k : k + 6], STOI_RATE) for k in (0, 6)]
    assert metrics["test.noisy.stoi"] == pytest.approx(np.mean(per_speaker), rel=1e-5)
    assert metrics["test.oracle_mask.si_sdr"] > metrics["test.noisy.si_sdr"]
    assert by_speaker.noisy_stoi.tolist() == pytest.approx(per_speaker, rel=1e-5)


def test_evaluate_stage_stops_with_one_line_when_a_test_speaker_lacks_metadata(tmp_path: Path):
    write_project(tmp_path)
    entries = metadata_entries()
    del entries["04"]
    (tmp_path / "data" / "raw" / META_FILE).write_text(json.dumps(entries))
    result = run_stage(tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: data/raw/{META_FILE}: no entry for evaluated speaker(s) 04"
    assert not (tmp_path / "metrics").exists()
