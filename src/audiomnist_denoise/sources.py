"""Filling a raw corpus folder from a source: the embedded synthetic corpus or AudioMNIST."""

import json
import shutil
from functools import partial
from pathlib import Path

import soundfile as sf

from . import tts
from .corpus import (
    META_FILE,
    Clip,
    check_speakers_have_metadata,
    clean_metadata,
    find_clips,
    read_audio,
    read_raw_metadata,
    select_clips,
)
from .errors import PipelineError
from .fsutil import atomic_directory, write_wav
from .parallel import map_progress

_LISTED_PROBLEMS = 20


def _synthesize_file(clip: Clip, root: Path, sample_rate: int, seed: int) -> None:
    audio = tts.synthesize_clip(clip.speaker, clip.digit, clip.rep, sample_rate, seed)
    write_wav(root / clip.path, audio, sample_rate)


def write_tts_corpus(
    target: Path,
    n_speakers: int,
    reps: int,
    sample_rate: int,
    seed: int,
    speakers: list[str] | None,
    max_reps: int | None,
    workers: int,
) -> list[Clip]:
    """Synthesise the embedded corpus into `target`: `n_speakers` x 10 digits x `reps` clips."""
    available = tts.speaker_ids(n_speakers)
    unknown = sorted(set(speakers or []) - set(available))
    if unknown:
        raise PipelineError(
            f"data.speakers: {', '.join(unknown)} not among the {n_speakers} synthetic speakers "
            f"(data.tts.speakers gives 01 to {available[-1]})"
        )
    reps = min(reps, max_reps or reps)
    clips = [
        Clip(speaker, digit, rep) for speaker in (speakers or available) for digit in range(10) for rep in range(reps)
    ]
    with atomic_directory(target) as partial_dir:
        work = partial(_synthesize_file, root=partial_dir, sample_rate=sample_rate, seed=seed)
        for _ in map_progress(work, clips, workers, desc="corpus (eSpeak NG)"):
            pass
        entries = tts.metadata(sorted({clip.speaker for clip in clips}))
        (partial_dir / META_FILE).write_text(json.dumps(entries, indent=4, sort_keys=True) + "\n")
    return clips


def locate_audiomnist_data(folder: Path) -> Path:
    """The folder holding `audioMNIST_meta.txt`: `folder` itself or its `data/` (a clone)."""
    for candidate in (folder, folder / "data"):
        if (candidate / META_FILE).is_file():
            return candidate
    if not folder.is_dir():
        raise PipelineError(f"data.audiomnist_dir: {folder} is not a folder")
    raise PipelineError(f"data.audiomnist_dir: {folder} has no {META_FILE} (nor data/{META_FILE})")


def _import_file(clip: Clip, source: Path, target: Path, downmix: bool) -> str | None:
    """Copy one clip, downmixed if asked; the problem as text if it is unusable."""
    path = source / clip.path
    try:
        audio, rate = read_audio(path, downmix)
    except PipelineError as exc:
        return str(exc)
    destination = target / clip.path
    if sf.info(path).channels == 1:
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, destination)
    else:
        write_wav(destination, audio, rate)  # the float32 average of the channels, exactly
    return None


def import_audiomnist(
    source: Path, target: Path, speakers: list[str] | None, max_reps: int | None, downmix: bool, workers: int
) -> tuple[list[Clip], list[str]]:
    """Copy an AudioMNIST-layout folder into `target`, checking every clip and the metadata.

    Returns the clips and what cleaning the metadata will change (the file itself is
    copied as it is, so `target` stays in the AudioMNIST format).
    """
    data = locate_audiomnist_data(source)
    clips = select_clips(find_clips(data), speakers, max_reps)
    entries = read_raw_metadata(data / META_FILE)
    check_speakers_have_metadata(clips, entries, str(data / META_FILE))
    _, cleaning = clean_metadata(entries, str(data / META_FILE))
    with atomic_directory(target) as partial_dir:
        work = partial(_import_file, source=data, target=partial_dir, downmix=downmix)
        problems = [problem for problem in map_progress(work, clips, workers, desc="corpus (copy)") if problem]
        if problems:
            listed = "; ".join(problems[:_LISTED_PROBLEMS])
            more = f"; and {len(problems) - _LISTED_PROBLEMS} more" if len(problems) > _LISTED_PROBLEMS else ""
            raise PipelineError(f"{data}: {len(problems)} bad file(s): {listed}{more}")
        shutil.copyfile(data / META_FILE, partial_dir / META_FILE)
    return clips, cleaning
