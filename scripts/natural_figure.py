"""The figure of docs/data.md's natural-voice section: one digit by the Piper voice beside it by an eSpeak NG speaker.

    python scripts/natural_figure.py   # from the repository root, with the project's environment

Writes docs/figures/natural_vs_espeak.png: the linear spectrograms, 0 to 8 kHz, of "seven" (repetition 0) as the
`natural` stage speaks it with params.yaml's `natural` section (speaker 61) and as the eSpeak NG corpus speaks it
with `data.tts` (speaker 01, American English, male, as is the Piper voice), on the same axes and colour scale.
Needs no pipeline output: both clips are synthesised here.
"""

import tempfile
from pathlib import Path

import librosa
import numpy as np
from matplotlib.figure import Figure

from audiomnist_denoise.audio.io import read_audio
from audiomnist_denoise.data import natural, tts
from audiomnist_denoise.data.corpus import Clip
from audiomnist_denoise.fsutil import atomic_file
from audiomnist_denoise.params import load_params

FIGURE = Path("docs/figures/natural_vs_espeak.png")
DIGIT, ESPEAK_SPEAKER = 7, "01"
N_FFT, HOP, TOP_HZ, FLOOR_DB = 2048, 240, 8000, 80  # 43 ms windows every 5 ms at 48 kHz


def natural_clip(params) -> tuple[np.ndarray, int]:
    """The `natural` stage's first repetition of DIGIT by its first voice: the stage's own file (a voice speaks
    repetition by repetition, so one repetition gives the same first clips)."""
    with tempfile.TemporaryDirectory() as folder:
        corpus = Path(folder) / "natural"
        natural.write_natural_corpus(corpus, params.natural.model_copy(update={"reps": 1}))
        speaker = natural.voice(params.natural.voices[0]).speaker
        return read_audio(corpus / Clip(speaker, DIGIT, 0).path)


def spectrogram_db(audio: np.ndarray, rate: int) -> np.ndarray:
    """Power in dB below the clip's own peak, floored at FLOOR_DB: both panels on one scale whatever the level."""
    power = np.abs(librosa.stft(audio.astype(np.float64), n_fft=N_FFT, hop_length=HOP * rate // 48000)) ** 2
    return np.maximum(10 * np.log10(power / power.max() + 1e-12), -FLOOR_DB)


def main() -> None:
    params = load_params()
    speech, rate = natural_clip(params)
    profile = tts.speaker_profile(ESPEAK_SPEAKER)
    espeak = tts.synthesize_clip(ESPEAK_SPEAKER, DIGIT, 0, rate, params.data.tts.seed) / 32768.0
    voice = natural.voice(params.natural.voices[0])
    panels = (
        (speech, f"Piper {voice.piper_voice} (natural set, speaker {voice.speaker})"),
        (espeak, f"eSpeak NG {profile.voice}+{profile.variant} (synthetic corpus, speaker {ESPEAK_SPEAKER})"),
    )
    length = max(len(audio) for audio, _ in panels)
    panels = tuple((np.pad(audio, (0, length - len(audio))), title) for audio, title in panels)  # the same time axis
    figure = Figure(figsize=(11.0, 4.2), dpi=100, layout="constrained")
    axes = figure.subplots(1, 2, sharey=True)
    for ax, (audio, title) in zip(axes, panels, strict=True):
        image = ax.imshow(
            spectrogram_db(audio, rate),
            origin="lower",
            aspect="auto",
            extent=(0, length / rate, 0, rate / 2000),
            vmin=-FLOOR_DB,
            vmax=0,
            cmap="magma",
            interpolation="nearest",
        )
        ax.set(ylim=(0, TOP_HZ / 1000), xlabel="time (s)", title=title)
    axes[0].set_ylabel("frequency (kHz)")
    figure.colorbar(image, ax=axes, label="power (dB below the clip's peak)")
    figure.suptitle(f'"{natural.WORDS[DIGIT]}" (repetition 0) at {rate} Hz: linear spectrograms, 0 to 8 kHz')
    FIGURE.parent.mkdir(parents=True, exist_ok=True)
    # No "Software" entry: the file holds the image alone, no version stamp to differ between equal figures.
    with atomic_file(FIGURE) as partial:
        figure.savefig(partial, format="png", metadata={"Software": None})
    print(f"wrote {FIGURE}")


if __name__ == "__main__":
    main()
