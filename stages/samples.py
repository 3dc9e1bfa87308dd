"""Stage `samples`: for a few test clips, the clean audio and every method's output (`evaluation.methods`), as
wavs to listen to side by side and one figure of their spectrograms per clip (`reporting.samples`)."""

from _stage import run

from audiomnist_denoise.devices import resolve_device
from audiomnist_denoise.fsutil import atomic_directory
from audiomnist_denoise.layout import MODEL, NOISY, RAW, SAMPLE_FIGURES, SAMPLES, SPLIT
from audiomnist_denoise.model.checkpoint import load_model
from audiomnist_denoise.names import SAMPLE_SOURCES
from audiomnist_denoise.params import load_params
from audiomnist_denoise.reporting.samples import write_samples


def main() -> str:
    params = load_params()
    device = resolve_device(params.samples.device, "samples.device")
    model, features = load_model(MODEL, device)
    with atomic_directory(SAMPLES) as folder, atomic_directory(SAMPLE_FIGURES) as figures:
        paths = dict(split=SPLIT, raw=RAW, noisy=NOISY, folder=folder, figures=figures)
        count = write_samples(model, features, params.samples, params.evaluate, device, **paths)
    return (
        f"{count} test clips, each as {len(SAMPLE_SOURCES)} wavs (clean and every method) in {SAMPLES}/, "
        f"figures in {SAMPLE_FIGURES}/"
    )


if __name__ == "__main__":
    run(main)
