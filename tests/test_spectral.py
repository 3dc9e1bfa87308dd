"""The spectral core: its NumPy and torch sides agree, and each convention (centring, dB floor, gain spread,
SI-SDR) holds."""

import librosa
import numpy as np
import pytest
import torch
from conftest import small_features, tone

from audiomnist_denoise.audio import spectral
from audiomnist_denoise.audio.spectral import (
    SpectralFrontend,
    istft,
    mel_basis,
    mel_power,
    power_db,
    si_sdr,
    si_sdr_batch,
    spread_mel_gain,
    stft,
)

FEATURES = small_features()
RATE = FEATURES.sample_rate
AUDIO = tone(0.3, RATE, 220)


def frontend() -> SpectralFrontend:
    return SpectralFrontend(FEATURES)


def test_the_numpy_stft_is_centred_with_one_frame_per_hop_and_inverts_exactly():
    spectrum = stft(AUDIO, FEATURES)
    assert spectrum.shape == (1 + FEATURES.n_fft // 2, 1 + len(AUDIO) // FEATURES.hop_length)
    np.testing.assert_allclose(istft(spectrum, FEATURES, len(AUDIO)), AUDIO, atol=1e-6)


def test_an_uncentred_stft_of_the_zero_padded_clip_is_the_centred_one():
    pad = FEATURES.n_fft // 2
    padded = np.pad(AUDIO.astype(np.float64), pad)
    np.testing.assert_array_equal(stft(padded, FEATURES, centered=False), stft(AUDIO, FEATURES))


def test_torch_and_numpy_give_the_same_stft_inverse_and_mel_power():
    ours = frontend()
    audio = torch.from_numpy(AUDIO)[None]
    spectrum = ours.stft(audio)
    np.testing.assert_allclose(spectrum[0].numpy(), stft(AUDIO, FEATURES), atol=1e-4)
    np.testing.assert_allclose(ours.istft(spectrum, len(AUDIO))[0].numpy(), AUDIO, atol=1e-5)
    mel = ours.mel(spectrum.abs().square())[0].double().numpy()
    expected = mel_power(AUDIO, FEATURES)
    np.testing.assert_allclose(mel, expected, rtol=1e-3, atol=1e-6 * expected.max())


def test_mel_power_is_librosas_melspectrogram():
    expected = librosa.feature.melspectrogram(
        y=AUDIO.astype(np.float64),
        sr=RATE,
        n_fft=FEATURES.n_fft,
        hop_length=FEATURES.hop_length,
        n_mels=FEATURES.n_mels,
        fmin=FEATURES.fmin,
        fmax=FEATURES.fmax,
    )
    np.testing.assert_allclose(
        mel_power(AUDIO, FEATURES), expected, rtol=1e-6
    )  # librosa builds its filterbank in float32


def test_the_filterbank_is_built_once_per_setting_and_read_only():
    spectral.mel_basis_of.cache_clear()
    first, second = mel_basis(FEATURES), mel_basis(FEATURES)
    assert first is second and spectral.mel_basis_of.cache_info().misses == 1
    assert mel_basis(FEATURES, np.float32).dtype == np.float32 and spectral.mel_basis_of.cache_info().misses == 2
    with pytest.raises(ValueError):
        first[0, 0] = 1.0


def test_the_db_floor_is_top_db_below_the_peak_on_both_sides():
    power = mel_power(AUDIO, FEATURES) * np.logspace(0, -12, mel_power(AUDIO, FEATURES).shape[1])
    db = power_db(power, FEATURES.top_db)
    assert db.max() == pytest.approx(10 * np.log10(power.max()))
    assert db.min() == pytest.approx(db.max() - FEATURES.top_db)
    np.testing.assert_allclose(power_db(power, None), 10 * np.log10(np.maximum(power, 1e-10)))
    torch_db = frontend().power_db(torch.from_numpy(power)[None].float())[0].double().numpy()
    np.testing.assert_allclose(torch_db, db, atol=1e-3)


def test_a_mel_gain_spreads_onto_stft_bins_alike_on_both_sides():
    frames = 5
    gain = np.random.default_rng(0).uniform(0.01, 1, size=(FEATURES.n_mels, frames))
    linear = spread_mel_gain(gain, FEATURES)
    assert linear.shape == (1 + FEATURES.n_fft // 2, frames)
    assert np.all(linear >= gain.min(axis=0) - 1e-12) and np.all(linear <= gain.max(axis=0) + 1e-12)
    np.testing.assert_allclose(spread_mel_gain(np.full_like(gain, 0.5), FEATURES), 0.5)
    spread = frontend().magnitude_gain(torch.from_numpy(gain).float()[None])[0].double().numpy()
    np.testing.assert_allclose(spread, np.sqrt(linear), rtol=1e-5)


def test_si_sdr_is_scale_invariant_and_known_at_a_set_noise_level():
    rng = np.random.default_rng(1)
    clean = AUDIO.astype(np.float64)
    noise = rng.standard_normal(len(clean))
    noise *= np.linalg.norm(clean - clean.mean()) / np.linalg.norm(noise - noise.mean()) / 10  # 20 dB below
    assert si_sdr(clean, clean + noise) == pytest.approx(20, abs=0.2)
    assert si_sdr(clean, 3 * (clean + noise)) == pytest.approx(si_sdr(clean, clean + noise))
    with pytest.raises(ValueError, match="equal lengths"):
        si_sdr(clean, clean[:-1])


def test_the_batched_torch_si_sdr_is_the_numpy_one_over_each_clips_own_samples():
    rng = np.random.default_rng(3)
    clean = [tone(0.2, RATE, 180), tone(0.3, RATE, 260)]
    noisy = [audio + 0.1 * rng.standard_normal(len(audio)).astype(np.float32) for audio in clean]
    longest = max(len(audio) for audio in clean)
    padded = [torch.from_numpy(np.stack([np.pad(a, (0, longest - len(a))) for a in group])) for group in (clean, noisy)]
    values = si_sdr_batch(*padded, torch.tensor([len(audio) for audio in clean]))
    expected = [si_sdr(reference, estimate) for reference, estimate in zip(clean, noisy, strict=True)]
    np.testing.assert_allclose(values.numpy(), expected, atol=1e-3)
