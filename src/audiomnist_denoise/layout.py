"""Where the pipeline's files live, relative to the project root: named once here for the stage scripts, the
scripts and the command line (`dvc.yaml` names the outputs too, for DVC)."""

from pathlib import Path

RAW = Path("data/raw")
NATURAL = Path("data/natural")  # the natural-voice evaluation set (Piper voices), in the corpus layout
NOISY = Path("data/noisy")
SPLIT = Path("data/split.csv")
FEATURES = Path("data/features")
DOWNLOADS = Path("data/downloads")  # outside every output: a download survives reruns
MODEL = Path("models/unet.pt")
RESUME_POINT = Path("checkpoints/train.pt")  # not a DVC output: DVC deletes a stage's outputs before it runs
TRAINING_STORES = Path("data/stores")  # not a DVC output: the train stage's clips while it runs (on disk, not /tmp)
LIVE = Path("dvclive")
TRAINING_METRICS = LIVE / "metrics.json"
LOSS_CURVES = LIVE / "plots" / "metrics"
CORPUS_METRICS = Path("metrics/corpus.json")
SPLIT_METRICS = Path("metrics/split.json")
REFERENCES = Path("data/references")  # the model-free methods' scores on every set of clips evaluation scores
EVALUATE_REFERENCES = REFERENCES / "evaluate"  # on evaluate's test clips
CONDITION_REFERENCES = {"test": REFERENCES / "conditions", "natural": REFERENCES / "natural"}  # `conditions`' sets
EVAL_METRICS = Path("metrics/eval.json")
EVAL_PLOTS = Path("plots/eval")
CONDITION_METRICS = Path("metrics/conditions.json")
SWEEP_PLOTS = Path("plots/sweep")  # {kind}/{metric}.csv: one row per SNR, one column per method
SAMPLES = Path("samples")
SAMPLE_FIGURES = Path("plots/samples")
# One table of test clips per group in EVAL_PLOTS (x: group, y: mse in `dvc plots`).
GROUP_TABLES = {
    "digit": "by_digit.csv",
    "speaker": "by_speaker.csv",
    "gender": "by_gender.csv",
    "accent": "by_accent.csv",
    "age_band": "by_age.csv",
}
