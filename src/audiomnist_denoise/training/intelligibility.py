"""A differentiable short-time intelligibility term for the loss, STOI's intermediate measure taken on the model's
own STFT.

STOI (Taal et al., 2011) correlates the clean and the denoised envelopes of 15 one-third-octave bands over
segments of about 384 ms, after scaling the denoised segment to the clean one's energy and clipping it at 15 dB
above the clean. pystoi computes it in NumPy, for evaluation; `torch_stoi` needs torchaudio and a second STFT
at 10 kHz. Here the bands (pystoi's own `thirdoct`) and the segment length (pystoi's, in this STFT's frames)
are taken on the spectra the loss already has, so the term costs a band sum and a few reductions. It leaves
out STOI's removal of silent frames: a clip's frames are used as they are, padding excluded.
"""

import numpy as np
import torch
from pystoi.stoi import BETA, FS, MINFREQ, N_FRAME, NUMBAND, N
from pystoi.utils import thirdoct

_SEGMENT_SECONDS = N * (N_FRAME // 2) / FS  # STOI's segment: N frames at its hop of half a frame
_CLIP = 1 + 10 ** (-BETA / 20)  # the denoised envelope is clipped at this multiple of the clean one
_EPS = 1e-8  # under norms: keeps the gradient finite on a silent band


class ShortTimeIntelligibility(torch.nn.Module):
    """Each clip's mean correlation of clean and denoised one-third-octave envelopes (STOI's measure, 1 at
    best), over the segments that lie wholly within the clip; a clip shorter than one segment scores 0, with no
    gradient."""

    def __init__(self, sample_rate: int, n_fft: int, hop_length: int):
        super().__init__()
        bands, _ = thirdoct(sample_rate, n_fft, NUMBAND, MINFREQ)
        self.bins = int(np.flatnonzero(bands.any(axis=0)).max()) + 1  # the bands end near 4.3 kHz: skip the rest
        self.register_buffer("bands", torch.from_numpy(np.asarray(bands[:, : self.bins], np.float32)), persistent=False)
        self.frames = max(2, round(_SEGMENT_SECONDS * sample_rate / hop_length))

    def envelopes(self, magnitude: torch.Tensor) -> torch.Tensor:
        """(batch, bins, frames) STFT magnitudes to (batch, bands, frames) band magnitudes."""
        return torch.einsum("kf,bft->bkt", self.bands, magnitude[:, : self.bins].square()).add(_EPS).sqrt()

    def forward(self, denoised: torch.Tensor, clean: torch.Tensor, inside: torch.Tensor) -> torch.Tensor:
        """(batch,) from STFT magnitudes (batch, bins, frames) and the frames within each clip (batch, 1, frames)."""
        if clean.shape[-1] < self.frames:  # every clip in the batch is shorter than a segment
            return clean.new_zeros(clean.shape[0])
        x, y = (
            self.envelopes(m).unfold(-1, self.frames, 1) for m in (clean, denoised)
        )  # (batch, bands, segments, frames)
        scaled = y * (x.norm(dim=-1, keepdim=True) / (y.norm(dim=-1, keepdim=True) + _EPS))
        y = torch.minimum(scaled, _CLIP * x)
        x, y = x - x.mean(dim=-1, keepdim=True), y - y.mean(dim=-1, keepdim=True)
        correlation = (x * y).sum(dim=-1) / (x.norm(dim=-1) * y.norm(dim=-1) + _EPS)
        whole = inside.unfold(-1, self.frames, 1).all(dim=-1).to(correlation.dtype)  # (batch, 1, segments)
        return (correlation * whole).mean(dim=1).sum(dim=1) / whole.sum(dim=(1, 2)).clamp_min(1)
