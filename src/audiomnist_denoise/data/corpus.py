"""The AudioMNIST layout: clip names, the metadata file, and checks on a corpus folder.

A corpus folder holds `{speaker}/{digit}_{speaker}_{rep}.wav` (speaker as two digits)
and `audioMNIST_meta.txt`, a JSON object keyed by speaker id.
"""

import hashlib
import json
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import BadFile, BadFileError, BadFilesError, PipelineError

META_FILE = "audioMNIST_meta.txt"
# Keys of the synthetic corpus's metadata, absent from the real AudioMNIST's: the eSpeak NG base voice and
# variant a speaker was made with (two speakers sharing either are not two strangers).
VOICE_KEY, VARIANT_KEY = "espeak voice", "espeak variant"
_CLIP_NAME = re.compile(r"(?P<digit>[0-9])_(?P<speaker>[0-9]{2})_(?P<rep>0|[1-9][0-9]*)\.wav")
# Known misspellings in the real metadata, mapped to what was meant.
_ROOM_TYPOS = {"vr-romm": "vr-room"}
_AGE_RANGE = (5, 110)


@dataclass(frozen=True, order=True)
class Clip:
    speaker: str
    digit: int
    rep: int

    @property
    def id(self) -> str:
        return f"{self.digit}_{self.speaker}_{self.rep}"

    @property
    def path(self) -> str:
        """Path relative to the corpus folder."""
        return f"{self.speaker}/{self.id}.wav"

    def seed(self, base: int, purpose: str) -> int:
        """A 63-bit seed for this clip alone: the same in any order, process or run."""
        digest = hashlib.sha256(f"{purpose}:{base}:{self.id}".encode()).digest()
        return int.from_bytes(digest[:8], "little") >> 1


def parse_clip_path(relative: str | Path) -> Clip:
    """The clip a corpus-relative path names; an error if it breaks the AudioMNIST pattern."""
    relative = Path(relative)
    match = _CLIP_NAME.fullmatch(relative.name)
    if match is None:
        raise BadFileError(relative, "not an AudioMNIST clip name ({digit}_{speaker}_{rep}.wav)")
    clip = Clip(match["speaker"], int(match["digit"]), int(match["rep"]))
    if relative.parent.as_posix() != clip.speaker:
        raise BadFileError(relative, f"clip of speaker {clip.speaker} is not in folder {clip.speaker}/")
    return clip


def scan_clips(root: Path) -> tuple[list[Clip], list[BadFile]]:
    """Every clip under `root`, sorted, and every wav whose name breaks the layout; an error if there are no wavs."""
    clips, bad = [], []
    for path in sorted(root.rglob("*.wav")):
        try:
            clips.append(parse_clip_path(path.relative_to(root)))
        except BadFileError as exc:
            bad.append(exc.bad)
    if not clips and not bad:
        raise PipelineError(f"{root}: no AudioMNIST clips ({{speaker}}/{{digit}}_{{speaker}}_{{rep}}.wav)")
    return sorted(clips), bad


def find_clips(root: Path) -> list[Clip]:
    """Every clip under `root`, sorted; an error naming each file that breaks the layout."""
    clips, bad = scan_clips(root)
    if bad:
        raise BadFilesError(f"{root}: {len(bad)} badly named file(s)", bad)
    return clips


def select_clips(clips: list[Clip], speakers: list[str] | None, max_reps: int | None) -> list[Clip]:
    """The clips of the chosen speakers (all if None) with repetition below `max_reps`."""
    if speakers is not None:
        missing = sorted(set(speakers) - {clip.speaker for clip in clips})
        if missing:
            raise PipelineError(f"data.speakers: no clips for speaker(s) {', '.join(missing)}")
        clips = [clip for clip in clips if clip.speaker in speakers]
    if max_reps is not None:
        clips = [clip for clip in clips if clip.rep < max_reps]
    return clips


def read_raw_metadata(path: Path) -> dict[str, dict]:
    try:
        entries = json.loads(path.read_text())
    except FileNotFoundError:
        raise PipelineError(f"{path}: metadata file missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PipelineError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(entries, dict) or not all(isinstance(entry, dict) for entry in entries.values()):
        raise PipelineError(f"{path}: expected a JSON object of speaker entries")
    return entries


def _clean_age(value) -> tuple[float, str | None]:
    """Age in years or NaN, and what was cleaned (None if nothing)."""
    try:
        age = int(str(value).strip())
    except ValueError:
        return np.nan, f"age {value!r} is not a number: missing"
    if not _AGE_RANGE[0] <= age <= _AGE_RANGE[1]:
        return np.nan, f"age {value!r} is impossible: missing"
    return float(age), None if isinstance(value, int) else "age given as text: read as a number"


def _clean_label(value) -> str:
    """Lower case, trimmed, without stray question marks: 'German ' and 'german' are one accent."""
    return str(value).strip().strip("?").strip().lower()


def _one_of(value, allowed: tuple[str, ...], field: str, speaker: str, source: str) -> str:
    clean = _clean_label(value)
    if clean not in allowed:
        raise PipelineError(f"{source}: speaker {speaker}: {field} is {value!r}, expected {' or '.join(allowed)}")
    return clean


def _voice_field(entry: dict, key: str, speaker: str, source: str) -> str | None:
    if key not in entry:
        return None
    value = entry[key]
    if not isinstance(value, str) or not value.strip():
        raise PipelineError(f"{source}: speaker {speaker}: {key} is {value!r}, expected an eSpeak NG name")
    return value.strip()


def clean_metadata(entries: dict[str, dict], source: str = META_FILE) -> tuple[pd.DataFrame, list[str]]:
    """The AudioMNIST metadata as a clean table, and one line for each kind of thing cleaned.

    Columns: speaker, gender, accent, age (float, NaN when missing or impossible),
    native_speaker (bool), origin, room, espeak_voice and espeak_variant (the synthetic
    corpus's eSpeak NG base voice and variant; None for a speaker without them, as every
    real AudioMNIST speaker). An entry with one of the two and not the other is an error.
    """
    rows, cleaned = [], defaultdict(list)
    for speaker, entry in sorted(entries.items()):
        if not re.fullmatch(r"[0-9]{2}", speaker):
            raise PipelineError(f"{source}: speaker key {speaker!r} is not a two-digit id")
        missing = [key for key in ("gender", "accent", "age") if key not in entry]
        if missing:
            raise PipelineError(f"{source}: speaker {speaker} lacks {', '.join(missing)}")
        age, age_note = _clean_age(entry["age"])
        if age_note:
            cleaned[age_note].append(speaker)
        voice, variant = (_voice_field(entry, key, speaker, source) for key in (VOICE_KEY, VARIANT_KEY))
        if (voice is None) != (variant is None):
            given, lacking = (VOICE_KEY, VARIANT_KEY) if variant is None else (VARIANT_KEY, VOICE_KEY)
            raise PipelineError(f"{source}: speaker {speaker} has {given!r} but lacks {lacking!r}")
        accent = _clean_label(entry["accent"])
        room = _clean_label(entry.get("recordingroom", ""))
        room = _ROOM_TYPOS.get(room, room)
        for field, raw, clean in (("accent", entry["accent"], accent), ("room", entry.get("recordingroom", ""), room)):
            if raw != clean:
                cleaned[f"{field} {raw!r} -> {clean!r}"].append(speaker)
        rows.append(
            {
                "speaker": speaker,
                "gender": _one_of(entry["gender"], ("male", "female"), "gender", speaker, source),
                "accent": accent,
                "age": age,
                "native_speaker": _one_of(
                    entry.get("native speaker", "no"), ("yes", "no"), "native speaker", speaker, source
                )
                == "yes",
                "origin": str(entry.get("origin", "")).strip(),
                "room": room,
                "espeak_voice": voice,
                "espeak_variant": variant,
            }
        )
    notes = [f"{change} (speaker {', '.join(speakers)})" for change, speakers in cleaned.items()]
    return pd.DataFrame(rows, columns=_COLUMNS), notes


_COLUMNS = ["speaker", "gender", "accent", "age", "native_speaker", "origin", "room", "espeak_voice", "espeak_variant"]


def speaker_voices(table: pd.DataFrame) -> dict[str, tuple[str, str]] | None:
    """speaker -> (eSpeak NG base voice, variant) from a clean metadata table; None when no speaker has them
    (the real AudioMNIST)."""
    known = table[table.espeak_voice.notna()]
    if known.empty:
        return None
    return {row.speaker: (row.espeak_voice, row.espeak_variant) for row in known.itertuples()}


def load_metadata(corpus: Path) -> pd.DataFrame:
    """The clean metadata table of a corpus folder."""
    path = corpus / META_FILE
    table, _ = clean_metadata(read_raw_metadata(path), str(path))
    return table


def check_speakers_have_metadata(clips: list[Clip], entries: dict[str, dict], source: str) -> None:
    missing = sorted({clip.speaker for clip in clips} - set(entries))
    if missing:
        raise PipelineError(f"{source}: no entry for speaker(s) {', '.join(missing)}")
