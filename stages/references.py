"""Stage `references`: the speech quality of every method that does not depend on the model (the noisy input,
spectral gating, the pretrained denoisers and both oracles) on the clips `evaluate` and `sweep` score.

They give the same audio whatever the model, so an experiment that changes only training leaves this stage
alone and `evaluate` and `sweep` score the model's own methods. Writes data/references/evaluate/ and
data/references/sweep/, each with scores.csv, stoi.csv and context.json (`evaluation.speech.Quality`).
"""

from _stage import run

from audiomnist_denoise.devices import resolve_device
from audiomnist_denoise.evaluation.methods import MODEL_FREE, apply_methods, model_free_context
from audiomnist_denoise.evaluation.speech import score_methods
from audiomnist_denoise.evaluation.test_sets import (
    SWEEP_GROUPING,
    evaluated_clips,
    load_test_audio,
    sweep_set,
    test_groupings,
)
from audiomnist_denoise.features.cache import open_features
from audiomnist_denoise.fsutil import atomic_directory
from audiomnist_denoise.layout import EVALUATE_REFERENCES, FEATURES, NOISY, RAW, REFERENCES, SPLIT, SWEEP_REFERENCES
from audiomnist_denoise.params import load_params


def main() -> str:
    params = load_params()
    settings, features = params.evaluate, params.features
    rate, device = features.sample_rate, resolve_device("auto", "references.device")
    test = evaluated_clips(open_features(FEATURES)[2], FEATURES, SPLIT, RAW, settings.age_bands)
    test = test[test.split == "test"].reset_index(drop=True)
    clean, noisy = load_test_audio(test, RAW, NOISY, rate)
    outputs = apply_methods(None, clean, noisy, features, settings, device, MODEL_FREE).outputs
    on_test = score_methods(
        clean, outputs, rate, settings.workers, settings.pesq_every, test_groupings(test), "speaker"
    )
    mixes = sweep_set(RAW, SPLIT, params.noise, settings, rate)
    outputs = apply_methods(None, mixes.clean, mixes.noisy, features, settings, device, MODEL_FREE).outputs
    on_sweep = score_methods(
        mixes.clean,
        outputs,
        rate,
        settings.workers,
        settings.pesq_every,
        mixes.groupings(),
        SWEEP_GROUPING,
        mixes.positions,
    )
    context = model_free_context(features, settings)
    for target, quality, keys in (
        (EVALUATE_REFERENCES, on_test, test.clip_id.tolist()),
        (SWEEP_REFERENCES, on_sweep, mixes.keys),
    ):
        with atomic_directory(target) as folder:
            quality.save(folder, keys, context)
    scored = f"{len(test)} test clips and {len(mixes.clips)} sweep mixes"
    return f"{len(MODEL_FREE)} model-free methods on {scored}, {device}; {REFERENCES}/"


if __name__ == "__main__":
    run(main)
