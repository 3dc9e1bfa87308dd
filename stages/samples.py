"""Stage `samples`: for a few test clips, the clean, noisy and denoised audio and a figure of the three."""

from pathlib import Path

import numpy as np
import pandas as pd
from _stage import run
from tqdm import tqdm

from audiomnist_denoise.audio.io import load_resampled
from audiomnist_denoise.audio.reconstruct import SOURCES, denoised_power, image_db
from audiomnist_denoise.data.corpus import Clip
from audiomnist_denoise.data.splits import read_split
from audiomnist_denoise.errors import PipelineError
from audiomnist_denoise.evaluation.methods import estimate_images, griffin_lim_audio
from audiomnist_denoise.features.cache import open_features
from audiomnist_denoise.features.spectrogram import mel_power
from audiomnist_denoise.fsutil import atomic_directory, write_wav
from audiomnist_denoise.layout import FEATURES, MODEL, NOISY, RAW, SAMPLE_FIGURES, SAMPLES, SPLIT
from audiomnist_denoise.model.checkpoint import checkpoint_features, load_checkpoint
from audiomnist_denoise.model.spectral import SpectralDenoiser
from audiomnist_denoise.model.unet import predict, resolve_device
from audiomnist_denoise.params import FeatureParams, SamplesParams, load_params
from audiomnist_denoise.reporting.samples import choose_samples, sample_figure


def rows_in_test_split(index: pd.DataFrame) -> pd.DataFrame:
    """The rows of the feature index whose clips data/split.csv puts in the test split."""
    split = read_split(SPLIT)
    return index[index["clip_id"].isin(split.loc[split["split"] == "test", "clip_id"])]


def check_cache_fits_model(images: np.ndarray, index: pd.DataFrame, settings: FeatureParams) -> None:
    """The cached spectrograms must be made the way the model's training data was."""
    if list(images.shape[1:]) != settings.size or (index["n_mels"] != settings.n_mels).any():
        raise PipelineError(
            f"{FEATURES}: spectrograms do not match the features {MODEL} was trained on "
            f"({settings.n_mels} mels as {settings.size[0]} x {settings.size[1]}); rerun featurize and train"
        )


def write_sample(
    folder: Path, figures: Path, row: pd.Series, images: dict, settings: FeatureParams, params: SamplesParams
) -> None:
    """The clip's three wavs and its figure; `images` holds its clean, noisy and denoised image."""
    clip = Clip(row["speaker"], int(row["digit"]), int(row["rep"]))
    clean, noisy = (load_resampled(root / clip.path, settings.sample_rate)[0] for root in (RAW, NOISY))
    # capped at the noisy power, as methods.estimate_clean_mel does for the unet_griffinlim method
    power = np.minimum(denoised_power(images["denoised"], row, settings), mel_power(noisy, settings))
    iters, start = params.griffin_lim_iters, params.griffin_lim_start
    denoised = griffin_lim_audio([power], [noisy], settings, iters, start, params.seed, "cpu")[0]
    audio = {"clean": clean, "noisy": noisy, "denoised": denoised}
    for source in SOURCES:
        write_wav(folder / f"{clip.id}_{source}.wav", audio[source].astype(np.float32), settings.sample_rate)
    sample_figure(
        *(audio[source] for source in SOURCES),
        *(image_db(images[source], row, source, settings) for source in SOURCES),
        settings.sample_rate,
        settings.hop_length,
        f"{clip.id}: digit {clip.digit}, speaker {clip.speaker} (test)",
        figures / f"{clip.id}.png",
    )


def main() -> str:
    params = load_params().samples
    device = resolve_device("auto")
    model, config = load_checkpoint(MODEL, device)
    settings = checkpoint_features(config, MODEL)
    clean_images, noisy_images, index = open_features(FEATURES)
    check_cache_fits_model(noisy_images, index, settings)
    chosen = choose_samples(rows_in_test_split(index), params.count, params.seed)
    rows = chosen.index.to_numpy()
    images = {"clean": clean_images[rows], "noisy": noisy_images[rows]}
    if isinstance(model, SpectralDenoiser):
        noisy = [
            load_resampled(NOISY / f"{row.speaker}/{row.clip_id}.wav", settings.sample_rate)[0]
            for row in chosen.itertuples()
        ]
        images["denoised"] = estimate_images(model, noisy, chosen.noisy_db_max.to_numpy(), settings, device)
    else:
        images["denoised"] = predict(model, images["noisy"], len(rows), device)
    with atomic_directory(SAMPLES) as folder, atomic_directory(SAMPLE_FIGURES) as figures:
        for position, (_, row) in enumerate(tqdm(chosen.iterrows(), total=len(chosen), desc="samples")):
            clip_images = {source: batch[position] for source, batch in images.items()}
            write_sample(folder, figures, row, clip_images, settings, params)
    return f"{len(chosen)} test clips as clean, noisy and denoised wavs in {SAMPLES}/, figures in {SAMPLE_FIGURES}/"


if __name__ == "__main__":
    run(main)
