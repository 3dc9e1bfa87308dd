"""Stage `samples`: for a few test clips, the clean audio and every method's output (`evaluation.methods`), as
wavs to listen to side by side and one figure of their spectrograms per clip."""

import numpy as np
from _stage import run
from tqdm import tqdm

from audiomnist_denoise.audio.io import load_resampled
from audiomnist_denoise.data.corpus import Clip
from audiomnist_denoise.data.splits import read_split
from audiomnist_denoise.devices import resolve_device
from audiomnist_denoise.evaluation.methods import SAMPLE_SOURCES, apply_methods
from audiomnist_denoise.fsutil import atomic_directory, write_wav
from audiomnist_denoise.layout import MODEL, NOISY, RAW, SAMPLE_FIGURES, SAMPLES, SPLIT
from audiomnist_denoise.model.checkpoint import checkpoint_features, load_checkpoint
from audiomnist_denoise.params import load_params
from audiomnist_denoise.reporting.samples import choose_samples, sample_figure


def main() -> str:
    params = load_params()
    settings = params.samples
    # The methods exactly as evaluate runs them, with this stage's Griffin-Lim settings.
    methods = params.evaluate.model_copy(
        update={
            "griffin_lim_iters": settings.griffin_lim_iters,
            "griffin_lim_start": settings.griffin_lim_start,
            "seed": settings.seed,
            "batch_size": settings.count,
        }
    )
    device = resolve_device("auto", "samples.device")
    model, config = load_checkpoint(MODEL, device)
    features = checkpoint_features(config, MODEL)
    split = read_split(SPLIT)
    chosen = choose_samples(split[split["split"] == "test"], settings.count, settings.seed)
    clips = [Clip(row.speaker, int(row.digit), int(row.rep)) for row in chosen.itertuples()]
    clean, noisy = (
        [load_resampled(root / clip.path, features.sample_rate)[0] for clip in clips] for root in (RAW, NOISY)
    )
    outputs = apply_methods(model, clean, noisy, features, methods, device).outputs
    with atomic_directory(SAMPLES) as folder, atomic_directory(SAMPLE_FIGURES) as figures:
        for position, clip in enumerate(tqdm(clips, desc="samples")):
            audio = {"clean": clean[position]} | {method: outputs[method][position] for method in outputs}
            for source in SAMPLE_SOURCES:
                write_wav(folder / f"{clip.id}_{source}.wav", audio[source].astype(np.float32), features.sample_rate)
            title = f"{clip.id}: digit {clip.digit}, speaker {clip.speaker} (test)"
            sample_figure(
                {source: audio[source] for source in SAMPLE_SOURCES}, features, title, figures / f"{clip.id}.png"
            )
    return (
        f"{len(clips)} test clips, each as {len(SAMPLE_SOURCES)} wavs (clean and every method) in {SAMPLES}/, "
        f"figures in {SAMPLE_FIGURES}/"
    )


if __name__ == "__main__":
    run(main)
