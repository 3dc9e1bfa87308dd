"""Stage `split`: data/split.csv gives each clip train, val or test; metrics/split.json counts them."""

import json

from _stage import run

from audiomnist_denoise.data.corpus import (
    META_FILE,
    check_speakers_have_metadata,
    clean_metadata,
    find_clips,
    read_raw_metadata,
)
from audiomnist_denoise.data.splits import assign_splits, choose_test_speakers, split_summary
from audiomnist_denoise.fsutil import write_text_atomic
from audiomnist_denoise.layout import RAW, SPLIT, SPLIT_METRICS
from audiomnist_denoise.params import load_params


def main() -> str:
    split = load_params().split
    clips = find_clips(RAW)
    entries = read_raw_metadata(RAW / META_FILE)
    check_speakers_have_metadata(clips, entries, str(RAW / META_FILE))
    speakers = [clip.speaker for clip in clips]
    genders = clean_metadata(entries, str(RAW / META_FILE))[0].set_index("speaker").gender.to_dict()
    test_speakers = choose_test_speakers(speakers, split.test_speakers, split.n_test_speakers, split.seed, genders)
    table = assign_splits(clips, test_speakers, split.val_fraction, split.val_by, split.seed)
    summary = split_summary(table)
    write_text_atomic(SPLIT, table.to_csv(index=False))
    write_text_atomic(SPLIT_METRICS, json.dumps(summary, indent=2) + "\n")
    counts = ", ".join(f"{count} {name}" for name, count in summary["clips"].items())
    return f"{counts} clips; test speakers {', '.join(test_speakers)}"


if __name__ == "__main__":
    run(main)
