"""The command line: `audiomnist-denoise denoise IN.wav [...] -o OUT_DIR`, or the same through
`python -m audiomnist_denoise`.

Bad input is one line on stderr starting with `error:` and exit status 1, as in the stages.
"""

import argparse
import sys
from pathlib import Path

import soundfile as sf

from .denoise import StreamingDenoiser, check_input, check_outputs, denoise_file, plan_outputs
from .devices import resolve_device
from .errors import PipelineError
from .layout import MODEL
from .model.checkpoint import load_model
from .names import RECONSTRUCTIONS
from .params import Device, options


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive integer")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="audiomnist-denoise",
        description="audiomnist-denoise: denoise recordings with the trained U-Net.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    denoise = commands.add_parser(
        "denoise",
        help="denoise recordings with a trained model",
        description=(
            "Denoise recordings of any length, sample rate and number of channels with a trained U-Net. "
            "Each input file is written to OUT_DIR/<input stem>.wav, and every audio file under an input folder to "
            "the same place under OUT_DIR (IN/a/b.flac -> OUT_DIR/a/b.wav), as a 32-bit float WAV with the input's "
            "sample rate, channels and number of samples."
        ),
    )
    denoise.add_argument(
        "inputs",
        nargs="+",
        type=Path,
        metavar="IN",
        help="audio files (any format libsndfile reads) or folders of them",
    )
    denoise.add_argument("-o", "--output-dir", required=True, type=Path, metavar="OUT_DIR", help="created if missing")
    denoise.add_argument("--model", type=Path, default=MODEL, help="checkpoint (default: %(default)s)")
    denoise.add_argument(
        "--method",
        choices=tuple(RECONSTRUCTIONS),
        default="mask",
        help="mask: the estimate as a gain on the noisy STFT, noisy phase kept; "
        "griffinlim: Griffin-Lim from the noisy phase (default: %(default)s)",
    )
    denoise.add_argument(
        "--griffin-lim-iters", type=_positive_int, default=32, metavar="N", help="for griffinlim (default: %(default)s)"
    )
    denoise.add_argument(
        "--device", choices=options(Device), default="auto", help="auto: CUDA if present (default: auto)"
    )
    denoise.set_defaults(handler=run_denoise)
    return parser


def _summary(path: Path, output: Path, method: str) -> str:
    info = sf.info(output)  # the output has the input's rate, channels and length
    return (
        f"{path}: {info.frames / info.samplerate:.2f} s, {info.channels} channel(s) at {info.samplerate} Hz, "
        f"{method} -> {output}"
    )


def run_denoise(args: argparse.Namespace) -> None:
    """The checks that need no model come first, so a bad input fails before any work."""
    device = resolve_device(args.device, "--device")
    plan = plan_outputs(args.inputs, args.output_dir)
    for path, _ in plan:
        check_input(path)
    check_outputs([output for _, output in plan])
    model, settings = load_model(args.model, device)
    for path, output in plan:
        denoiser = StreamingDenoiser(model, settings, args.method, device, args.griffin_lim_iters)
        denoise_file(path, args.output_dir, denoiser, output)
        print(_summary(path, output, args.method), flush=True)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
