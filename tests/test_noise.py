"""The mix stage: noise at the chosen SNR, seeded per clip, of the right colour, never clipped."""

from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import make_corpus

from audiomnist_denoise.audio.io import read_audio
from audiomnist_denoise.data.corpus import Clip, find_clips
from audiomnist_denoise.data.noise import (
    NoiseMaker,
    colored_noise,
    mix_clip,
    mix_corpus,
    mix_corpus_clip,
    noise_maker,
    snr_db,
)
from audiomnist_denoise.errors import PipelineError

KINDS = ("white", "pink", "brown", "babble", "files")
TARGET_DB = -8.0  # the project's default
SNR_TOLERANCE_DB = 0.05
RATE = 16000


# --- helpers -----------------------------------------------------------------------------


def sine(seconds: float, rate: int, frequency: float, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return amplitude * np.sin(2 * np.pi * frequency * t)


def write_stereo_hum(path: Path) -> None:
    """2 s, 44.1 kHz, 600 Hz on the left and 1400 Hz on the right."""
    sf.write(path, np.stack([sine(2.0, 44100, 600), sine(2.0, 44100, 1400)], axis=1), 44100, subtype="PCM_16")


def write_short_tone(path: Path) -> None:
    """0.1 s of 500 Hz at 8 kHz: shorter than the clips and at another rate."""
    sf.write(path, sine(0.1, 8000, 500), 8000, subtype="PCM_16")


def read(path: Path) -> tuple[np.ndarray, int]:
    audio, rate = sf.read(path, dtype="float64")
    return audio, rate


def measured_snr(clean: np.ndarray, noisy: np.ndarray) -> float:
    """Whole-clip SNR computed here, independently of noise.power / noise.snr_db."""
    return 10 * np.log10(np.mean(clean**2) / np.mean((noisy - clean) ** 2))


def noise_in(raw: Path, noisy: Path, clip: Clip) -> np.ndarray:
    """The noise actually stored for a clip: noisy file minus clean file."""
    return read(noisy / clip.path)[0] - read(raw / clip.path)[0]


def wav_files(root: Path) -> list[str]:
    return sorted(path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file())


def mix(
    raw: Path,
    target: Path,
    kind: str,
    noise_dir: Path | None = None,
    seed: int = 0,
    workers: int = 1,
    talkers: int = 6,
    target_db: float = TARGET_DB,
) -> np.ndarray:
    maker = noise_maker(kind, raw, talkers, noise_dir if noise_dir is not None else raw.parent / "no-noise-dir")
    return mix_corpus(raw, target, maker, target_db, seed, workers)


def band_fraction(signal: np.ndarray, rate: int, frequency: float, half_width: float = 25.0) -> float:
    """Share of the signal's (Hann-windowed) power within `half_width` Hz of `frequency`."""
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(len(signal)))) ** 2
    frequencies = np.fft.rfftfreq(len(signal), 1 / rate)
    return spectrum[np.abs(frequencies - frequency) <= half_width].sum() / spectrum.sum()


def spectrum_slope(signal: np.ndarray, low: float = 0.002, high: float = 0.2) -> float:
    """Least-squares slope of log power vs log frequency (cycles/sample) over [low, high]."""
    power = np.abs(np.fft.rfft(signal)) ** 2
    frequencies = np.fft.rfftfreq(len(signal))
    band = (frequencies >= low) & (frequencies <= high)
    return float(np.polyfit(np.log10(frequencies[band]), np.log10(power[band]), 1)[0])


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1])


# --- fixtures ----------------------------------------------------------------------------


@pytest.fixture
def noise_dir(tmp_path: Path) -> Path:
    """Recordings for kind `files`: a stereo 44.1 kHz flac (downmix, resampling) and a mono
    8 kHz wav of 0.1 s, shorter than the 0.3 s clips (tiling)."""
    folder = tmp_path / "noise"
    (folder / "sub").mkdir(parents=True)  # searched recursively
    write_stereo_hum(folder / "sub" / "hum.FLAC")
    write_short_tone(folder / "short.wav")
    (folder / "README.md").write_text("not a recording")
    return folder


# --- SNR, format, layout -----------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_every_noisy_clip_hits_the_target_snr(kind, corpus, noise_dir, tmp_path):
    target = tmp_path / "noisy"
    snrs = mix(corpus, target, kind, noise_dir)

    clips = find_clips(corpus)
    # Only the clips, at the same relative paths (the metadata file is not a clip).
    assert wav_files(target) == sorted(clip.path for clip in clips)
    assert len(snrs) == len(clips)
    for clip, reported in zip(clips, snrs, strict=True):
        clean, clean_rate = read(corpus / clip.path)
        noisy, noisy_rate = read(target / clip.path)
        info = sf.info(target / clip.path)
        assert (info.format, info.subtype) == ("WAV", "FLOAT"), clip.path
        assert noisy_rate == clean_rate and len(noisy) == len(clean), clip.path
        assert measured_snr(clean, noisy) == pytest.approx(TARGET_DB, abs=SNR_TOLERANCE_DB), clip.path
        assert reported == pytest.approx(TARGET_DB, abs=SNR_TOLERANCE_DB), clip.path


@pytest.mark.parametrize("target_db", [-20.0, 0.0, 15.5])
def test_snr_follows_the_target(target_db, corpus, tmp_path):
    # A mistaken dB conversion (10**(db/20), a sign) is only exposed away from one value.
    target = tmp_path / "noisy"
    mix(corpus, target, "white", target_db=target_db)
    for clip in find_clips(corpus)[:5]:
        clean, _ = read(corpus / clip.path)
        noisy, _ = read(target / clip.path)
        assert measured_snr(clean, noisy) == pytest.approx(target_db, abs=SNR_TOLERANCE_DB)


@pytest.mark.parametrize(
    ("name", "write", "expected"),
    [
        # Left and right carry different tones: a downmix keeps both, half the power each.
        ("hum.flac", write_stereo_hum, {600: 0.5, 1400: 0.5}),
        # 0.1 s at 8 kHz: tiled to 0.3 s and resampled, still one 500 Hz tone.
        ("short.wav", write_short_tone, {500: 1.0}),
    ],
)
def test_files_noise_is_downmixed_resampled_and_tiled(name, write, expected, corpus, tmp_path):
    folder = tmp_path / "noise"
    folder.mkdir()
    write(folder / name)
    target = tmp_path / "noisy"
    mix(corpus, target, "files", folder)
    for clip in find_clips(corpus)[::7]:
        noise = noise_in(corpus, target, clip)
        for frequency, share in expected.items():
            # Wrong or no resampling would move the tone (e.g. 600 Hz -> 218 Hz).
            assert band_fraction(noise, RATE, frequency) == pytest.approx(share, abs=0.1), (clip.path, frequency)


# --- determinism -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["brown", "babble", "files"])
def test_mix_is_byte_identical_across_worker_counts_and_regenerable_per_clip(kind, corpus, noise_dir, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    snrs_one = mix(corpus, one, kind, noise_dir, seed=3, workers=1)
    snrs_two = mix(corpus, two, kind, noise_dir, seed=3, workers=2)

    assert wav_files(one) == wav_files(two)
    for relative in wav_files(one):
        assert (one / relative).read_bytes() == (two / relative).read_bytes(), relative
    np.testing.assert_array_equal(snrs_one, snrs_two)

    # One clip alone, with a fresh maker, gives back exactly the noise in its file.
    clip = find_clips(corpus)[13]
    clean, rate = read_audio(corpus / clip.path)
    maker = noise_maker(kind, corpus, 6, noise_dir)
    noisy, noise = mix_clip(clean, rate, clip, maker, TARGET_DB, seed=3)
    stored, _ = sf.read(one / clip.path, dtype="float32")
    np.testing.assert_array_equal(noisy, stored)
    np.testing.assert_allclose(noise, noise_in(corpus, one, clip), rtol=0, atol=1e-6)


@pytest.mark.parametrize("kind", ["white", "babble"])
def test_remixing_one_clip_as_the_sweep_does_matches_the_mix_stage(kind, corpus, noise_dir, tmp_path):
    """The SNR sweep remixes test clips on the fly; at the mix stage's SNR and seed it must give its very files."""
    mix(corpus, tmp_path / "mixed", kind, noise_dir, seed=5, workers=2)
    maker = noise_maker(kind, corpus, 6, noise_dir)
    for clip in find_clips(corpus)[::7]:
        clean, noisy, rate = mix_corpus_clip(corpus, clip, maker, TARGET_DB, seed=5)
        stored, stored_rate = sf.read(tmp_path / "mixed" / clip.path, dtype="float32")
        assert rate == stored_rate
        np.testing.assert_array_equal(noisy, stored)
        np.testing.assert_array_equal(clean, read_audio(corpus / clip.path)[0])
    other_snr = mix_corpus_clip(corpus, clip, maker, TARGET_DB + 10, seed=5)[1]
    assert snr_db(clean, other_snr.astype(np.float64) - clean) == pytest.approx(TARGET_DB + 10, abs=0.01)


def test_each_clip_and_each_seed_get_their_own_noise(corpus, tmp_path):
    clips = find_clips(corpus)
    mix(corpus, tmp_path / "seed0", "white", seed=0)
    mix(corpus, tmp_path / "seed1", "white", seed=1)
    seed0 = {clip: noise_in(corpus, tmp_path / "seed0", clip) for clip in clips}
    seed1 = {clip: noise_in(corpus, tmp_path / "seed1", clip) for clip in clips}

    # Independent white noise of 4800 samples correlates ~ +-0.015; a shared seed gives 1.
    for a, b in combinations(clips, 2):
        assert abs(correlation(seed0[a], seed0[b])) < 0.2, (a.id, b.id)
    for clip in clips:
        assert abs(correlation(seed0[clip], seed1[clip])) < 0.2, clip.id


# --- colour ------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "slope"), [("white", 0.0), ("pink", -1.0), ("brown", -2.0)])
def test_noise_colour_has_the_expected_spectral_slope(kind, slope):
    rng = np.random.default_rng(7)
    noise = NoiseMaker(kind)(Clip("01", 0, 0), 2**17, RATE, rng)
    assert spectrum_slope(noise) == pytest.approx(slope, abs=0.15)


@pytest.mark.parametrize("exponent", [0.5, 1.0, 2.0])
def test_colored_noise_follows_its_exponent_and_has_no_dc(exponent):
    noise = colored_noise(2**17 + 1, exponent, np.random.default_rng(1))  # odd length too
    assert len(noise) == 2**17 + 1
    assert spectrum_slope(noise) == pytest.approx(-exponent, abs=0.15)
    assert abs(noise.mean()) < 1e-9 * noise.std()


# --- babble ------------------------------------------------------------------------------


@pytest.fixture
def tone_corpus(tmp_path: Path) -> tuple[Path, dict[str, float]]:
    """Three speakers, each speaking only one pure tone: a whole number of periods per clip,
    so a babble crop (a circular shift) keeps every tone in its own FFT bin."""
    frequencies = {"01": 400.0, "02": 1000.0, "03": 2500.0}
    root = tmp_path / "tones"
    for speaker, frequency in frequencies.items():
        (root / speaker).mkdir(parents=True)
        for digit in range(2):
            for rep in range(2):
                sf.write(
                    root / speaker / f"{digit}_{speaker}_{rep}.wav", sine(0.25, RATE, frequency), RATE, subtype="PCM_16"
                )
    return root, frequencies


def test_babble_is_made_only_of_other_speakers(tone_corpus, tmp_path):
    root, frequencies = tone_corpus
    target = tmp_path / "noisy"
    mix(root, target, "babble", talkers=6)
    for clip in find_clips(root):
        noise = noise_in(root, target, clip)
        own = band_fraction(noise, RATE, frequencies[clip.speaker])
        others = sum(band_fraction(noise, RATE, f) for s, f in frequencies.items() if s != clip.speaker)
        # One of six talkers from the same speaker would put ~1/6 of the power here.
        assert own < 1e-4, clip.id
        assert others > 0.999, clip.id


def test_babble_of_a_single_speaker_is_refused(tmp_path):
    root = make_corpus(tmp_path / "one", speakers=("01",), digits=range(2), reps=1)
    target = tmp_path / "noisy"
    with pytest.raises(PipelineError, match="more than one speaker"):
        mix(root, target, "babble")
    assert not target.exists()


# --- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize("workers", [1, 2])
def test_silent_clip_is_refused_and_leaves_no_output(workers, corpus, tmp_path):
    silent = corpus / "02" / "3_02_1.wav"
    sf.write(silent, np.zeros(4800, dtype=np.float32), RATE, subtype="PCM_16")
    target = tmp_path / "noisy"
    with pytest.raises(PipelineError) as error:
        mix(corpus, target, "white", workers=workers)
    assert str(silent) in str(error.value)
    assert "SNR undefined" in str(error.value)
    assert not target.exists()
    assert list(tmp_path.glob(".noisy.partial-*")) == []


@pytest.mark.parametrize("content", ["empty", "not audio", "missing"])
def test_files_kind_without_recordings_names_noise_dir(content, corpus, tmp_path):
    folder = tmp_path / "noise"
    if content != "missing":
        folder.mkdir()
    if content == "not audio":
        (folder / "README.md").write_text("put recordings here")
    with pytest.raises(PipelineError, match="noise.dir"):
        mix(corpus, tmp_path / "noisy", "files", folder)


def test_a_noise_recording_with_an_infinite_sample_is_named_with_where(corpus, tmp_path):
    folder = tmp_path / "noise"
    folder.mkdir()
    hum = sine(1.0, 8000, 300)
    hum[4000] = -np.inf
    sf.write(folder / "hum.wav", hum, 8000, subtype="FLOAT")
    with pytest.raises(PipelineError) as error:
        mix(corpus, tmp_path / "noisy", "files", folder, workers=1)
    assert str(error.value) == f"{folder / 'hum.wav'}: non-finite sample (-inf) at sample 4000 (0.500 s) of channel 1"
    assert not (tmp_path / "noisy").exists()


# --- no clipping -------------------------------------------------------------------------


def test_loud_mix_is_stored_unclipped(tmp_path):
    root = tmp_path / "loud"
    (root / "01").mkdir(parents=True)
    clip = Clip("01", 5, 0)
    sf.write(root / clip.path, sine(0.3, RATE, 440, amplitude=0.99), RATE, subtype="PCM_16")
    target = tmp_path / "noisy"
    mix(root, target, "white", target_db=-8.0)

    clean, _ = read(root / clip.path)
    noisy, _ = read(target / clip.path)
    expected, _ = mix_clip(read_audio(root / clip.path)[0], RATE, clip, NoiseMaker("white"), -8.0, seed=0)
    assert np.abs(noisy).max() > 1.5  # noise at -8 dB on a near full-scale tone
    np.testing.assert_array_equal(noisy, expected)  # stored as computed, not limited to [-1, 1]
    assert measured_snr(clean, noisy) == pytest.approx(-8.0, abs=SNR_TOLERANCE_DB)
