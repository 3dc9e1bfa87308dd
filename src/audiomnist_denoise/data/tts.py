"""The embedded corpus: spoken digits synthesised offline with eSpeak NG.

eSpeak NG comes as a shared library inside the `espeakng-loader` wheel and is driven
through its C API with ctypes; no package binds that library to Python. The library
keeps state between calls (a pitch flutter counter, a noise generator), so each clip
gets a fresh load: load, initialise, seed (initialising seeds from the clock),
synthesise, terminate, unload. That makes
every clip a pure function of its speaker, digit and repetition. Threads sharing one
loaded library crash, so parallel work uses processes.
"""

import _ctypes
import ctypes
from dataclasses import dataclass

import espeakng_loader
import librosa
import numpy as np

from ..errors import PipelineError
from .corpus import VARIANT_KEY, VOICE_KEY, Clip

ESPEAK_RATE = 22050  # eSpeak NG's fixed output rate
# Each repetition's peak level and the silence before and after its word (seconds), drawn uniformly: the ranges
# the natural-voice set (data.natural) draws from too, so its clips sit in their files as these do.
LEVEL_RANGE = (0.3, 0.9)
SILENCE_RANGE = (0.03, 0.25)

# Digit words as a speaker's own language would spell them, so that a voice of
# that language reads English digits with its accent. Checked with
# espeak_TextToPhonemes: each spelling gives the English word's sounds in that
# language's phonemes.
DIGIT_WORDS = {
    "en": ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
    "de": ("sirou", "wann", "tuh", "sri", "foar", "feif", "sicks", "sewen", "eht", "nein"),
    "fr": ("ziro", "ouane", "tou", "sri", "faur", "faïve", "sixe", "sévène", "éte", "naïne"),
    "es": ("sirou", "guan", "tu", "tri", "for", "faif", "siks", "seven", "eit", "nain"),
    "it": ("ziro", "uan", "tu", "tri", "for", "faiv", "sics", "seven", "eit", "nain"),
    "pt": ("zirou", "uan", "tchu", "tri", "fór", "faive", "siks", "séven", "eit", "naine"),
    "nl": ("sieroo", "wan", "toe", "sri", "foor", "faaiv", "siks", "sevven", "eet", "naain"),
    "pl": ("ziro", "łan", "tu", "fri", "for", "fajw", "siks", "sewen", "ejt", "najn"),
    "sv": ("siro", "vann", "to", "tri", "får", "fajv", "sicks", "seven", "ejt", "najn"),
    "tr": ("ziro", "van", "tu", "tri", "for", "fayv", "siks", "seven", "eyt", "nayn"),
}


@dataclass(frozen=True)
class SyntheticSpeaker:
    voice: str  # eSpeak NG voice file name
    variant: str  # eSpeak NG voice variant: the timbre
    spelling: str  # key of DIGIT_WORDS
    gender: str
    accent: str
    origin: str
    age: int
    pitch: int  # eSpeak base pitch, 0 to 100
    rate: int  # words per minute

    @property
    def native_speaker(self) -> bool:
        return self.spelling == "en"


_S = SyntheticSpeaker
# Speaker "01" is SPEAKERS[0]. Order matters: data.tts.speakers takes the first N,
# so the first ones mix genders and accents.
SPEAKERS: tuple[SyntheticSpeaker, ...] = (
    _S("en-us", "m3", "en", "male", "american", "America, USA, Ohio", 34, 45, 170),
    _S("en", "f2", "en", "female", "british", "Europe, UK, London", 28, 55, 165),
    _S("de", "m1", "de", "male", "german", "Europe, Germany, Berlin", 26, 42, 160),
    _S("fr", "f3", "fr", "female", "french", "Europe, France, Lyon", 31, 58, 175),
    _S("en-gb-scotland", "m2", "en", "male", "scottish", "Europe, UK, Glasgow", 45, 38, 155),
    _S("es", "f1", "es", "female", "spanish", "Europe, Spain, Madrid", 24, 60, 185),
    _S("en-029", "m4", "en", "male", "caribbean", "America, Jamaica, Kingston", 29, 48, 165),
    _S("it", "m5", "it", "male", "italian", "Europe, Italy, Milan", 38, 50, 180),
    _S("en-us", "f4", "en", "female", "american", "America, USA, Texas", 52, 46, 150),
    _S("pt-br", "m6", "pt", "male", "brazilian", "South-America, Brazil, Recife", 23, 52, 190),
    _S("en-gb-x-rp", "f5", "en", "female", "british", "Europe, UK, Oxford", 61, 40, 145),
    _S("nl", "m7", "nl", "male", "dutch", "Europe, Netherlands, Utrecht", 33, 44, 170),
    _S("de", "f2", "de", "female", "german", "Europe, Germany, Hamburg", 27, 54, 165),
    _S("en-us-nyc", "m1", "en", "male", "american", "America, USA, New York", 41, 36, 175),
    _S("pl", "f3", "pl", "female", "polish", "Europe, Poland, Krakow", 30, 62, 160),
    _S("en-gb-x-gbclan", "m8", "en", "male", "british", "Europe, UK, Lancaster", 57, 40, 150),
    _S("sv", "f4", "sv", "female", "swedish", "Europe, Sweden, Uppsala", 35, 50, 170),
    _S("tr", "m2", "tr", "male", "turkish", "Asia, Turkey, Izmir", 26, 46, 175),
    _S("en-gb-x-gbcwmd", "f1", "en", "female", "british", "Europe, UK, Birmingham", 22, 64, 180),
    _S("de", "m6", "de", "male", "german", "Europe, Germany, Munich", 48, 34, 150),
    _S("en-029", "f5", "en", "female", "caribbean", "America, Trinidad, Port of Spain", 39, 52, 170),
    _S("es", "m3", "es", "male", "spanish", "South-America, Argentina, Cordoba", 44, 44, 195),
    _S("fr", "m4", "fr", "male", "french", "Europe, France, Marseille", 25, 48, 185),
    _S("en-us", "m7", "en", "male", "american", "America, USA, Oregon", 30, 56, 200),
    _S("it", "f1", "it", "female", "italian", "Europe, Italy, Naples", 36, 58, 190),
    _S("en", "m5", "en", "male", "british", "Europe, UK, Leeds", 64, 32, 140),
    _S("pt-br", "f2", "pt", "female", "brazilian", "South-America, Brazil, Sao Paulo", 29, 56, 180),
    _S("nl", "f5", "nl", "female", "dutch", "Europe, Netherlands, Leiden", 42, 46, 165),
    _S("en-gb-scotland", "f3", "en", "female", "scottish", "Europe, UK, Edinburgh", 33, 60, 160),
    _S("pl", "m8", "pl", "male", "polish", "Europe, Poland, Gdansk", 50, 38, 155),
    # 31 onwards: each with a base voice and a variant no other speaker has, so they can be test speakers
    # of `split.disjoint_voices` (the first 30 all share a base voice or a variant with one another).
    # Appended, never inserted: the speakers before keep their ids and clips.
    _S("es-419", "Alicia", "es", "female", "mexican", "America, Mexico, Guadalajara", 27, 56, 180),
    _S("nb", "Andy", "sv", "male", "norwegian", "Europe, Norway, Bergen", 37, 44, 165),
    _S("fr-be", "Andrea", "fr", "female", "belgian", "Europe, Belgium, Liege", 46, 52, 170),
    _S("ro", "paul", "it", "male", "romanian", "Europe, Romania, Cluj", 29, 46, 175),
    _S("af", "Annie", "nl", "female", "south african", "Africa, South Africa, Cape Town", 34, 58, 165),
    _S("fi", "Marco", "sv", "male", "finnish", "Europe, Finland, Tampere", 55, 38, 150),
    _S("pt", "belinda", "pt", "female", "portuguese", "Europe, Portugal, Porto", 40, 50, 175),
    _S("id", "michel", "es", "male", "indonesian", "Asia, Indonesia, Bandung", 24, 50, 185),
    _S("fr-ch", "steph", "fr", "female", "swiss", "Europe, Switzerland, Geneva", 31, 54, 160),
    _S("eu", "Lee", "es", "male", "basque", "Europe, Spain, Bilbao", 43, 42, 170),
)


def speaker_ids(count: int) -> list[str]:
    """The ids of the first `count` synthetic speakers (`data.tts.speakers`), at most the pool's."""
    if count > len(SPEAKERS):
        raise PipelineError(f"data.tts.speakers: {count} asked for, but the voice pool has {len(SPEAKERS)} speakers")
    return [f"{number:02d}" for number in range(1, count + 1)]


def speaker_profile(speaker: str) -> SyntheticSpeaker:
    number = int(speaker)
    if not 1 <= number <= len(SPEAKERS):
        raise PipelineError(f"synthetic speaker {speaker!r}: ids run from 01 to {len(SPEAKERS):02d}")
    return SPEAKERS[number - 1]


def metadata(speakers: list[str]) -> dict[str, dict]:
    """AudioMNIST-format metadata for synthetic speakers, with each one's eSpeak NG base voice and variant
    (`espeak voice`, `espeak variant`: what `split.disjoint_voices` keeps apart)."""
    entries = {}
    for speaker in speakers:
        profile = speaker_profile(speaker)
        entries[speaker] = {
            "accent": profile.accent,
            "age": profile.age,
            "gender": profile.gender,
            "native speaker": "yes" if profile.native_speaker else "no",
            "origin": profile.origin,
            "recordingdate": "synthetic",
            "recordingroom": "synthetic",
            "tts": f"espeak-ng {profile.voice}+{profile.variant}",
            VOICE_KEY: profile.voice,
            VARIANT_KEY: profile.variant,
        }
    return entries


class _Voice(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_char_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


_SYNTH_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000
_PARAM_RATE, _PARAM_PITCH, _PARAM_RANGE = 1, 3, 4


def _load_espeak() -> ctypes.CDLL:
    lib = ctypes.CDLL(espeakng_loader.get_library_path())
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
    lib.espeak_SetSynthCallback.argtypes = [_SYNTH_CALLBACK]
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_GetCurrentVoice.restype = ctypes.POINTER(_Voice)
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_Synth.argtypes = [
        ctypes.c_char_p,
        ctypes.c_size_t,
        ctypes.c_uint,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.c_uint,
        ctypes.c_void_p,
        ctypes.c_void_p,
    ]
    return lib


def espeak(text: str, voice: str, *, rate: int, pitch: int, pitch_range: int, seed: int) -> np.ndarray:
    """Speak `text` with eSpeak NG; int16 samples at ESPEAK_RATE. Same arguments, same samples."""
    lib = _load_espeak()
    try:
        chunks: list[np.ndarray] = []

        def collect(samples, count, _events):
            if count > 0:
                chunks.append(np.ctypeslib.as_array(samples, (count,)).copy())
            return 0

        callback = _SYNTH_CALLBACK(collect)  # kept alive until Terminate
        data_path = espeakng_loader.get_data_path().encode()
        if lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path, _INITIALIZE_DONT_EXIT) != ESPEAK_RATE:
            raise PipelineError(f"eSpeak NG failed to initialise from {data_path.decode()}")
        lib.espeak_SetSynthCallback(callback)
        if lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise PipelineError(f"eSpeak NG has no voice {voice!r}")
        # An unknown variant is silently ignored: check that it took.
        identifier = (lib.espeak_GetCurrentVoice().contents.identifier or b"").decode()
        if "+" in voice and not identifier.endswith("+" + voice.split("+", 1)[1]):
            raise PipelineError(f"eSpeak NG ignored the variant in {voice!r} (got {identifier!r})")
        lib.espeak_SetParameter(_PARAM_RATE, rate, 0)
        lib.espeak_SetParameter(_PARAM_PITCH, pitch, 0)
        lib.espeak_SetParameter(_PARAM_RANGE, pitch_range, 0)
        # Initialising seeds the noise generator from the clock: seed it afterwards.
        lib.espeak_ng_SetRandSeed(seed)
        encoded = text.encode() + b"\0"
        lib.espeak_Synth(encoded, len(encoded), 0, 0, 0, 0, None, None)
        lib.espeak_Synchronize()
        lib.espeak_Terminate()
    finally:
        _ctypes.dlclose(lib._handle)
    return np.concatenate(chunks) if chunks else np.zeros(0, np.int16)


def synthesize_clip(speaker: str, digit: int, rep: int, sample_rate: int, seed: int) -> np.ndarray:
    """One repetition of a digit by a synthetic speaker: int16 mono at `sample_rate`.

    Repetitions differ by seeded jitter in rate, pitch, pitch range, loudness and
    the silence before and after the word, as a person's repetitions do.
    """
    profile = speaker_profile(speaker)
    clip = Clip(speaker, digit, rep)
    rng = np.random.default_rng(clip.seed(seed, "tts"))
    rate = round(profile.rate * rng.uniform(0.88, 1.12))
    pitch = int(np.clip(profile.pitch + rng.integers(-6, 7), 0, 100))
    pitch_range = int(rng.integers(35, 80))
    level = rng.uniform(*LEVEL_RANGE)
    lead, tail = rng.uniform(*SILENCE_RANGE, size=2)
    engine_seed = int(rng.integers(1, 2**31 - 1))

    word = DIGIT_WORDS[profile.spelling][digit]
    voice = f"{profile.voice}+{profile.variant}"
    speech = espeak(word, voice, rate=rate, pitch=pitch, pitch_range=pitch_range, seed=engine_seed)
    if not np.any(speech):
        raise PipelineError(f"eSpeak NG produced silence for {clip.id} ({voice}, {word!r})")
    audio = librosa.resample(speech / 32768.0, orig_sr=ESPEAK_RATE, target_sr=sample_rate, res_type="soxr_hq")
    return place(audio, sample_rate, lead, tail, level)


def place(speech: np.ndarray, sample_rate: int, lead: float, tail: float, level: float) -> np.ndarray:
    """A spoken word as a clip: `lead` and `tail` seconds of silence around it, its peak at `level`, as int16."""
    audio = np.pad(speech, (round(lead * sample_rate), round(tail * sample_rate)))
    audio *= level / np.max(np.abs(audio))
    return np.round(audio * 32767).astype(np.int16)
