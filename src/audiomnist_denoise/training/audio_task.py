"""The native track's training task: clean clips as audio, read a batch at a time from a store on disk
(`store`), noisy copies either the `mix` stage's (`fixed`) or mixed fresh for every clip of every batch
(`fresh`), spectrograms made on the device, and the loss between what the model gives and what it should.

Fresh noise for a clip at a step comes from a generator seeded by (train.seed, step, clip
row) alone, so a batch is the same whichever process makes it, and a resumed run draws the
noise an uninterrupted one would. The recording conditions (`conditions.recorded`) draw from a second
generator seeded by (train.seed, step, clip row, 1), so with them off the first draws exactly as before.
"""

import tempfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from ..audio.io import load_resampled
from ..audio.spectral import SpectralFrontend, si_sdr_batch
from ..data.corpus import Clip, parse_clip_path
from ..data.noise import NoiseMaker, scale_to_snr
from ..data.splits import read_split
from ..devices import autocast
from ..errors import PipelineError
from ..model.spectral import SpectralDenoiser
from ..params import TrainParams
from .conditions import recorded
from .intelligibility import ShortTimeIntelligibility
from .store import ClipStore, ClipStoreWriter

_COMPRESSION = 0.3  # the power-law exponent of the compressed-magnitude loss
_COMPRESSION_FLOOR = 1e-8  # under the square root's power: keeps the gradient finite at zero magnitude
_FIT_CLIPS = 256  # training inputs the dataset normalisation is measured on
_FIT_STEP = -1  # the noise generator's step for those inputs: never a training step's
_CONDITIONS_STREAM = 1  # the last seed word of the recording conditions' generator


@dataclass(frozen=True)
class AudioClips:
    """Clips at one sample rate: the clean ones and the mix stage's noisy copies, each in a `ClipStore`."""

    clean: ClipStore
    noisy: ClipStore  # the mix stage's copies
    clips: tuple[Clip, ...]

    @classmethod
    def in_memory(cls, clean: list[np.ndarray], noisy: list[np.ndarray], clips: tuple[Clip, ...]) -> "AudioClips":
        return cls(ClipStore.in_memory(clean), ClipStore.in_memory(noisy), clips)

    def __len__(self) -> int:
        return len(self.clips)

    @cached_property
    def lengths(self) -> torch.Tensor:
        """(N,) samples of each clip."""
        return torch.from_numpy(self.clean.lengths)

    def subset(self, rows: slice | torch.Tensor) -> "AudioClips":
        picked = torch.arange(len(self))[rows].numpy()
        return AudioClips(self.clean.subset(picked), self.noisy.subset(picked), tuple(self.clips[i] for i in picked))


def store_audio_clips(
    raw: Path, noisy: Path, split_file: Path, splits: tuple[str, ...], sample_rate: int, folder: Path
) -> dict[str, AudioClips]:
    """The clean and noisy clips of each named split at `sample_rate`, in the split file's order, written one at a
    time to stores in a new folder inside `folder` (two files per split; tasks built side by side share nothing)."""
    split, own = read_split(split_file), Path(tempfile.mkdtemp(prefix="clips-", dir=folder))
    stored = {}
    for name in splits:
        rows = split[split.split == name]
        if rows.empty:
            raise PipelineError(f"{split_file}: no {name} clips")
        clips = tuple(parse_clip_path(Path(row.speaker) / f"{row.clip_id}.wav") for row in rows.itertuples())
        clean, mixed = ClipStoreWriter(own / f"{name}-clean.f32"), ClipStoreWriter(own / f"{name}-noisy.f32")
        for clip in clips:
            audio, noisy_audio = (load_resampled(root / clip.path, sample_rate)[0] for root in (raw, noisy))
            if len(audio) != len(noisy_audio):
                raise PipelineError(f"{noisy / clip.path}: does not match its clean clip (length or sample rate)")
            clean.append(audio)
            mixed.append(noisy_audio)
        stored[name] = AudioClips(clean.finish(), mixed.finish(), clips)
    return stored


def _clip_means(errors: torch.Tensor, inside: torch.Tensor) -> torch.Tensor:
    """Each clip's mean error over its own frames. Every clip weighs the same, so the mean over a batch is
    the mean of its ranks' equal shares, and data-parallel training follows a single process."""
    return (errors * inside).sum(dim=(1, 2)) / inside.sum(dim=(1, 2))


def compress(magnitude: torch.Tensor) -> torch.Tensor:
    return (magnitude.square() + _COMPRESSION_FLOOR) ** (_COMPRESSION / 2)


def _phase_costs(
    target: torch.Tensor,
    noisy_spectrum: torch.Tensor,
    clean_spectrum: torch.Tensor,
    noisy_magnitude: torch.Tensor,
    clean_magnitude: torch.Tensor,
) -> torch.Tensor:
    """What each bin's phase adds to the squared distance between the compressed complex spectra, per unit of
    the denoised compressed magnitude a: |a e^(ip) - b e^(iq)|^2 = (a - b)^2 + a * 2b(1 - cos(p - q)) for the
    target's b (`target`). A real gain keeps the noisy phase p, so the cost is the noisy and clean spectra's
    alone, taken once per batch without a gradient; the loss then adds one product to the magnitude's error."""
    with torch.no_grad():
        inner = (noisy_spectrum * clean_spectrum.conj()).real
        cosine = inner / (noisy_magnitude * clean_magnitude).clamp_min(_COMPRESSION_FLOOR)
        return 2 * target * (1 - cosine)


class AudioTask:
    """A `tasks.Task` on `AudioClips` for a `SpectralDenoiser` (the model the trainer steps may be its
    data-parallel wrapper; `denoiser` is the module itself, for turning outputs into gains).

    `params.loss`: `mse` between the network's output and `denoiser.ideal_output`; `compressed`
    between the denoised and the clean STFT magnitude, each to the power 0.3, a bin's error weighted by
    `params.speech_loss_weight` where the denoised is below the clean, and `params.complex_weight` of it taken on the
    compressed complex spectra instead (`compressed_si_sdr` subtracts `params.si_sdr_weight` times the denoised
    audio's SI-SDR; both subtract `params.stoi_weight` times a STOI-like measure of its spectrum). Each clip's
    error is the mean over its own frames (padding counts in neither), and the loss the mean over clips. With
    `noise` (NoiseMakers, one drawn per clip where there are several) every batch is mixed afresh at SNRs drawn from
    `params.snr_db`, under `params.recording_conditions`; without, the mix stage's copies are the input.
    """

    def __init__(
        self,
        clips: AudioClips,
        denoiser: SpectralDenoiser,
        params: TrainParams,
        sample_rate: int,
        noise: tuple[NoiseMaker, ...] = (),
    ):
        self.clips, self.denoiser, self.params, self.sample_rate, self.noise = (
            clips,
            denoiser,
            params,
            sample_rate,
            noise,
        )
        self.frontend: SpectralFrontend = denoiser.frontend
        self.intelligibility = ShortTimeIntelligibility(sample_rate, self.frontend.n_fft, self.frontend.hop_length)

    def __len__(self) -> int:
        return len(self.clips)

    @property
    def tensors(self) -> list[torch.Tensor]:
        """What a resume point's fingerprint covers: the clips, and the mix stage's copies where they are the input."""
        clips = self.clips
        return [clips.clean.digest(), clips.lengths] + ([] if self.noise else [clips.noisy.digest()])

    def share(self, rank: int, size: int) -> "AudioTask":
        return AudioTask(self.clips.subset(slice(rank, None, size)), self.denoiser, self.params, self.sample_rate)

    def fresh_noisy(self, rows: torch.Tensor, step: int) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
        """The targets: the clean clips at `rows` under the recording conditions drawn for `step` (plus
        `babble_kept_db` of their babble, where set); each with new noise for `step`; and the SNR drawn for each
        (dB, over the clip as recorded)."""
        low, high = self.params.snr_db
        conditions = bool(self.params.recording_conditions())
        clean_rows = self.clips.clean.padded(rows)
        noisy = clean_rows.clone()
        snrs = np.empty(len(rows))
        for i, row in enumerate(rows.tolist()):
            seed = [self.params.seed, step + 1, row]  # step -1 is the fit's
            rng = np.random.default_rng(seed)
            length = int(self.clips.lengths[row])
            if conditions:
                audio = clean_rows[i, :length].double().numpy()
                own = np.random.default_rng(seed + [_CONDITIONS_STREAM])
                clean_rows[i, :length] = torch.from_numpy(recorded(audio, self.sample_rate, self.params, own))
            clean = clean_rows[i, :length].double().numpy()  # as float32, as the target is
            snrs[i] = rng.uniform(low, high)
            maker = self.noise[self.noise_index(rng)] if len(self.noise) > 1 else self.noise[0]
            noise = scale_to_snr(clean, maker(self.clips.clips[row], length, self.sample_rate, rng), snrs[i])
            noisy[i, :length] = torch.from_numpy(clean + noise)
            if maker.kind == "babble" and self.params.babble_kept_db is not None:
                clean_rows[i, :length] = torch.from_numpy(clean + noise * 10 ** (self.params.babble_kept_db / 20))
        return clean_rows, noisy, snrs

    def noise_index(self, rng: np.random.Generator) -> int:
        """Which of the noise makers a clip's draw picks: uniformly, or by `noise_weights` where set."""
        weights = self.params.noise_weights
        if weights is None:  # the draw every run before the weights made, so those runs train as they did
            return int(rng.integers(len(self.noise)))
        return int(rng.choice(len(self.noise), p=np.asarray(weights) / sum(weights)))

    def extent(self, rows: torch.Tensor) -> int:
        """The samples a batch of `rows` needs: its longest clip's."""
        return int(self.clips.lengths[rows].max())

    def batch(
        self, rows: torch.Tensor, step: int, device: torch.device, precision: str, extent: int | None = None
    ) -> tuple[torch.Tensor, ...]:
        """(clean, noisy, lengths) of `rows`, padded with zeros or cut to `extent` samples (default: the longest
        of them, `self.extent(rows)`)."""
        clean, noisy = (
            self.fresh_noisy(rows, step)[:2]
            if self.noise
            else (self.clips.clean.padded(rows), self.clips.noisy.padded(rows))
        )
        if extent is not None:
            clean, noisy = (torch.nn.functional.pad(audio, (0, extent - audio.shape[-1])) for audio in (clean, noisy))
        return clean.to(device), noisy.to(device), self.clips.lengths[rows].to(device)

    def training_inputs(self) -> list[torch.Tensor]:
        """Noisy mel power of up to 256 training clips, unpadded, as the model will see them (for the
        dataset normalisation): the mix stage's copies, or fresh noise from a step no batch uses."""
        rows = torch.arange(min(len(self), _FIT_CLIPS))
        noisy = self.fresh_noisy(rows, _FIT_STEP)[1] if self.noise else self.clips.noisy.padded(rows)
        lengths = self.clips.lengths[rows].tolist()
        return [self._mel(audio[None, :length]) for audio, length in zip(noisy, lengths, strict=True)]

    def _mel(self, audio: torch.Tensor) -> torch.Tensor:
        return self.frontend.mel(self.frontend.stft(audio).abs().square())

    def _frames_in_clip(self, lengths: torch.Tensor, frames: int) -> torch.Tensor:
        """(batch, 1, frames) True on the 1 + length // hop frames the clip alone has (as in evaluation), not
        on the padding."""
        return (torch.arange(frames, device=lengths.device) * self.frontend.hop_length <= lengths[:, None])[:, None]

    def _errors(
        self, model: torch.nn.Module, batch: tuple[torch.Tensor, ...], precision: str
    ) -> tuple[torch.Tensor, torch.Tensor, list[tuple[float, torch.Tensor]]]:
        """The squared errors (batch, rows, frames), the mask of frames within each clip, and the terms the loss
        subtracts, each a weight and a value per clip: the SI-SDR and the intelligibility measure, where on."""
        clean, noisy, lengths = batch
        rewards = []
        noisy_spectrum = self.frontend.stft(noisy)
        noisy_magnitude = noisy_spectrum.abs()
        noisy_mel = self.frontend.mel(noisy_magnitude.square())
        inside = self._frames_in_clip(lengths, noisy_mel.shape[-1])
        with autocast(precision, noisy.device):
            output = model(noisy_mel, inside)
        output = output.float()
        clean_spectrum = self.frontend.stft(clean)
        clean_magnitude = clean_spectrum.abs()
        if self.params.loss in ("compressed", "compressed_si_sdr"):
            gain = self.frontend.magnitude_gain(self.denoiser.power_gain(output, noisy_mel))
            compressed_denoised, compressed_clean = compress(gain * noisy_magnitude), compress(clean_magnitude)
            difference = compressed_denoised - compressed_clean
            squared = difference.square()
            # an asymmetric error: speech taken away costs intelligibility where noise left in costs comfort
            speech_weight, share = self.params.speech_loss_weight, self.params.complex_weight
            errors = squared if speech_weight == 1 else squared * torch.where(difference < 0, speech_weight, 1.0)
            if share:  # `share` of each bin's error on the complex spectra: the squared difference plus the phase's
                costs = _phase_costs(compressed_clean, noisy_spectrum, clean_spectrum, noisy_magnitude, clean_magnitude)
                errors = (
                    errors if speech_weight == 1 else torch.lerp(errors, squared, share)
                ) + compressed_denoised * (share * costs)
            if self.params.loss == "compressed_si_sdr":
                denoised = self.frontend.istft(gain * noisy_spectrum, clean.shape[-1])
                rewards.append((self.params.si_sdr_weight, si_sdr_batch(clean, denoised, lengths)))
            if self.params.stoi_weight:
                measure = self.intelligibility.to(noisy.device)(gain * noisy_magnitude, clean_magnitude, inside)
                rewards.append((self.params.stoi_weight, measure))
        else:
            ideal = self.denoiser.ideal_output(self.frontend.mel(clean_magnitude.square()), noisy_mel, inside)
            errors = (output - ideal).square()
        return errors, inside.expand_as(errors), rewards  # errors have the mel's frames in either loss

    def loss(self, model: torch.nn.Module, batch: tuple[torch.Tensor, ...], precision: str) -> torch.Tensor:
        errors, inside, rewards = self._errors(model, batch, precision)
        loss = _clip_means(errors, inside).mean()
        for weight, values in rewards:
            loss = loss - weight * values.mean()
        return loss

    @torch.no_grad()
    def error(self, model: torch.nn.Module, batch_size: int, device: torch.device, precision: str) -> tuple[float, int]:
        """The sum over clips of each clip's mean squared error and the number of clips, in evaluation mode
        (the SI-SDR and intelligibility terms are left out: validation compares one quantity across losses)."""
        model.eval()
        total, count = 0.0, 0
        for start in range(0, len(self), batch_size):
            rows = torch.arange(start, min(start + batch_size, len(self)))
            errors, inside, _ = self._errors(model, self.batch(rows, 0, device, precision), precision)
            total += _clip_means(errors, inside).sum().item()
            count += len(rows)
        return total, count

    def identity_loss(self) -> float:
        """The loss of taking the noisy input as the output (a gain of 1 everywhere), in batches of
        `params.batch_size` as validation takes them (the whole set at once would hold all its spectra)."""
        device = self.denoiser.db_mean.device
        total, count = self.error(_Identity(self.denoiser), self.params.batch_size, device, "fp32")
        return total / count


class _Identity(torch.nn.Module):
    """A stand-in network whose output is the gain 1: the noisy input unchanged."""

    def __init__(self, denoiser: SpectralDenoiser):
        super().__init__()
        self.denoiser = denoiser

    def forward(self, mel_power: torch.Tensor, inside: torch.Tensor | None = None) -> torch.Tensor:
        if self.denoiser.target == "mask":
            return torch.ones_like(mel_power)
        noisy_db = self.denoiser.frontend.power_db(mel_power)
        return self.denoiser.normalise(noisy_db, noisy_db, inside)  # the noisy dB itself, as a mapping
