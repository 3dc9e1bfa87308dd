"""Stage `references`: the speech quality of every method that does not depend on the model (the noisy input,
spectral gating, the pretrained denoisers and both oracles) on the clips `evaluate` and `conditions` score.

They give the same audio whatever the model, so an experiment that changes only training leaves this stage
alone and `evaluate` and `conditions` score the model's own methods. Writes data/references/{evaluate,conditions,
natural}/, each with scores.csv, stoi.csv and context.json (`evaluation.speech.Quality`).
"""

from _stage import run

from audiomnist_denoise.devices import resolve_device
from audiomnist_denoise.evaluation.clip_sets import (
    evaluated_clips,
    held_out_conditions,
    held_out_set,
    natural_conditions,
)
from audiomnist_denoise.evaluation.scoring import save_model_free_quality
from audiomnist_denoise.features.cache import read_index
from audiomnist_denoise.fsutil import atomic_directory
from audiomnist_denoise.layout import (
    CONDITION_REFERENCES,
    EVALUATE_REFERENCES,
    FEATURES,
    NATURAL,
    NOISY,
    RAW,
    REFERENCES,
    SPLIT,
)
from audiomnist_denoise.names import MODEL_FREE
from audiomnist_denoise.params import load_params


def main() -> str:
    params = load_params()
    settings, features, noise = params.evaluate, params.features, params.noise
    rate, device = features.sample_rate, resolve_device(settings.device, "evaluate.device")
    table = evaluated_clips(read_index(FEATURES), FEATURES, SPLIT, RAW, settings.age_bands, settings.test_reps)
    sets = {
        EVALUATE_REFERENCES: held_out_set(table[table.split == "test"].reset_index(drop=True), RAW, NOISY, rate),
        CONDITION_REFERENCES["test"]: held_out_conditions(RAW, SPLIT, noise, settings, rate).mixes,
        CONDITION_REFERENCES["natural"]: natural_conditions(NATURAL, RAW, SPLIT, noise, settings, rate).mixes,
    }
    for target, clips in sets.items():
        with atomic_directory(target) as folder:
            save_model_free_quality(clips, folder, features, settings, device)
    scored = ", ".join(f"{len(clips.keys)} clips of {target.name}" for target, clips in sets.items())
    return f"{len(MODEL_FREE)} model-free methods on {scored}, {device}; {REFERENCES}/"


if __name__ == "__main__":
    run(main)
