"""`denoise` on long recordings: streamed chunk by chunk (ours) against the whole recording in memory (the
reference, `denoise_audio` on the file read whole), with the trained default model (models/unet.pt).

The input is generated: synthetic spoken digits end to end at 16 kHz, in white noise at -8 dB, written block by
block so that making it holds little memory. Each run is a fresh process that reports its own peak resident
memory (ru_maxrss) and the seconds from reading the file to the written output (imports and the model's loading
excluded), as a real-time factor: seconds of audio per second of work. The whole-recording reference runs on the
shorter recordings only: its memory grows with the length (an hour would need tens of GiB).
"""

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from audiomnist_denoise.audio.io import FloatWavWriter
from audiomnist_denoise.data import tts

MODEL = Path("models/unet.pt")
RATE = 16000
STREAMED_MINUTES = (1, 10, 60)
WHOLE_MINUTES = (1, 10)
TARGET_RSS_MIB, TARGET_SPEED = 1024, 20

CHILD = """
import json, resource, sys, time
from pathlib import Path
import numpy as np
import torch
from audiomnist_denoise.audio.io import read_channels
from audiomnist_denoise.denoise import StreamingDenoiser, denoise_audio, denoise_file
from audiomnist_denoise.fsutil import write_wav
from audiomnist_denoise.model.checkpoint import load_model
mode, source, out, model_path = sys.argv[1:]
device = torch.device("cpu")
model, settings = load_model(Path(model_path), device)
started = time.perf_counter()
if mode == "streamed":
    denoise_file(Path(source), Path(out), StreamingDenoiser(model, settings, "mask", device))
else:
    audio, rate = read_channels(Path(source))
    write_wav(Path(out) / "whole.wav", denoise_audio(audio, rate, model, settings, "mask", device), rate)
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def write_recording(path: Path, minutes: int) -> None:
    """Digits of 24 synthetic speakers end to end, each with a quarter second of pause, in white noise at -8 dB."""
    rng = np.random.default_rng(0)
    speech = np.concatenate(
        [
            np.pad(tts.synthesize_clip(f"{1 + i % 24:02d}", i % 10, 0, RATE, 0) / 32768.0, (0, RATE // 4))
            for i in range(48)
        ]
    ).astype(np.float32)
    noise_rms = np.sqrt(np.mean(speech**2) * 10 ** (8 / 10))
    total = round(minutes * 60 * RATE)
    with FloatWavWriter(path, RATE, 1) as writer:
        for start in range(0, total, len(speech)):
            block = speech[: min(len(speech), total - start)]
            writer.write((block + noise_rms * rng.standard_normal(len(block)))[:, None].astype(np.float32))


def measure(mode: str, source: Path, out: Path) -> dict:
    out.mkdir(exist_ok=True)
    result = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(source), str(out), str(MODEL)], capture_output=True, text=True
    )
    if result.returncode:
        raise SystemExit(f"bench_denoise: the {mode} run failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    if not MODEL.is_file():
        raise SystemExit(f"bench_denoise: {MODEL} is missing; `make repro` (or `dvc pull`) trains the default model")
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        rows = {}
        for minutes in sorted(set(STREAMED_MINUTES) | set(WHOLE_MINUTES)):
            source = folder / f"talk_{minutes}min.wav"
            write_recording(source, minutes)
            for mode in ("whole", "streamed"):
                if minutes in (WHOLE_MINUTES if mode == "whole" else STREAMED_MINUTES):
                    rows[mode, minutes] = measure(mode, source, folder / mode)
                    speed = minutes * 60 / rows[mode, minutes]["seconds"]
                    print(
                        f"denoise {minutes:3d} min at {RATE} Hz | {mode:8s} | {rows[mode, minutes]['seconds']:7.1f} s"
                        f" ({speed:5.1f}x real time) | peak RSS {rows[mode, minutes]['rss_mib']:7.0f} MiB",
                        flush=True,
                    )
            source.unlink()
        streamed = [rows["streamed", m] for m in STREAMED_MINUTES]
        peak = max(row["rss_mib"] for row in streamed)
        peaks = ", ".join(f"{row['rss_mib']:.0f}" for row in streamed)
        # The speed target is the hour's: a minute's run is a few seconds, mostly the process's first calls.
        hour_speed = STREAMED_MINUTES[-1] * 60 / streamed[-1]["seconds"]
        print(
            f"denoise streamed peak RSS {peaks} MiB for "
            f"{', '.join(map(str, STREAMED_MINUTES))} min: {STREAMED_MINUTES[-1] // STREAMED_MINUTES[0]}x the audio, "
            f"{peak / streamed[0]['rss_mib']:.2f}x the memory (target flat, < {TARGET_RSS_MIB} MiB: "
            f"{'met' if peak < TARGET_RSS_MIB else 'not met'})"
        )
        longest = WHOLE_MINUTES[-1]
        print(
            f"denoise at {longest} min: whole {rows['whole', longest]['rss_mib']:.0f} MiB / streamed "
            f"{rows['streamed', longest]['rss_mib']:.0f} MiB = "
            f"{rows['whole', longest]['rss_mib'] / rows['streamed', longest]['rss_mib']:.1f}x less memory; speed "
            f"streamed/whole {rows['whole', longest]['seconds'] / rows['streamed', longest]['seconds']:.2f}x; "
            f"streamed {STREAMED_MINUTES[-1]} min {hour_speed:.1f}x real time (target >= {TARGET_SPEED}x: "
            f"{'met' if hour_speed >= TARGET_SPEED else 'not met'})"
        )


if __name__ == "__main__":
    main()
