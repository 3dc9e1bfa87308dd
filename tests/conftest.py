"""Shared fixtures: small AudioMNIST-layout corpora generated in code, never downloaded."""

import os
import tempfile

# librosa's numba kernels are compiled with cache=True into site-packages, and two processes compiling the same
# @guvectorize kernel at once can leave cache files that crash the next to load them (numba#10128): each xdist
# worker of a run caches on its own (set before anything imports numba; the tests' subprocesses inherit it).
if "PYTEST_XDIST_WORKER" in os.environ:
    os.environ["NUMBA_CACHE_DIR"] = os.path.join(
        tempfile.gettempdir(),
        "audiomnist-denoise-numba",
        f"{os.environ.get('PYTEST_XDIST_TESTRUNUID', 'run')}-{os.environ['PYTEST_XDIST_WORKER']}",
    )

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from audiomnist_denoise.audio.griffinlim import griffin_lim_batch
from audiomnist_denoise.audio.spectral import mel_power, power_db
from audiomnist_denoise.data.corpus import META_FILE, Clip
from audiomnist_denoise.data.noise import NoiseMaker
from audiomnist_denoise.model.spectral import new_network
from audiomnist_denoise.params import DataParams, FeatureParams, ModelParams, TrainParams, load_params
from audiomnist_denoise.training.audio_task import AudioClips, AudioTask
from audiomnist_denoise.training.tasks import Pairs, squared_error

REPO = Path(__file__).resolve().parents[1]
DIGITS = tuple(range(10))
# Small spectrograms of 16 kHz audio, for pipelines that must run in seconds (set_params keys).
SMALL_FEATURES = dict(
    features__sample_rate=16000,
    features__n_mels=32,
    features__n_fft=512,
    features__hop_length=128,
    features__size=[16, 16],
)


def git_checkout() -> bool:
    """Whether REPO is a git checkout with a commit (not a source archive, say)."""
    try:
        done = subprocess.run(["git", "rev-parse", "--verify", "-q", "HEAD"], cwd=REPO, capture_output=True)
    except FileNotFoundError:
        return False
    return done.returncode == 0


def skip_unless_git_checkout(what: str) -> None:
    if not git_checkout():
        pytest.skip(f"{REPO} is no git checkout (or git is missing): {what} are unknown")


def committed(path: str, revision: str = "HEAD") -> str:
    """`path` (relative to REPO) as committed at `revision`. A test reads a DVC output (metrics/, plots/, dvclive/,
    dvc.lock, data/, models/, samples/) this way, never from the workspace: `make repro` on another CPU rewrites
    those with other floats. Skips outside a git checkout."""
    skip_unless_git_checkout(f"the committed files ({path})")
    shown = subprocess.run(["git", "show", f"{revision}:./{path}"], cwd=REPO, capture_output=True, text=True)
    assert shown.returncode == 0, f"{path} is not committed at {revision}: {shown.stderr.strip()}"
    return shown.stdout


def data_params(tts: dict | None = None, **changes) -> DataParams:
    """params.yaml's `data` section with `changes`, and `tts` changes in its `tts` section."""
    data = load_params(REPO / "params.yaml").data
    return data.model_copy(update=changes | {"tts": data.tts.model_copy(update=tts or {})})


def tone(seconds: float, rate: int, frequency: float, seed: int = 0) -> np.ndarray:
    """A voiced-sounding test clip: a decaying harmonic tone with a little noise, float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * rate)) / rate
    audio = sum(np.sin(2 * np.pi * frequency * k * t) / k for k in range(1, 6)) * np.exp(-3 * t)
    return (0.3 * audio / np.max(np.abs(audio)) + 0.001 * rng.standard_normal(len(t))).astype(np.float32)


def speaker_entry(gender: str = "male", accent: str = "german", age=30) -> dict:
    return {
        "accent": accent,
        "age": age,
        "gender": gender,
        "native speaker": "no",
        "origin": "Europe, Germany, Berlin",
        "recordingdate": "17-06-22-11-04-28",
        "recordingroom": "Kino",
    }


def make_corpus(
    root: Path, speakers=("01", "02"), digits=DIGITS, reps=2, rate: int = 16000, seconds: float = 0.3
) -> Path:
    """An AudioMNIST-layout folder of 16-bit tones plus its metadata file; returns `root`."""
    root.mkdir(parents=True, exist_ok=True)
    for s, speaker in enumerate(speakers):
        (root / speaker).mkdir(exist_ok=True)
        for digit in digits:
            for rep in range(reps):
                audio = tone(seconds, rate, 110 + 40 * s + 15 * digit, seed=int(speaker) * 1000 + digit * 100 + rep)
                sf.write(root / speaker / f"{digit}_{speaker}_{rep}.wav", audio, rate, subtype="PCM_16")
    (root / META_FILE).write_text(json.dumps({speaker: speaker_entry() for speaker in speakers}, indent=4))
    return root


def set_params(project: Path, **values) -> None:
    """Set dotted keys (data__tts__speakers=3 sets data.tts.speakers) in the project's params.yaml."""
    params = yaml.safe_load((project / "params.yaml").read_text())
    for dotted, value in values.items():
        *parents, key = dotted.split("__")
        section = params
        for parent in parents:
            section = section[parent]
        section[key] = value
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """2 speakers x 10 digits x 2 repetitions of 0.3 s tones at 16 kHz."""
    return make_corpus(tmp_path / "corpus")


def blob_pairs(count: int, size: int = 16, seed: int = 0) -> Pairs:
    """Training pairs: clean targets are smooth blobs; noisy inputs add noise to them."""
    generator = torch.Generator().manual_seed(seed)
    clean = torch.nn.functional.avg_pool2d(torch.rand(count, 1, size, size, generator=generator), 5, 1, 2)
    noisy = (clean + 0.2 * torch.rand(count, 1, size, size, generator=generator)).clamp(0, 1)
    return Pairs(noisy=noisy, clean=clean)


def train_params(**changes) -> TrainParams:
    """Quick training settings for tiny models on `blob_pairs`."""
    values = dict(
        lr=3e-3,
        schedule="constant",
        warmup_steps=0,
        batch_size=8,
        epochs=8,
        val_every=4,
        seed=0,
        device="cpu",
        precision="fp32",
        compile=False,
        checkpoint_every=0,
        nproc=1,
        loss="mse",
        si_sdr_weight=0.003,
        speech_loss_weight=1.0,
        complex_weight=0.0,
        stoi_weight=0.0,
        noise="fixed",
        snr_db=[-12.0, 6.0],
        noise_kinds=None,
        noise_weights=None,
        band_limit_probability=0.0,
        band_limit_rates=[8000, 16000, 22050, 44100],
        gain_db=[0.0, 0.0],
        tilt_db_per_octave=[0.0, 0.0],
        reverb_probability=0.0,
        reverb_rt60=[0.2, 0.8],
        babble_kept_db=None,
    )
    return TrainParams(**(values | changes))


def small_features() -> FeatureParams:
    """SMALL_FEATURES as a FeatureParams: 16 kHz, 32 mels, hop 128."""
    changes = {key.removeprefix("features__"): value for key, value in SMALL_FEATURES.items()}
    return load_params(REPO / "params.yaml").features.model_copy(update=changes)


def new_unet(channels: list[int], init: str = "kaiming", output: str = "sigmoid", seed: int = 0) -> torch.nn.Module:
    """A freshly initialised U-Net of the study's (resized) track, made as the train stage makes it."""
    model = ModelParams(
        input="resized",
        target="mapping",
        normalisation="per_clip",
        architecture="unet",
        channels=channels,
        context="none",
        bands=64,
        refine_channels=8,
        init=init,
        output=output,
    )
    return new_network(model, small_features(), seed)


def tone_clips(count: int, rate: int = 16000, seed: int = 0) -> AudioClips:
    """Clean harmonic tones of different pitch and length with a noisy copy each (white noise at 0 dB)."""
    rng = np.random.default_rng(seed)
    clean = [tone(0.15 + 0.01 * i, rate, 150 + 20 * i, seed + i) for i in range(count)]
    noisy = [audio + rng.standard_normal(len(audio)).astype(np.float32) * np.std(audio) for audio in clean]
    clips = tuple(Clip(f"{i % 3 + 1:02d}", i % 10, i // 10) for i in range(count))
    return AudioClips.in_memory(clean, noisy, clips)


def griffin_lim(
    mel: np.ndarray, length: int, settings: FeatureParams, n_iter: int, seed: int, phase_from=None
) -> np.ndarray:
    """One clip through `griffin_lim_batch`."""
    phases = None if phase_from is None else [phase_from]
    return griffin_lim_batch([mel], [length], settings, n_iter, seed, phases)[0]


def mean_loss(model: torch.nn.Module, pairs: Pairs, batch_size: int, device: torch.device) -> float:
    """Mean squared error over all pixels of `pairs`, in evaluation mode."""
    total, count = squared_error(model, pairs, batch_size, device, "fp32")
    return total / count


def mel_db(audio: np.ndarray, settings: FeatureParams) -> np.ndarray:
    """Mel power spectrogram in dB (ref 1.0), floored `top_db` below its peak: (n_mels, frames)."""
    return power_db(mel_power(audio, settings), settings.top_db)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The DVC pipeline's tests first: they are the longest, so under pytest-xdist they start at once and the
    short tests fill the workers' gaps, instead of one long test running alone at the end."""
    items.sort(key=lambda item: item.path.name != "test_pipeline.py")  # stable: file order kept otherwise


def loss_after_training(model: torch.nn.Module, steps: int) -> tuple[float, float]:
    """A native-track model's validation error after `steps` of the compressed loss on 8 tone clips under fresh
    white noise at -5 to 5 dB, and the noisy input's error (a gain of 1)."""
    clips = tone_clips(8)
    task = AudioTask(
        clips, model, train_params(noise="fresh", loss="compressed", snr_db=[-5.0, 5.0]), 16000, (NoiseMaker("white"),)
    )
    model.fit_normalisation(task.training_inputs())
    identity = task.identity_loss()
    optimiser = torch.optim.Adam(model.parameters(), 0.01)
    rows, cpu = torch.arange(len(clips)), torch.device("cpu")
    for step in range(steps):
        model.train()
        loss = task.loss(model, task.batch(rows, step, cpu, "fp32"), "fp32")
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    total, count = task.error(model, len(clips), cpu, "fp32")
    return total / count, identity
