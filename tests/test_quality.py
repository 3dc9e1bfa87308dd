"""Every denoising method on the same clips, and their speech-quality scores per clip, per group and overall."""

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, new_unet

from audiomnist_denoise.audio.reconstruct import oracle_mask
from audiomnist_denoise.audio.spectral import mel_power, si_sdr
from audiomnist_denoise.data import tts
from audiomnist_denoise.data.corpus import Clip
from audiomnist_denoise.data.noise import NoiseMaker, mix_clip
from audiomnist_denoise.errors import PipelineError
from audiomnist_denoise.evaluation.methods import apply_methods, estimate_clean_mel
from audiomnist_denoise.evaluation.metrics import pesq_wideband, stoi_concatenated
from audiomnist_denoise.evaluation.speech import (
    Quality,
    group_quality,
    method_means,
    score_audio,
    score_methods,
    stoi_by_group,
)
from audiomnist_denoise.names import METHODS, MODEL_FREE, MODEL_METHODS
from audiomnist_denoise.params import load_params

RATE = 16000
SETTINGS = load_params(REPO / "params.yaml").features.model_copy(
    update={"sample_rate": RATE, "n_mels": 64, "n_fft": 512, "hop_length": 128, "size": [32, 32]}
)
CLIPS = [Clip(speaker, digit, 0) for speaker in ("01", "07") for digit in (1, 4, 8)]
CLEAN = [tts.synthesize_clip(clip.speaker, clip.digit, clip.rep, RATE, 0) / 32768.0 for clip in CLIPS]
NOISY = [mix_clip(clean, RATE, clip, NoiseMaker("white"), -5.0, 0)[0] for clean, clip in zip(CLEAN, CLIPS, strict=True)]
SPEAKERS = pd.Series([clip.speaker for clip in CLIPS], name="speaker")
MODEL = new_unet([4, 8], "kaiming", "sigmoid", seed=0).eval()
EVALUATE = load_params(REPO / "params.yaml").evaluate.model_copy(
    update={"griffin_lim_iters": 8, "griffin_lim_start": "noisy", "seed": 0, "batch_size": 64, "workers": 1}
)


@pytest.fixture(scope="module")
def outputs() -> dict[str, list[np.ndarray]]:
    return apply_methods(MODEL, CLEAN, NOISY, SETTINGS, EVALUATE, "cpu").outputs


def test_every_method_gives_audio_of_each_clips_length(outputs):
    assert list(outputs) == list(METHODS)
    for method, audio in outputs.items():
        assert [len(clip) for clip in audio] == [len(clip) for clip in CLEAN], method
        assert all(clip.dtype == np.float32 and np.all(np.isfinite(clip)) for clip in audio), method
    np.testing.assert_array_equal(outputs["noisy"][2], NOISY[2])


def test_the_methods_on_two_processes_gives_what_one_gives(outputs):
    on_two = apply_methods(MODEL, CLEAN, NOISY, SETTINGS, EVALUATE.model_copy(update={"workers": 2}), "cpu").outputs
    for method in METHODS:
        for one, two in zip(outputs[method], on_two[method], strict=True):
            np.testing.assert_allclose(two, one, atol=1e-6, err_msg=method)


def test_the_model_free_and_the_models_methods_apart_give_what_all_at_once_gives(outputs):
    free = apply_methods(None, CLEAN, NOISY, SETTINGS, EVALUATE, "cpu", MODEL_FREE)
    own = apply_methods(MODEL, CLEAN, NOISY, SETTINGS, EVALUATE, "cpu", MODEL_METHODS)
    assert list(free.outputs) == list(MODEL_FREE) and list(own.outputs) == list(MODEL_METHODS)
    assert free.estimates == [] and len(own.estimates) == len(CLEAN)
    for method in METHODS:
        part = free.outputs if method in MODEL_FREE else own.outputs
        for alone, together in zip(part[method], outputs[method], strict=True):
            np.testing.assert_array_equal(alone, together, err_msg=method)
    with pytest.raises(ValueError, match="unknown method"):
        apply_methods(MODEL, CLEAN, NOISY, SETTINGS, EVALUATE, "cpu", ("unet",))


GROUPINGS = {"speaker": SPEAKERS, "digit": pd.Series([clip.digit for clip in CLIPS], name="digit")}
CONTEXT = {"features": {"n_fft": 512}}


def _quality(outputs, methods) -> Quality:
    return score_methods(CLEAN, {m: outputs[m] for m in methods}, RATE, 1, 2, GROUPINGS, "speaker")


def test_saved_model_free_scores_joined_with_the_models_are_every_methods_scores(outputs, tmp_path):
    """What the references stage saves and evaluate joins with its own: every value as scoring all at once."""
    every = _quality(outputs, METHODS)
    clips = [clip.id for clip in CLIPS]
    _quality(outputs, MODEL_FREE).save(tmp_path, clips, CONTEXT)
    joined = Quality.load(tmp_path, clips, GROUPINGS, "speaker", CONTEXT).join(
        _quality(outputs, MODEL_METHODS), METHODS
    )
    pd.testing.assert_frame_equal(joined.scores, every.scores)
    for name in GROUPINGS:
        pd.testing.assert_frame_equal(joined.stoi[name], every.stoi[name])
    pd.testing.assert_frame_equal(joined.estoi, every.estoi)
    assert every.scores["noisy.pesq"].isna().tolist() == [False, True] * 3  # NaN survives the round trip


def test_saved_scores_for_other_clips_groups_or_settings_stop_with_one_line(outputs, tmp_path):
    clips = [clip.id for clip in CLIPS]
    _quality(outputs, ("noisy",)).save(tmp_path, clips, CONTEXT)
    with pytest.raises(PipelineError, match="scores.csv: scored other clips"):
        Quality.load(tmp_path, clips[::-1], GROUPINGS, "speaker", CONTEXT)
    with pytest.raises(PipelineError, match="context.json: made with other settings"):
        Quality.load(tmp_path, clips, GROUPINGS, "speaker", {"features": {"n_fft": 1024}})
    regrouped = GROUPINGS | {"digit": pd.Series([0, 1, 2, 3, 4, 5], name="digit")}
    with pytest.raises(PipelineError, match="stoi.csv: other groups of digit"):
        Quality.load(tmp_path, clips, regrouped, "speaker", CONTEXT)
    with pytest.raises(PipelineError, match="cannot read"):
        Quality.load(tmp_path / "missing", clips, GROUPINGS, "speaker", CONTEXT)


def test_the_oracles_are_the_clean_mel_through_each_inversion(outputs):
    """`apply_methods` computes the oracle with one BLAS thread, the direct call with every core: on CPUs whose
    BLAS splits the mel product by thread (measured: AVX2 and Haswell kernels) the two round apart by
    at most one float32 step at the clip's peak; other CPUs agree bit for bit."""
    direct = oracle_mask(CLEAN[0], NOISY[0], SETTINGS)
    np.testing.assert_allclose(outputs["oracle_mask"][0], direct, rtol=0, atol=4 * np.spacing(np.abs(direct).max()))
    assert si_sdr(CLEAN[0], outputs["oracle_mask"][0]) > si_sdr(CLEAN[0], NOISY[0]) + 5
    assert pesq_wideband(CLEAN[0], outputs["oracle_griffinlim"][0], RATE) > 3.0


def test_the_estimate_never_exceeds_the_noisy_power():
    """Noise adds power: the model's clean estimate is capped at the noisy mel, bin by bin."""
    noisy_mels = [mel_power(audio, SETTINGS) for audio in NOISY]
    estimates = estimate_clean_mel(MODEL, noisy_mels, SETTINGS, "cpu")
    for estimate, noisy_mel in zip(estimates, noisy_mels, strict=True):
        assert estimate.shape == noisy_mel.shape
        assert np.all(estimate <= noisy_mel) and np.all(estimate >= 0)


def test_clip_scores_are_si_sdr_and_pesq_of_each_method(outputs):
    scores = score_audio(CLEAN, outputs, RATE, workers=1)
    assert len(scores) == len(CLIPS)
    assert list(scores.columns) == [f"{method}.{metric}" for method in METHODS for metric in ("si_sdr", "pesq")]
    assert scores.loc[3, "noisy.si_sdr"] == pytest.approx(si_sdr(CLEAN[3], NOISY[3]))
    assert scores.loc[3, "noisy.pesq"] == pytest.approx(pesq_wideband(CLEAN[3], NOISY[3], RATE))
    assert scores["noisy.si_sdr"].mean() == pytest.approx(-5.0, abs=0.5)


def test_pesq_on_every_nth_clip_takes_the_same_clips_for_every_method(outputs):
    every = score_audio(CLEAN, outputs, RATE, 1)
    subset = score_audio(CLEAN, outputs, RATE, 1, pesq_every=2)
    pesq = [column for column in every.columns if column.endswith(".pesq")]
    pd.testing.assert_frame_equal(subset.iloc[::2], every.iloc[::2])
    assert subset.iloc[1::2][pesq].isna().all().all()
    others = [column for column in every.columns if column not in pesq]
    pd.testing.assert_frame_equal(subset[others], every[others])


def test_pesq_on_every_nth_clip_counts_within_each_joined_set(outputs):
    """The sweep joins its SNRs' clips into one list: PESQ falls on the same clips of each set."""
    joined = {method: audio[:3] * 2 for method, audio in outputs.items()}
    scores = score_audio(CLEAN[:3] * 2, joined, RATE, 1, pesq_every=2, positions=[0, 1, 2, 0, 1, 2])
    taken = scores["noisy.pesq"].notna().tolist()
    assert taken == [True, False, True, True, False, True]
    with pytest.raises(ValueError):
        score_audio(CLEAN[:3], {m: a[:3] for m, a in outputs.items()}, RATE, 1, positions=[0, 1])


def test_parallel_scoring_gives_the_same_table(outputs):
    pd.testing.assert_frame_equal(score_audio(CLEAN, outputs, RATE, 1), score_audio(CLEAN, outputs, RATE, 2))


def test_stoi_is_computed_on_each_groups_clips_joined(outputs):
    table = stoi_by_group(CLEAN, outputs, SPEAKERS, RATE, workers=1)
    assert list(table.index) == ["01", "07"] and list(table.columns) == list(METHODS)
    assert table.index.name == "speaker"
    expected = stoi_concatenated(CLEAN[3:], outputs["unet_mask"][3:], RATE)
    assert table.loc["07", "unet_mask"] == pytest.approx(expected)
    extended = stoi_by_group(CLEAN, outputs, SPEAKERS, RATE, workers=1, extended=True)
    assert extended.loc["01", "noisy"] == pytest.approx(stoi_concatenated(CLEAN[:3], NOISY[:3], RATE, extended=True))


def test_overall_means_average_clips_for_si_sdr_and_pesq_and_speakers_for_stoi():
    scores = pd.DataFrame({"a.si_sdr": [1.0, 3.0, 8.0], "a.pesq": [1.0, np.nan, 2.0]})
    stoi = pd.DataFrame({"a": [0.5, 0.7]}, index=["01", "02"])
    estoi = pd.DataFrame({"a": [0.2, 0.4]}, index=["01", "02"])
    means = method_means(scores, stoi, estoi)
    assert means.loc["a"].to_dict() == pytest.approx({"si_sdr": 4.0, "pesq": 1.5, "stoi": 0.6, "estoi": 0.3})


def test_group_tables_have_each_methods_metrics_per_group():
    scores = pd.DataFrame({"a.si_sdr": [1.0, 3.0, 8.0], "a.pesq": [1.0, 2.0, 4.0]})
    labels = pd.Series(["m", "f", "m"], name="gender")
    stoi = pd.DataFrame({"a": [0.7, 0.5]}, index=pd.Index(["f", "m"], name="gender"))
    table = group_quality(scores, labels, stoi)
    assert table.index.name == "gender" and list(table.index) == ["f", "m"]
    assert table.loc["m"].to_dict() == pytest.approx({"a_si_sdr": 4.5, "a_pesq": 2.5, "a_stoi": 0.5})
