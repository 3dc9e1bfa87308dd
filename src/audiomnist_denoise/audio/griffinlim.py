"""Griffin-Lim in PyTorch, batched: mel power back to audio for many clips at once, on CPU or CUDA.

librosa's `mel_to_audio` does the same for one clip at a time with NumPy, and its
mel-to-linear step (L-BFGS-B over every bin) costs more than the iterations. Here both
steps run as batched tensor operations: the mel-to-linear step as non-negative least
squares by accelerated projected gradient (FISTA), the iterations as librosa's fast
Griffin-Lim (momentum 0.99, Perraudin et al. 2013) with the same STFT conventions
(periodic Hann window, centred frames padded with zeros), so the two agree.

Clips of different lengths share a batch: each is padded with silent frames, and after
every inverse STFT the samples past a clip's own length are zeroed, as trimming to that
length would; a clip's audio therefore does not depend on what it is batched with.
"""

from functools import lru_cache

import numpy as np
import torch
from torch import nn

from ..params import FeatureParams
from .spectral import mel_basis_of, mel_key, mel_power

MOMENTUM = 0.99  # librosa's default
NNLS_ITERATIONS = 30
_CPU_NNLS_COLUMNS = 256
_CPU_CLIPS_AT_ONCE = 16  # per Griffin-Lim pass on CPU: larger batches fall out of cache and get slower
_CUDA_CLIPS_AT_ONCE = 256


@lru_cache(maxsize=8)
def _cached_filterbank(
    basis_key: tuple, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    # The float32 filterbank librosa.feature.inverse.mel_to_stft builds for float32 spectrograms, which this
    # step follows (tests/test_griffinlim.py); the tensors below are float32 either way.
    basis = mel_basis_of(basis_key, np.float32).astype(np.float64)
    step = 1.0 / np.linalg.norm(basis, 2) ** 2
    as_tensor = lambda array: torch.from_numpy(np.ascontiguousarray(array, np.float32)).to(device)  # noqa: E731
    # Each mel filter covers a few bins: sparse products are several times faster than dense ones.
    return as_tensor(basis).to_sparse(), as_tensor(basis.T).to_sparse(), as_tensor(np.linalg.pinv(basis)), float(step)


def _nnls_columns(target: torch.Tensor, basis_key: tuple, iterations: int) -> torch.Tensor:
    """The non-negative P minimising ||A P - target|| column by column, by FISTA from librosa's start
    (the pseudo-inverse, clipped at 0)."""
    basis, basis_t, pseudo_inverse, step = _cached_filterbank(basis_key, target.device)
    power = torch.clamp(pseudo_inverse @ target, min=0.0)
    momentum_point, t = power, 1.0
    gram_target = torch.sparse.mm(basis_t, target)
    for _ in range(iterations):
        gradient = torch.sparse.mm(basis_t, torch.sparse.mm(basis, momentum_point)) - gram_target
        updated = torch.clamp(momentum_point - step * gradient, min=0.0)
        t_next = (1 + (1 + 4 * t * t) ** 0.5) / 2
        momentum_point = updated + ((t - 1) / t_next) * (updated - power)
        power, t = updated, t_next
    return power


def mel_to_magnitude(mel: torch.Tensor, settings: FeatureParams, iterations: int = NNLS_ITERATIONS) -> torch.Tensor:
    """(B, n_mels, T) mel power -> (B, 1 + n_fft // 2, T) STFT magnitude: the square root of the
    non-negative power P that minimises ||A P - mel||, as librosa.feature.inverse.mel_to_stft.

    A few tens of iterations leave a residual below librosa's L-BFGS-B result at a small
    fraction of its cost. Frames are independent problems; on CPU they are solved in blocks
    small enough to stay in cache (docs/performance.md).
    """
    key = mel_key(settings)
    batch, n_mels, frames = mel.shape
    target = mel.float().permute(1, 0, 2).reshape(n_mels, batch * frames)  # one column per frame of any clip
    block = target.shape[1] if mel.device.type == "cuda" else _CPU_NNLS_COLUMNS
    power = torch.cat(
        [
            _nnls_columns(target[:, start : start + block], key, iterations)
            for start in range(0, target.shape[1], block)
        ],
        dim=1,
    )
    return torch.sqrt(power).reshape(-1, batch, frames).permute(1, 0, 2)


class _Stft:
    """The spectral core's STFT conventions (`audio.spectral`: periodic Hann window, centred frames padded with
    zeros) in torch, for one n_fft and hop. Spectra are laid out (clip, frame, bin), the layout the FFTs read
    and write, so no iteration transposes anything.

    Both directions are written out rather than taken from torch.stft and torch.istft:
    - torch.istft divides every clip by the window envelope of all the batch's frames, so near the
      end of a clip shorter than its batch mates the divisor would include their frames, and a
      clip's audio would depend on what it is batched with; here each clip has its own envelope;
    - overlap-adding as R shifted sums of hop-sized blocks (R = n_fft / hop) is several times
      faster on CPU than the general fold torch.istft uses, and the whole loop is memory-bound.
    """

    def __init__(self, settings: FeatureParams, device: torch.device):
        self.n_fft, self.hop = settings.n_fft, settings.hop_length
        self.window = torch.hann_window(self.n_fft, periodic=True, device=device)

    def frame_count(self, length: int) -> int:
        return 1 + length // self.hop

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """(B, samples) -> (B, frames, 1 + n_fft // 2) complex."""
        padded = nn.functional.pad(audio, (self.n_fft // 2, self.n_fft // 2))
        frames = padded.unfold(-1, self.n_fft, self.hop)[:, : self.frame_count(audio.shape[1])]
        return torch.fft.rfft(frames * self.window, dim=-1)

    def _overlap_add(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, F, n_fft) frames summed at their hop: (B, n_fft + hop * (F - 1)) samples."""
        batch, count, _ = frames.shape
        if self.n_fft % self.hop:
            total = self.n_fft + self.hop * (count - 1)
            columns = frames.transpose(1, 2)
            summed = nn.functional.fold(columns, (1, total), kernel_size=(1, self.n_fft), stride=(1, self.hop))
            return summed.reshape(batch, total)
        blocks = self.n_fft // self.hop
        pieces = frames.reshape(batch, count, blocks, self.hop)
        summed = frames.new_zeros(batch, count + blocks - 1, self.hop)
        for block in range(blocks):  # block k of frame j lands on output block j + k
            summed[:, block : block + count] += pieces[:, :, block]
        return summed.reshape(batch, -1)

    def normaliser(self, frame_counts: list[int], lengths: list[int], width: int) -> torch.Tensor:
        """What the overlap-added samples of `width` frames are multiplied by: per clip, the inverse of
        the summed squared window over its own frames (1 where that is ~0, as librosa.istft), and 0
        from the clip's end on, so its samples past its own length stay silent."""
        device = self.window.device
        own = (torch.arange(width, device=device)[None, :] < torch.tensor(frame_counts, device=device)[:, None]).float()
        envelope = self._overlap_add(own[:, :, None] * self.window.square())
        tiny = torch.finfo(envelope.dtype).tiny
        inverse = torch.where(envelope > tiny, 1 / envelope.clamp_min(tiny), torch.ones_like(envelope))
        samples = torch.arange(inverse.shape[1], device=device)[None, :] - self.n_fft // 2  # first frame centred on 0
        inside = (samples >= 0) & (samples < torch.tensor(lengths, device=device)[:, None])
        return nn.functional.pad(inverse * inside, (0, self.n_fft))  # room for any hop (see inverse)

    def inverse(self, spectrum: torch.Tensor, length: int, normaliser: torch.Tensor) -> torch.Tensor:
        """(B, frames, bins) -> audio of `length` samples (every clip padded to the longest); `normaliser`
        from `normaliser()`."""
        summed = self._overlap_add(torch.fft.irfft(spectrum, n=self.n_fft, dim=-1) * self.window)
        start = self.n_fft // 2
        summed = nn.functional.pad(summed, (0, max(0, start + length - summed.shape[1])))  # hop > n_fft / 2
        return (summed * normaliser[:, : summed.shape[1]])[:, start : start + length]


def _pad_stack(arrays: list[np.ndarray], width: int) -> np.ndarray:
    return np.stack([np.pad(array, [(0, 0)] * (array.ndim - 1) + [(0, width - array.shape[-1])]) for array in arrays])


def griffin_lim_batch(
    mel_powers: list[np.ndarray],
    lengths: list[int],
    settings: FeatureParams,
    n_iter: int,
    seed: int,
    phase_from: list[np.ndarray] | None = None,
    device: str | torch.device = "cpu",
) -> list[np.ndarray]:
    """Audio (float32, `lengths[i]` samples) whose mel power approximates each `mel_powers[i]` (n_mels, frames).

    The iterations start from the phase of `phase_from[i]` (a recording of the same length,
    e.g. the noisy input: a far better start than none) or, without it, from a random
    phase drawn from `seed` and the clip's position in the list.
    """
    if len(mel_powers) != len(lengths) or (phase_from is not None and len(phase_from) != len(lengths)):
        raise ValueError("griffin_lim_batch needs one length (and one phase source, if any) per spectrogram")
    frames = [power.shape[1] for power in mel_powers]
    expected = [1 + length // settings.hop_length for length in lengths]
    if frames != expected:
        raise ValueError(f"spectrogram frames {frames} do not match lengths {lengths} at hop {settings.hop_length}")
    device = torch.device(device)
    stft = _Stft(settings, device)
    at_once = _CUDA_CLIPS_AT_ONCE if device.type == "cuda" else _CPU_CLIPS_AT_ONCE
    order = np.argsort(lengths, kind="stable")  # similar lengths together: less padding
    audio: list[np.ndarray] = [np.zeros(0, np.float32)] * len(lengths)
    for start in range(0, len(order), at_once):
        chunk = order[start : start + at_once]
        if phase_from is not None:
            phases = _phase_of([phase_from[i] for i in chunk], stft)
        else:
            phases = _random_phase(seed, chunk, [frames[i] for i in chunk], settings)
        outputs = _griffin_lim(
            [mel_powers[i] for i in chunk], [lengths[i] for i in chunk], phases.to(device), stft, settings, n_iter
        )
        for i, output in zip(chunk, outputs, strict=True):
            audio[i] = output
    return audio


def _phase_of(recordings: list[np.ndarray], stft: _Stft) -> torch.Tensor:
    longest = max(len(recording) for recording in recordings)
    spectrum = stft.forward(torch.from_numpy(_pad_stack([np.asarray(a, np.float32) for a in recordings], longest)))
    return torch.sgn(spectrum)


def _random_phase(seed: int, positions: np.ndarray, frames: list[int], settings: FeatureParams) -> torch.Tensor:
    """A unit phasor per bin and frame, each clip's drawn from (seed, its position) at its own
    size and then padded, so what a clip is batched with does not change it."""
    bins, width = 1 + settings.n_fft // 2, max(frames)
    angles = torch.zeros(len(frames), width, bins)
    for row, (position, count) in enumerate(zip(positions, frames, strict=True)):
        clip_seed = int(np.random.SeedSequence([seed, int(position)]).generate_state(1)[0])
        angles[row, :count] = torch.rand((count, bins), generator=torch.Generator().manual_seed(clip_seed))
    return torch.polar(torch.ones_like(angles), 2 * torch.pi * angles)


def _griffin_lim(
    mel_powers: list[np.ndarray],
    lengths: list[int],
    phases: torch.Tensor,
    stft: _Stft,
    settings: FeatureParams,
    n_iter: int,
) -> list[np.ndarray]:
    device, longest = phases.device, max(lengths)
    mel = torch.from_numpy(_pad_stack([np.asarray(p, np.float32) for p in mel_powers], stft.frame_count(longest)))
    magnitude = mel_to_magnitude(mel.to(device), settings).transpose(1, 2).contiguous()  # (clip, frame, bin)
    normaliser = stft.normaliser([power.shape[1] for power in mel_powers], lengths, magnitude.shape[1])
    estimate = magnitude * phases
    previous = None
    for _ in range(n_iter):
        rebuilt = stft.forward(stft.inverse(estimate, longest, normaliser))
        # fast Griffin-Lim: step past the new estimate, away from the previous one; then keep only the phase
        angles = rebuilt if previous is None else torch.add(rebuilt, previous, alpha=-MOMENTUM / (1 + MOMENTUM))
        estimate = magnitude * torch.sgn(angles)
        previous = rebuilt
    audio = stft.inverse(estimate, longest, normaliser).cpu().numpy()
    return [audio[i, :length].copy() for i, length in enumerate(lengths)]


def spectral_convergence(target_power: np.ndarray, audio: np.ndarray, settings: FeatureParams) -> float:
    """||M - mel(audio)|| / ||M|| on mel magnitudes: how far `audio` is from the mel spectrogram asked for."""
    target = np.sqrt(np.asarray(target_power, np.float64))
    achieved = np.sqrt(mel_power(audio, settings))
    return float(np.linalg.norm(target - achieved) / np.linalg.norm(target))
