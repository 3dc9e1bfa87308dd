"""Filling a raw corpus folder from a source: the embedded synthetic corpus or AudioMNIST."""

import json
import shutil
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import soundfile as sf

from ..audio.io import read_audio
from ..errors import BadFile, BadFileError, BadFilesError, PipelineError
from ..fsutil import atomic_directory, write_wav
from ..parallel import map_progress
from ..params import DataParams
from . import tts
from .corpus import META_FILE, Clip, clean_metadata, read_raw_metadata, scan_clips, select_clips
from .download import fetch_audiomnist


def _synthesize_file(clip: Clip, root: Path, sample_rate: int, seed: int) -> None:
    audio = tts.synthesize_clip(clip.speaker, clip.digit, clip.rep, sample_rate, seed)
    write_wav(root / clip.path, audio, sample_rate)


def write_tts_corpus(target: Path, data: DataParams) -> list[Clip]:
    """Synthesise the embedded corpus into `target`: `data.tts.speakers` x 10 digits x `data.tts.reps` clips,
    narrowed by `data.speakers` and `data.max_reps`."""
    available = tts.speaker_ids(data.tts.speakers)
    unknown = sorted(set(data.speakers or []) - set(available))
    if unknown:
        raise PipelineError(
            f"data.speakers: {', '.join(unknown)} not among the {data.tts.speakers} synthetic speakers "
            f"(data.tts.speakers gives 01 to {available[-1]})"
        )
    reps = min(data.tts.reps, data.max_reps or data.tts.reps)
    speakers = data.speakers or available
    clips = [Clip(speaker, digit, rep) for speaker in speakers for digit in range(10) for rep in range(reps)]
    with atomic_directory(target) as partial_dir:
        work = partial(_synthesize_file, root=partial_dir, sample_rate=data.tts.sample_rate, seed=data.tts.seed)
        for _ in map_progress(work, clips, data.workers, desc="corpus (eSpeak NG)"):
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


def _import_file(clip: Clip, source: Path, target: Path, downmix: bool) -> BadFile | None:
    """Copy one clip, downmixed if asked; what is wrong with it if it is unusable."""
    path = source / clip.path
    try:
        audio, rate = read_audio(path, downmix)
    except BadFileError as exc:
        return BadFile(clip.path, exc.bad.reason)
    destination = target / clip.path
    if sf.info(path).channels == 1:
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, destination)
    else:
        write_wav(destination, audio, rate)  # the float32 average of the channels, exactly
    return None


def _split_unknown_speakers(clips: list[Clip], entries: dict[str, dict]) -> tuple[list[Clip], list[BadFile]]:
    """The clips whose speaker has a metadata entry, and the others as bad files."""
    unknown = [clip for clip in clips if clip.speaker not in entries]
    bad = [BadFile(clip.path, f"speaker {clip.speaker} has no entry in {META_FILE}") for clip in unknown]
    return [clip for clip in clips if clip.speaker in entries], bad


@dataclass(frozen=True)
class ImportedCorpus:
    clips: list[Clip]  # copied
    bad_files: list[BadFile]  # left out, paths relative to the source folder; empty unless skipped
    cleaning: list[str]  # what cleaning the metadata will change


def import_audiomnist(source: Path, target: Path, data: DataParams) -> ImportedCorpus:
    """Copy an AudioMNIST-layout folder into `target`, checking every file and the metadata.

    A bad file (a wrong name, a speaker without metadata, audio that does not decode, is
    empty or is not mono) is left out when `data.on_bad_file` is `skip`, else a BadFilesError
    lists every one and nothing is written. The metadata file is copied as it is, so `target`
    stays in the AudioMNIST format.
    """
    folder = locate_audiomnist_data(source)
    clips, bad_names = scan_clips(folder)
    entries = read_raw_metadata(folder / META_FILE)
    _, cleaning = clean_metadata(entries, str(folder / META_FILE))
    clips, unknown_speakers = _split_unknown_speakers(select_clips(clips, data.speakers, data.max_reps), entries)
    with atomic_directory(target) as partial_dir:
        work = partial(_import_file, source=folder, target=partial_dir, downmix=data.downmix)
        problems = list(map_progress(work, clips, data.workers, desc="corpus (copy)"))  # None for a good clip
        kept = [clip for clip, problem in zip(clips, problems, strict=True) if problem is None]
        bad_files = sorted(bad_names + unknown_speakers + [problem for problem in problems if problem])
        if bad_files and data.on_bad_file == "error":
            raise BadFilesError(f"{folder}: {len(bad_files)} bad file(s)", bad_files)
        if not kept:
            raise BadFilesError(f"{folder}: all {len(bad_files)} file(s) are bad, none left to keep", bad_files)
        shutil.copyfile(folder / META_FILE, partial_dir / META_FILE)
    return ImportedCorpus(kept, bad_files, cleaning)


@dataclass(frozen=True)
class FilledCorpus:
    """What `fill_corpus` put in the raw folder, and from where."""

    clips: list[Clip]
    bad_files: list[BadFile]  # left out (AudioMNIST with `data.on_bad_file` skip)
    cleaning: list[str]  # what cleaning the metadata will change
    kind: str  # synthetic or AudioMNIST
    source: Path | None  # the AudioMNIST folder copied

    def summary(self, target: Path) -> str:
        speakers = len({clip.speaker for clip in self.clips})
        where = f" from {self.source}" if self.source else ""
        return f"{len(self.clips)} {self.kind} clips of {speakers} speakers{where} in {target}"


def fill_corpus(data: DataParams, target: Path, downloads: Path) -> FilledCorpus:
    """Fill `target` from `data.source`: the embedded eSpeak NG corpus, or AudioMNIST from `data.audiomnist_dir`
    or else downloaded into `downloads` (`download.fetch_audiomnist`). Bad AudioMNIST files raise BadFilesError
    unless skipped (`import_audiomnist`)."""
    if data.source == "tts":
        return FilledCorpus(write_tts_corpus(target, data), [], [], "synthetic", None)
    source = Path(data.audiomnist_dir) if data.audiomnist_dir else fetch_audiomnist(downloads, data.audiomnist_sha256)
    imported = import_audiomnist(source, target, data)
    return FilledCorpus(imported.clips, imported.bad_files, imported.cleaning, "AudioMNIST", source)


def corpus_metrics(kept: int, bad_files: list[BadFile]) -> dict:
    """metrics/corpus.json: the clips kept and every bad file with its reason."""
    return {"clips": {"kept": kept, "bad": len(bad_files)}, "bad_files": [asdict(bad) for bad in bad_files]}
