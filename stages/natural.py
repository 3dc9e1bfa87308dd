"""Stage `natural`: the natural-voice evaluation set in data/natural, the digits spoken by Piper voices.

No stage trains on it: it is for evaluation alone.
"""

from _stage import run

from audiomnist_denoise.data.natural import write_natural_corpus
from audiomnist_denoise.layout import NATURAL
from audiomnist_denoise.params import load_params


def main() -> str:
    natural = load_params().natural
    clips = write_natural_corpus(NATURAL, natural)
    return f"{len(clips)} clips of {len(natural.voices)} Piper voice(s) ({', '.join(natural.voices)}) in {NATURAL}"


if __name__ == "__main__":
    run(main)
