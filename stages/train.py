"""Stage `train`: the U-Net on data/features, logged with dvclive; writes models/unet.pt."""

from pathlib import Path

from _stage import run
from tqdm import tqdm

from audiomnist_denoise.model import build_model, resolve_device, save_checkpoint
from audiomnist_denoise.params import load_params
from audiomnist_denoise.training import load_pairs, train
from dvclive import Live

FEATURES, SPLIT, MODEL, LIVE = Path("data/features"), Path("data/split.csv"), Path("models/unet.pt"), "dvclive"
# How a prediction is denormalised, for inference (see features.prediction_db_range).
NORMALISATION = "min-max per spectrogram; predictions denormalised to [noisy peak - top_db, noisy peak]"


def main() -> str:
    params = load_params()
    device = resolve_device(params.train.device)
    pairs = load_pairs(FEATURES, SPLIT, ("train", "val"))
    model = build_model(params.model.channels, params.model.init, params.model.output, params.train.seed)
    steps = -(-len(pairs["train"]) // params.train.batch_size) * params.train.epochs
    # dvclive's defaults would rewrite dvc.yaml and start a DVC experiment: dvc.yaml declares its outputs.
    with Live(dir=LIVE, save_dvc_exp=False, dvcyaml=None) as live, tqdm(total=steps, desc=f"train ({device})") as bar:

        def log(step: int, values: dict[str, float]) -> None:
            live.step = step
            for name, value in values.items():
                live.log_metric(name, value)

        model, result = train(model, pairs["train"], pairs["val"], params.train, device, log, bar)
        live.log_metric("val/best_loss", result.best_val_loss, plot=False)
        live.log_metric("val/identity_loss", result.identity_val_loss, plot=False)
    config = {
        "model": params.model.model_dump(),
        "features": params.features.model_dump(),
        "normalisation": NORMALISATION,
        "train": params.train.model_dump(),
        "best_step": result.best_step,
        "precision": result.precision,
    }
    save_checkpoint(MODEL, model, config)
    return (
        f"{result.steps} steps on {len(pairs['train'])} clips ({device}, {result.precision}): "
        f"best val loss {result.best_val_loss:.5f} "
        f"at step {result.best_step}, identity {result.identity_val_loss:.5f}, "
        f"ratio {result.best_val_loss / result.identity_val_loss:.3f}; {MODEL}"
    )


if __name__ == "__main__":
    run(main)
