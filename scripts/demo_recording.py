"""A recording that is not in the corpus, to try `python -m audiomnist_denoise denoise` on, and its scores.

    python scripts/demo_recording.py make demo/            # demo/call.wav (noisy) and demo/call_clean.wav
    python -m audiomnist_denoise denoise demo/call.wav -o demo/out
    python scripts/demo_recording.py score demo/ demo/out  # SI-SDR, PESQ and STOI before and after, per channel

call.wav is a 5-second sentence (a voice and words the corpus does not have) at 22.05 kHz,
16-bit stereo: white noise at -5 dB in the left channel, pink noise at 0 dB in the right.
"""

import sys
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf

from audiomnist_denoise.audio.spectral import si_sdr
from audiomnist_denoise.data.noise import colored_noise, scale_to_snr
from audiomnist_denoise.data.tts import ESPEAK_RATE, espeak
from audiomnist_denoise.evaluation.metrics import pesq_wideband, stoi_concatenated

RATE = 22050
SENTENCE = "Please call me back at five five five, two nine one eight, before seven tonight."


def make(folder: Path) -> None:
    speech = espeak(SENTENCE, "en-us+m3", rate=160, pitch=45, pitch_range=60, seed=7) / 32768.0
    clean = 0.5 * librosa.resample(speech, orig_sr=ESPEAK_RATE, target_sr=RATE)
    rng = np.random.default_rng(3)
    left = clean + scale_to_snr(clean, rng.standard_normal(len(clean)), -5.0)
    right = clean + scale_to_snr(clean, colored_noise(len(clean), 1.0, rng), 0.0)
    folder.mkdir(parents=True, exist_ok=True)
    sf.write(folder / "call.wav", np.stack([left, right], axis=1), RATE, subtype="PCM_16")
    sf.write(folder / "call_clean.wav", clean.astype(np.float32), RATE, subtype="FLOAT")
    seconds = len(clean) / RATE
    print(f"{folder / 'call.wav'}: {seconds:.2f} s, 2 channels at {RATE} Hz; reference {folder / 'call_clean.wav'}")


def score(folder: Path, denoised_folder: Path) -> None:
    clean, rate = sf.read(folder / "call_clean.wav")
    noisy, _ = sf.read(folder / "call.wav")
    denoised, _ = sf.read(denoised_folder / "call.wav")
    for channel, noise in enumerate(("white, -5 dB", "pink, 0 dB")):
        before, after = noisy[:, channel], denoised[:, channel]
        print(
            f"channel {channel} ({noise}): SI-SDR {si_sdr(clean, before):.2f} -> {si_sdr(clean, after):.2f} dB, "
            f"PESQ {pesq_wideband(clean, before, rate):.3f} -> {pesq_wideband(clean, after, rate):.3f}, "
            f"STOI {stoi_concatenated([clean], [before], rate):.3f} -> {stoi_concatenated([clean], [after], rate):.3f}"
        )


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "make":
        make(Path(sys.argv[2]))
    elif len(sys.argv) == 4 and sys.argv[1] == "score":
        score(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        sys.exit(__doc__)
