"""Stage `featurize`: data/features holds the clean and noisy spectrogram of every clip and an index."""

from _stage import run

from audiomnist_denoise.features.cache import build_feature_cache
from audiomnist_denoise.layout import FEATURES, NOISY, RAW
from audiomnist_denoise.params import load_params


def main() -> str:
    settings = load_params().features
    index = build_feature_cache(RAW, NOISY, FEATURES, settings)
    height, width = settings.size
    return f"{len(index)} clean/noisy pairs as {height} x {width} {settings.dtype} spectrograms in {FEATURES}"


if __name__ == "__main__":
    run(main)
