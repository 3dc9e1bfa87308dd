"""The native training step of each spectral track, side by side: the default U-Net on 64 mel bands (with and
without its context GRU) against the recurrent mask network and the refined network on every STFT bin
(`features.n_mels: null`, `model.architecture: gru` or `refined`).

Each step is the train stage's: `AudioTask.loss` (the STFT, the network, the compressed loss on the model's own
STFT and the SI-SDR term through the inverse STFT) with its backward pass and an Adam step, on one batch of 32
generated one-second clips at 48 kHz, in fp32 (the precision on a CPU without AMX; the ratio is what matters).
Steps per second is the best of a few repeats after a warm-up, in this process.
"""

import time
from pathlib import Path

import torch

from audiomnist_denoise.devices import memory_format
from audiomnist_denoise.model.spectral import new_network
from audiomnist_denoise.params import load_params
from audiomnist_denoise.training.audio_task import AudioClips, AudioTask

BATCH, SAMPLES, RATE, STEPS, WARMUP, REPEATS = 32, 48000, 48000, 6, 2, 3
PARAMS = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
TRACKS = {
    "U-Net + context, 64 mels (the default)": ({}, {}),
    "U-Net without the context": ({"context": "none"}, {}),
    "GRU [256, 128], every bin": ({"architecture": "gru", "channels": [256, 128]}, {"n_mels": None}),
    "GRU [256, 128, 128], every bin": ({"architecture": "gru", "channels": [256, 128, 128]}, {"n_mels": None}),
    "refined + context, every bin": ({"architecture": "refined"}, {"n_mels": None}),
    "refined without the context": ({"architecture": "refined", "context": "none"}, {"n_mels": None}),
}


def steps_per_second(model_changes: dict, feature_changes: dict) -> tuple[float, int]:
    """The best steps per second of one track, and its number of weights."""
    network = new_network(
        PARAMS.model.model_copy(update=model_changes), PARAMS.features.model_copy(update=feature_changes), 0
    )
    generator = torch.Generator().manual_seed(0)
    clean = 0.05 * torch.randn(BATCH, SAMPLES, generator=generator)
    noisy = clean + 0.1 * torch.randn(BATCH, SAMPLES, generator=generator)
    lengths = torch.full((BATCH,), SAMPLES)
    clips = AudioClips.in_memory(list(clean.numpy()), list(noisy.numpy()), ())
    task = AudioTask(clips, network, PARAMS.train, RATE)
    network.to(memory_format=memory_format("fp32", torch.device("cpu")))  # the layout the train stage gives it
    optimizer = torch.optim.Adam(network.parameters(), 1e-3)
    network.train()

    def run(steps: int) -> None:
        for _ in range(steps):
            loss = task.loss(network, (clean, noisy, lengths), "fp32")
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    run(WARMUP)
    best = 0.0
    for _ in range(REPEATS):
        started = time.perf_counter()
        run(STEPS)
        best = max(best, STEPS / (time.perf_counter() - started))
    return best, sum(parameter.numel() for parameter in network.parameters())


def main() -> None:
    print(f"CPU, {torch.get_num_threads()} threads, fp32; a step: {BATCH} clips of {SAMPLES / RATE:g} s at {RATE} Hz")
    reference = None
    for name, (model_changes, feature_changes) in TRACKS.items():
        rate, weights = steps_per_second(model_changes, feature_changes)
        reference = reference or rate
        print(f"{name:40} {rate:5.2f} steps/s  {weights / 1e6:5.2f} M weights  x{rate / reference:.2f} of the default")


if __name__ == "__main__":
    main()
