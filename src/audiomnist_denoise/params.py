"""Typed, validated parameters: one model per params.yaml section.

params.yaml is the only place that holds the numbers; these models hold none, so a
missing key is an error too. Validation is strict: "5" is not an int and 1 is not a bool.
"""

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .data.tts import SPEAKERS as TTS_SPEAKERS
from .errors import PipelineError

SpeakerId = Annotated[str, Field(pattern=r"^[0-9]{2}$")]
Workers = Annotated[int, Field(ge=0, description="worker processes; 0 uses every core")]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class TtsParams(Section):
    speakers: int = Field(ge=1, le=len(TTS_SPEAKERS))
    reps: int = Field(ge=1, le=1000)
    sample_rate: int = Field(ge=8000, le=192000)
    seed: int = Field(ge=0)


class DataParams(Section):
    source: Literal["tts", "audiomnist"]
    speakers: list[SpeakerId] | None = Field(min_length=1)
    max_reps: int | None = Field(ge=1)
    downmix: bool
    on_bad_file: Literal["error", "skip"]
    audiomnist_dir: str | None
    audiomnist_sha256: str | None = Field(pattern=r"^[0-9a-f]{64}$")
    workers: Workers
    tts: TtsParams


class NoiseParams(Section):
    kind: Literal["white", "pink", "brown", "babble", "files"]
    snr_db: float = Field(ge=-40, le=40)
    seed: int = Field(ge=0)
    babble_talkers: int = Field(ge=1, le=64)
    dir: str
    workers: Workers


class FeatureParams(Section):
    sample_rate: int = Field(ge=8000, le=192000)
    n_mels: int = Field(ge=8, le=1024)
    n_fft: int = Field(ge=64, le=65536)
    hop_length: int = Field(ge=1)
    fmin: float = Field(ge=0)
    fmax: float | None = Field(gt=0)
    top_db: float = Field(gt=0, le=200)
    size: list[Annotated[int, Field(ge=8, le=4096)]] = Field(min_length=2, max_length=2)  # [height, width]
    interpolation: Literal["area", "linear", "cubic"]
    dtype: Literal["float16", "float32"]
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
    test_speakers: list[SpeakerId] | None = Field(min_length=1)
    n_test_speakers: int = Field(ge=1)
    val_fraction: float = Field(gt=0, lt=1)
    val_by: Literal["clip", "speaker"]
    seed: int = Field(ge=0)


class ModelParams(Section):
    channels: list[Annotated[int, Field(ge=1, le=1024)]] = Field(min_length=2, max_length=6)
    init: Literal["kaiming", "xavier", "torch"]
    output: Literal["linear", "sigmoid"]


class TrainParams(Section):
    lr: float = Field(gt=0, le=1)
    schedule: Literal["constant", "cosine"]
    warmup_steps: int = Field(ge=0)
    batch_size: int = Field(ge=1, le=4096)
    epochs: int = Field(ge=1, le=1000)
    val_every: int = Field(ge=1)
    seed: int = Field(ge=0)
    device: Literal["auto", "cpu", "cuda"]
    precision: Literal["auto", "fp32", "bf16", "fp16"]
    compile: bool
    checkpoint_every: int = Field(ge=0, description="steps between resume points; 0: none")
    nproc: int = Field(ge=1, le=1024, description="training processes on this machine, under torchrun")


class EvaluateParams(Section):
    batch_size: int = Field(ge=1, le=4096)
    age_bands: list[Annotated[int, Field(ge=0, le=150)]] = Field(min_length=1)  # band edges in years
    griffin_lim_iters: int = Field(ge=1, le=1000)
    griffin_lim_start: Literal["noisy", "random"]
    seed: int = Field(ge=0)
    snr_sweep: list[Annotated[float, Field(ge=-40, le=40)]] = Field(min_length=1)
    sweep_reps: int = Field(ge=1)
    workers: int = Field(ge=0)


class SamplesParams(Section):
    count: int = Field(ge=1, le=100)
    griffin_lim_iters: int = Field(ge=1, le=1000)
    griffin_lim_start: Literal["noisy", "random"]
    seed: int = Field(ge=0)


class Params(Section):
    data: DataParams
    noise: NoiseParams
    features: FeatureParams
    split: SplitParams
    model: ModelParams
    train: TrainParams
    evaluate: EvaluateParams
    samples: SamplesParams


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
