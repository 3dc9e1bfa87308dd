"""The `denoise` command for users' own recordings: windows over long ones, any rate and channels, and its errors."""

import subprocess
import sys
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import new_unet, tone

from audiomnist_denoise.__main__ import build_parser, main
from audiomnist_denoise.audio.io import FloatWavWriter
from audiomnist_denoise.audio.spectral import mel_power
from audiomnist_denoise.denoise import (
    StreamingDenoiser,
    check_input,
    check_outputs,
    denoise_audio,
    denoise_file,
    estimate_windowed,
    plan_outputs,
    window_starts,
    window_weights,
)
from audiomnist_denoise.errors import PipelineError
from audiomnist_denoise.evaluation.methods import estimate_clean_mel
from audiomnist_denoise.fsutil import write_wav
from audiomnist_denoise.model.checkpoint import save_checkpoint
from audiomnist_denoise.params import FeatureParams

CPU = torch.device("cpu")
SETTINGS = FeatureParams(
    sample_rate=16000,
    n_mels=32,
    n_fft=512,
    hop_length=128,
    fmin=0.0,
    fmax=None,
    top_db=80.0,
    size=[32, 32],
    interpolation="linear",
    dtype="float32",
    workers=1,
)
WIDTH = SETTINGS.size[1]
MODEL_SETTINGS = {"channels": [4, 8], "init": "kaiming", "output": "sigmoid"}
MODEL = new_unet(**MODEL_SETTINGS, seed=0).eval()  # untrained: the plumbing, not the quality, is under test


def noisy_recording(seconds: float, rate: int, frequency: float, seed: int) -> np.ndarray:
    """A tone repeated every half second, plus white noise: speech-like bursts in steady noise."""
    burst = tone(0.5, rate, frequency, seed)
    audio = np.resize(burst, round(seconds * rate))
    return (audio + 0.02 * np.random.default_rng(seed).standard_normal(len(audio))).astype(np.float32)


def stereo_recording(seconds: float, rate: int) -> np.ndarray:
    """Two different channels: repeated tones on the left, a chirp on the right, both in noise."""
    chirp = 0.2 * librosa.chirp(fmin=200, fmax=3000, sr=rate, duration=seconds)
    noise = 0.02 * np.random.default_rng(7).standard_normal(len(chirp))
    return np.stack([noisy_recording(seconds, rate, 150, 1), (chirp + noise).astype(np.float32)], axis=1)


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    path = tmp_path / "models" / "unet.pt"
    save_checkpoint(path, MODEL, {"model": MODEL_SETTINGS, "features": SETTINGS.model_dump()})
    return path


def denoise_command(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "audiomnist_denoise", "denoise", *map(str, args), "--device", "cpu"]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True)


# Windows and their cross-fade


@pytest.mark.parametrize("frames", [1, 20, WIDTH - 1, WIDTH, WIDTH + 1, WIDTH + WIDTH // 2, 100, 1001])
def test_crossfade_weights_cover_every_frame_with_total_weight_one(frames):
    starts = window_starts(frames, WIDTH)
    layout = list(zip(starts, window_weights(starts, frames, WIDTH, 0, frames), strict=True))
    total = np.zeros(frames)
    for start, weights in layout:
        assert 0 <= start and start + len(weights) <= frames and len(weights) <= WIDTH
        assert np.all(weights > 0)
        total[start : start + len(weights)] += weights
    np.testing.assert_allclose(total, 1.0)
    assert layout[0][0] == 0 and layout[-1][0] + len(layout[-1][1]) == frames
    assert [start for start, _ in layout] == list(range(0, len(layout) * (WIDTH // 2), WIDTH // 2))  # one grid
    if frames <= WIDTH:
        assert len(layout) == 1 and len(layout[0][1]) == frames  # one window of its own length, as a training clip
    else:
        assert all(len(weights) == WIDTH for _, weights in layout[:-1])
        assert WIDTH // 2 < len(layout[-1][1]) <= WIDTH  # only the last is cut, and by less than half


@pytest.mark.parametrize("samples", [3000, (WIDTH - 1) * SETTINGS.hop_length])  # fewer than W frames, and exactly W
def test_a_recording_of_at_most_w_frames_is_estimated_as_one_clip(samples):
    mel = mel_power(noisy_recording(samples / 16000, 16000, 200, 0), SETTINGS)
    assert mel.shape[1] <= WIDTH
    expected = estimate_clean_mel(MODEL, [mel], SETTINGS, CPU)[0]
    np.testing.assert_array_equal(estimate_windowed(MODEL, mel, SETTINGS, CPU), expected)


def test_a_long_recordings_estimate_has_its_shape_and_follows_its_windows():
    mel = mel_power(noisy_recording(3.0, 16000, 200, 0), SETTINGS)
    estimate = estimate_windowed(MODEL, mel, SETTINGS, CPU)
    assert mel.shape[1] > 10 * WIDTH and estimate.shape == mel.shape and estimate.dtype == np.float64
    assert np.all(np.isfinite(estimate)) and np.all(estimate >= 0)
    # The first frames are covered by the first window alone: its estimate, unchanged.
    first = estimate_clean_mel(MODEL, [mel[:, :WIDTH]], SETTINGS, CPU)[0]
    np.testing.assert_allclose(
        estimate[:, : WIDTH // 2], first[:, : WIDTH // 2], rtol=1e-5
    )  # batched convs round differently


# Audio in, audio out


@pytest.mark.parametrize("method", ["mask", "griffinlim"])
@pytest.mark.parametrize("seconds", [0.05, 0.4, 3.0])  # one short window, one window, many
def test_any_length_gives_audio_of_that_length(method, seconds):
    audio = noisy_recording(seconds, 22050, 180, 3)
    denoised = denoise_audio(audio, 22050, MODEL, SETTINGS, method, CPU, griffin_lim_iters=4)
    assert denoised.shape == audio.shape and denoised.dtype == np.float32
    assert np.all(np.isfinite(denoised)) and np.any(denoised != 0)


def test_a_silent_channel_stays_silent_without_error():
    audio = np.zeros((3 * 22050, 2), np.float32)
    audio[:, 0] = noisy_recording(3.0, 22050, 180, 3)
    audio[22050:44100, 0] = 0.0  # a second of digital silence inside the other channel too
    for method in ("mask", "griffinlim"):
        denoised = denoise_audio(audio, 22050, MODEL, SETTINGS, method, CPU, griffin_lim_iters=4)
        assert denoised.shape == audio.shape
        assert np.max(np.abs(denoised[:, 1])) == 0.0
        assert np.max(np.abs(denoised[:, 0])) > 0.0


def test_denoise_file_writes_float_wav_of_the_inputs_shape(tmp_path):
    source = tmp_path / "in" / "mono.flac"
    source.parent.mkdir()
    sf.write(source, noisy_recording(1.0, 8000, 160, 2), 8000)
    output = denoise_file(source, tmp_path / "out" / "nested", StreamingDenoiser(MODEL, SETTINGS, "mask", CPU))
    assert output == tmp_path / "out" / "nested" / "mono.wav"
    info = sf.info(output)
    assert (info.samplerate, info.channels, info.frames, info.subtype) == (8000, 1, 8000, "FLOAT")
    assert not list(output.parent.glob(".*partial"))


# Streaming: chunk by chunk as whole


@pytest.mark.parametrize(
    ("rate", "method", "tolerance"),
    [(16000, "mask", 1e-6), (22050, "mask", 1e-6), (22050, "griffinlim", 1e-5)],  # at the model's rate and not
)
def test_a_streamed_file_equals_the_recording_denoised_whole(tmp_path, rate, method, tolerance):
    audio = stereo_recording(7.3, rate)[:-7]  # a length that resampling does not divide
    sf.write(tmp_path / "long.wav", audio, rate, subtype="FLOAT")
    whole = denoise_audio(audio, rate, MODEL, SETTINGS, method, CPU, griffin_lim_iters=4)
    # Chunks of 2 window hops (32 frames): some 60 chunks, each cut with its context from the middle of the audio.
    streaming = StreamingDenoiser(MODEL, SETTINGS, method, CPU, 4, chunk_hops=2)
    output = denoise_file(tmp_path / "long.wav", tmp_path / "out", streaming)
    streamed, streamed_rate = sf.read(output, dtype="float32", always_2d=True)
    assert streamed_rate == rate and streamed.shape == whole.shape
    np.testing.assert_allclose(streamed, whole, rtol=0, atol=tolerance * np.abs(whole).max())


def test_streaming_neither_depends_on_how_the_samples_arrive_nor_holds_them_all():
    audio = noisy_recording(20.0, 16000, 170, 4)
    whole = StreamingDenoiser(MODEL, SETTINGS, "mask", CPU, chunk_hops=2)
    expected = np.concatenate([whole.push(audio), whole.finish()])
    streamed = StreamingDenoiser(MODEL, SETTINGS, "mask", CPU, chunk_hops=2)
    pieces, held = [], []
    for start in range(0, len(audio), 777):
        pieces.append(streamed.push(audio[start : start + 777]))
        held.append(len(streamed.buffer))
    pieces.append(streamed.finish())
    np.testing.assert_array_equal(np.concatenate(pieces), expected)
    assert len(expected) == len(audio)
    # What it holds is bounded by a chunk and its context, not by the recording: here under a tenth of it.
    assert max(held) < len(audio) / 10


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_a_non_finite_sample_is_one_line_naming_the_file_and_where(tmp_path, checkpoint, value):
    audio = stereo_recording(5.0, 16000)
    audio[70001, 1] = value  # in the second read block, second channel
    sf.write(tmp_path / "broken.wav", audio, 16000, subtype="FLOAT")
    result = denoise_command("broken.wav", "-o", "clean", "--model", checkpoint, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == (f"error: broken.wav: non-finite sample ({value}) at sample 70001 (4.375 s) of channel 2\n")
    assert not (tmp_path / "clean").exists() or not list((tmp_path / "clean").iterdir())


# The command


@pytest.mark.parametrize("method", ["mask", "griffinlim"])
def test_the_command_denoises_a_long_stereo_recording(tmp_path, checkpoint, method):
    audio = stereo_recording(5.0, 22050)
    sf.write(tmp_path / "talk.wav", audio, 22050, subtype="PCM_16")
    result = denoise_command("talk.wav", "-o", "clean", "--method", method, "--griffin-lim-iters", "4", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    output = tmp_path / "clean" / "talk.wav"
    assert f"-> {Path('clean') / 'talk.wav'}" in result.stdout and method in result.stdout
    denoised, rate = sf.read(output, dtype="float32", always_2d=True)
    assert rate == 22050 and denoised.shape == audio.shape and sf.info(output).subtype == "FLOAT"
    assert np.all(np.isfinite(denoised))
    assert not np.allclose(denoised[:, 0], denoised[:, 1])  # each channel denoised on its own


def _error_case(case: str, tmp_path: Path, checkpoint: Path) -> tuple[list, Path]:
    """The command's arguments for `case` and the file its error must name."""
    good = tmp_path / "good.wav"
    sf.write(good, noisy_recording(0.5, 16000, 200, 0), 16000)
    if case == "missing model":
        return [good, "--model", tmp_path / "nowhere.pt"], tmp_path / "nowhere.pt"
    if case == "model not a checkpoint":
        (tmp_path / "notes.pt").write_text("not a model\n")
        return [good, "--model", tmp_path / "notes.pt"], tmp_path / "notes.pt"
    if case == "input not audio":
        (tmp_path / "notes.wav").write_text("not audio\n")
        return [good, tmp_path / "notes.wav", "--model", checkpoint], tmp_path / "notes.wav"
    return [good, tmp_path / "missing.wav", "--model", checkpoint], tmp_path / "missing.wav"


@pytest.mark.parametrize("case", ["missing model", "model not a checkpoint", "input not audio", "missing input"])
def test_bad_input_is_one_line_naming_the_file_and_writes_nothing(tmp_path, checkpoint, case):
    args, named = _error_case(case, tmp_path, checkpoint)
    result = denoise_command(*args, "-o", tmp_path / "out", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and str(named) in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1  # no traceback
    assert not (tmp_path / "out").exists()


def test_inputs_are_checked_before_any_work(tmp_path):
    a, b = tmp_path / "a" / "take.wav", tmp_path / "b" / "take.flac"
    for path in (a, b):
        path.parent.mkdir()
        sf.write(path, noisy_recording(0.2, 16000, 200, 0), 16000)
    with pytest.raises(PipelineError, match="same name"):
        plan_outputs([a, b], tmp_path / "out")
    with pytest.raises(PipelineError, match="overwrite an input"):
        plan_outputs([a], tmp_path / "a")
    assert plan_outputs([a], tmp_path / "out") == [(a, tmp_path / "out" / "take.wav")]
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros((0, 1), np.float32), 16000)
    with pytest.raises(PipelineError, match=f"{empty}: empty audio"):
        check_input(empty)


def test_an_unknown_method_is_argparses_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["denoise", "x.wav", "-o", "out", "--method", "magic"])
    assert exit_.value.code == 2 and "invalid choice: 'magic'" in capsys.readouterr().err


def test_the_command_refuses_colliding_names_before_loading_the_model(tmp_path, capsys):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        sf.write(tmp_path / folder / "take.wav", noisy_recording(0.2, 16000, 200, 0), 16000)
    args = [str(tmp_path / "a" / "take.wav"), str(tmp_path / "b" / "take.wav"), "-o", str(tmp_path / "out")]
    assert main(["denoise", *args, "--model", str(tmp_path / "nowhere.pt"), "--device", "cpu"]) == 1
    assert capsys.readouterr().err.startswith(f"error: {tmp_path / 'b' / 'take.wav'}: same name as")
    assert not (tmp_path / "out").exists()


def test_the_streamed_wav_has_the_bytes_of_a_whole_one(tmp_path):
    audio = stereo_recording(1.0, 8000)
    write_wav(tmp_path / "whole.wav", audio, 8000)
    with FloatWavWriter(tmp_path / "blocks.wav", 8000, 2) as writer:
        for start in range(0, len(audio), 3000):
            writer.write(audio[start : start + 3000])
    assert (tmp_path / "blocks.wav").read_bytes() == (tmp_path / "whole.wav").read_bytes()
    assert sf.info(tmp_path / "blocks.wav").frames == len(audio)


# Short recordings, folders of recordings, and output paths that cannot be written


@pytest.mark.filterwarnings("error")  # librosa's "n_fft=... is too large" warning fails the test
@pytest.mark.parametrize("method", ["mask", "griffinlim"])
@pytest.mark.parametrize(
    ("samples", "rate", "channels"), [(1, 16000, 1), (SETTINGS.n_fft - 1, 16000, 2), (300, 22050, 1)]
)
def test_a_recording_shorter_than_one_stft_frame_is_denoised_at_its_length_without_a_warning(
    tmp_path, method, samples, rate, channels
):
    audio = 0.1 * np.random.default_rng(0).standard_normal((samples, channels)).astype(np.float32)
    sf.write(tmp_path / "short.wav", audio, rate, subtype="FLOAT")
    denoiser = StreamingDenoiser(MODEL, SETTINGS, method, CPU, griffin_lim_iters=2)
    output = denoise_file(tmp_path / "short.wav", tmp_path / "out", denoiser)
    denoised, denoised_rate = sf.read(output, dtype="float32", always_2d=True)
    assert denoised_rate == rate and denoised.shape == audio.shape
    assert np.all(np.isfinite(denoised))


def _recordings_tree(root: Path) -> dict[str, tuple[int, int, int]]:
    """Audio files at several depths, in two formats, and files that are not audio; what each audio file is:
    (samples, rate, channels) by path under `root`."""
    audio = {"a/b/take.wav": (8000, 16000, 1), "a/other.flac": (11025, 22050, 2), "top.OGG": (4000, 8000, 1)}
    for name, (samples, rate, channels) in audio.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        recording = stereo_recording(samples / rate, rate)[:samples, :channels]
        sf.write(root / name, recording, rate)
    (root / "a" / "notes.txt").write_text("not audio\n")
    (root / "a" / "cover.png").write_bytes(b"\x89PNG")
    (root / ".hidden").mkdir()
    sf.write(root / ".hidden" / "x.wav", np.zeros(100, np.float32), 16000)  # hidden: left out
    (root / "a" / "._take.wav").write_bytes(b"\0\5\26\7")  # macOS metadata beside a copied file: left out
    return audio


def test_a_folder_denoises_every_recording_under_it_in_the_same_layout(tmp_path, checkpoint):
    expected = _recordings_tree(tmp_path / "in")
    result = denoise_command("in", "-o", "out", "--model", checkpoint, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    written = sorted(
        str(path.relative_to(tmp_path / "out")) for path in (tmp_path / "out").rglob("*") if path.is_file()
    )
    assert written == ["a/b/take.wav", "a/other.wav", "top.wav"]
    for name, (samples, rate, channels) in expected.items():
        output = (tmp_path / "out" / name).with_suffix(".wav")
        info = sf.info(output)
        assert (info.frames, info.samplerate, info.channels, info.subtype) == (samples, rate, channels, "FLOAT")
        assert f"{Path('in') / name}: " in result.stdout and f"-> {output.relative_to(tmp_path)}" in result.stdout
    # Each file is denoised as if it had been given alone.
    alone = denoise_file(
        tmp_path / "in/a/other.flac", tmp_path / "alone", StreamingDenoiser(MODEL, SETTINGS, "mask", CPU)
    )
    np.testing.assert_allclose(sf.read(tmp_path / "out/a/other.wav")[0], sf.read(alone)[0], rtol=0, atol=1e-6)


def test_a_folder_input_keeps_the_collision_checks_and_skips_an_output_folder_inside_it(tmp_path):
    _recordings_tree(tmp_path / "in")
    inputs = tmp_path / "in"
    plan = plan_outputs([inputs], tmp_path / "out")
    assert [output for _, output in plan] == [
        tmp_path / "out" / name for name in ("a/b/take.wav", "a/other.wav", "top.wav")
    ]
    assert plan[0][0] == inputs / "a/b/take.wav"
    with pytest.raises(PipelineError, match=f"{inputs / 'a/b/take.wav'}: its output .* would overwrite an input"):
        plan_outputs([inputs], inputs)
    # A file given alone and one found in a folder both named for one output.
    sf.write(tmp_path / "top.wav", np.zeros(100, np.float32), 16000)
    with pytest.raises(PipelineError, match=f"same name as {tmp_path / 'top.wav'}; both would be written to"):
        plan_outputs([tmp_path / "top.wav", inputs], tmp_path / "out")
    sf.write(inputs / "a/other.wav", np.zeros(100, np.float32), 16000)  # beside other.flac: both -> a/other.wav
    with pytest.raises(PipelineError, match="same name as"):
        plan_outputs([inputs], tmp_path / "out")
    (inputs / "a/other.wav").unlink()
    # A rerun into a folder inside the input one does not take the last run's outputs as inputs.
    (inputs / "clean/a").mkdir(parents=True)
    sf.write(inputs / "clean/a/other.wav", np.zeros(100, np.float32), 16000)
    assert [path for path, _ in plan_outputs([inputs], inputs / "clean")] == [path for path, _ in plan]


@pytest.mark.parametrize("content", ["nothing", "no audio"])
def test_a_folder_without_audio_is_one_line_and_writes_nothing(tmp_path, checkpoint, content):
    (tmp_path / "in" / "sub").mkdir(parents=True)
    if content == "no audio":
        (tmp_path / "in" / "sub" / "notes.txt").write_text("not audio\n")
    result = denoise_command("in", "-o", "out", "--model", checkpoint, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("error: in: no audio file in this folder or below it (no .wav, .flac")
    assert result.stderr.count("\n") == 1
    assert not (tmp_path / "out").exists()


def _unwritable_output(case: str, tmp_path: Path) -> tuple[Path, str]:
    """An output folder for `case` and what the error must say of it."""
    if case == "a file":
        (tmp_path / "taken").write_text("a file\n")
        return tmp_path / "taken", f"{tmp_path / 'taken'}: is a file, not a folder"
    if case == "under a file":
        (tmp_path / "taken").write_text("a file\n")
        return tmp_path / "taken" / "sub", f"{tmp_path / 'taken' / 'sub'}: {tmp_path / 'taken'} is a file, not a folder"
    # procfs refuses new folders, root's too (write permission alone would not tell)
    out = Path("/proc/audiomnist-denoise-x")
    return out, f"{out}: cannot create or write to this output folder"


@pytest.mark.parametrize("case", ["a file", "under a file", "/proc"])
def test_an_output_folder_that_cannot_be_written_is_one_line_before_any_work(tmp_path, case):
    if case == "/proc" and not Path("/proc/self").is_dir():
        pytest.skip("no procfs")
    out, message = _unwritable_output(case, tmp_path)
    sf.write(tmp_path / "good.wav", noisy_recording(0.5, 16000, 200, 0), 16000)
    before = sorted(tmp_path.rglob("*"))
    # The model does not exist: its error would come first if the output were checked after loading it.
    result = denoise_command("good.wav", "-o", out, "--model", tmp_path / "nowhere.pt", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: {message}") and result.stderr.count("\n") == 1
    assert sorted(tmp_path.rglob("*")) == before


def test_checking_the_outputs_leaves_no_folder_behind(tmp_path):
    check_outputs([tmp_path / "new" / "deeper" / "take.wav", tmp_path / "new" / "other.wav"])
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "out" / "take.wav").mkdir(parents=True)
    with pytest.raises(PipelineError, match=f"{tmp_path / 'out' / 'take.wav'}: an output file's path is a folder"):
        check_outputs([tmp_path / "out" / "take.wav"])
    with pytest.raises(PipelineError, match=f"{tmp_path}: a folder, not an audio file"):
        check_input(tmp_path)
