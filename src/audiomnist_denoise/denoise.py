"""Denoising users' own recordings with a trained model: any length, any sample rate, any number of channels.

The study's model was trained on whole short clips (one spoken digit) whose mel spectrograms
were resized to H x W. A longer recording's mel spectrogram is therefore cut into
overlapping windows of W frames (a native-track model reads any width, and windows only
bound its memory), each estimated as a clip of its own, and the estimates
are cross-faded into one clean mel estimate of the whole recording, which is then turned
into audio: as a gain on the noisy STFT (`mask`) or by Griffin-Lim (`griffinlim`).

Windowing in the mel domain and inverting the cross-faded estimate keeps the phase consistent
across windows: there are no separately reconstructed pieces of audio whose phases could
disagree where they overlap (which overlap-adding per-window audio would smear into comb filtering).

`denoise_audio` does all of this on a whole recording in memory. `denoise_file` streams: it reads,
denoises and writes a chunk of frames at a time, so its memory does not grow with the recording.
Every step is local in time (an STFT frame reads n_fft samples, a window W frames, an inverse STFT
n_fft / hop frames, a Griffin-Lim iteration as many again), and the windows lie on one grid from
the first frame, so a chunk computed with enough frames of context on each side equals the same
frames of the whole recording's result (`StreamingDenoiser`).
"""

import contextlib
import math
import tempfile
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf
import soxr
import torch
from torch import nn
from tqdm import tqdm

from .audio.io import FloatWavWriter, check_audio_file, read_blocks, resample
from .audio.reconstruct import mask_denoise
from .audio.spectral import mel_basis, mel_power, power_db, stft
from .errors import PipelineError
from .evaluation.methods import estimate_clean_mel, griffin_lim_audio
from .fsutil import atomic_file
from .model.spectral import SpectralDenoiser
from .names import RECONSTRUCTIONS
from .params import FeatureParams

NATIVE_WINDOW_FRAMES = 256  # a native-track model reads any width; windows only bound the memory
WINDOWS_PER_BATCH = 32  # windows estimated at once: bounds memory for long recordings
CHUNK_HOPS = 16  # window hops of output per streamed chunk
READ_SAMPLES = 1 << 16  # per read from the input file
RESAMPLE_QUALITY = "HQ"  # soxr's, as `audio.io.resample` (librosa's soxr_hq)


def window_starts(frames: int, width: int) -> list[int]:
    """The first frame of each window over `frames` mel frames: one every width // 2 frames from the
    first, up to the first window that reaches the last frame. That one, and only it, may be shorter than
    `width` (by less than half), so the grid does not depend on where the recording ends."""
    hop = max(width // 2, 1)
    last = max(0, math.ceil((frames - width) / hop)) * hop
    return list(range(0, last + 1, hop))


def _taper(width: int) -> np.ndarray:
    # Hann without its zero end points, so every frame, the first and last too, has some weight to normalise.
    return np.hanning(width + 2)[1:-1]


def window_weights(starts: list[int], frames: int, width: int, first: int, last: int) -> list[np.ndarray]:
    """Each window's weights over its frames, normalised over frames [first, last), which every window
    covering them must be among `starts`."""
    taper = _taper(width)
    total = np.zeros(last - first)
    for start in starts:
        lo, hi = max(start, first), min(start + width, frames, last)
        total[lo - first : hi - first] += taper[lo - start : hi - start]
    weights = []
    for start in starts:
        own = taper[: min(width, frames - start)].copy()
        lo, hi = max(start, first), min(start + width, frames, last)
        own[lo - start : hi - start] /= total[lo - first : hi - first]
        weights.append(own)
    return weights


def _is_constant(power: np.ndarray, settings: FeatureParams) -> bool:
    """A spectrogram `features.from_mel_power` cannot normalise (digital silence, say)."""
    db = power_db(power, settings.top_db)
    return float(db.max()) == float(db.min())


def _estimate_windows(
    model: nn.Module, windows: list[np.ndarray], settings: FeatureParams, device: torch.device
) -> list[np.ndarray]:
    """The model's clean mel estimate of each window; a constant window (silence) estimates silence."""
    estimates = [np.zeros_like(window) for window in windows]
    audible = [i for i, window in enumerate(windows) if not _is_constant(window, settings)]
    clean = estimate_clean_mel(model, [windows[i] for i in audible], settings, device)
    for i, estimate in zip(audible, clean, strict=True):
        estimates[i] = estimate
    return estimates


def window_width(model: nn.Module, settings: FeatureParams) -> int:
    return NATIVE_WINDOW_FRAMES if isinstance(model, SpectralDenoiser) else settings.size[1]


def _estimate_frames(
    model: nn.Module,
    mel: np.ndarray,
    offset: int,
    frames: int,
    span: tuple[int, int],
    settings: FeatureParams,
    device: torch.device,
) -> np.ndarray:
    """Frames [first, last) of the cross-faded estimate of a recording of `frames` mel frames, from `mel`,
    its noisy mel power from frame `offset` on, which must hold every window that covers those frames."""
    first, last = span
    width = window_width(model, settings)
    starts = [start for start in window_starts(frames, width) if start < last and start + width > first]
    estimate = np.zeros((mel.shape[0], last - first))
    weights = window_weights(starts, frames, width, first, last)
    for batch in range(0, len(starts), WINDOWS_PER_BATCH):
        chosen = starts[batch : batch + WINDOWS_PER_BATCH]
        windows = [mel[:, start - offset : min(start + width, frames) - offset] for start in chosen]
        estimates = _estimate_windows(model, windows, settings, device)
        chosen_weights = weights[batch : batch + WINDOWS_PER_BATCH]
        for start, weight, clean in zip(chosen, chosen_weights, estimates, strict=True):
            lo, hi = max(start, first), min(start + clean.shape[1], last)
            estimate[:, lo - first : hi - first] += (weight * clean)[:, lo - start : hi - start]
    return estimate


def estimate_windowed(model: nn.Module, noisy_mel: np.ndarray, settings: FeatureParams, device: torch.device):
    """The clean mel power estimate of a whole recording's noisy mel power (n_mels, frames), at its
    shape: windows of settings.size[1] frames (NATIVE_WINDOW_FRAMES for the native track), cross-faded
    (`window_weights`)."""
    frames = noisy_mel.shape[1]
    return _estimate_frames(model, noisy_mel, 0, frames, (0, frames), settings, device)


def _reconstruct(
    noisy: np.ndarray,
    estimate: np.ndarray,
    settings: FeatureParams,
    method: str,
    device: torch.device,
    griffin_lim_iters: int,
) -> np.ndarray:
    if method == "mask":
        return mask_denoise(noisy, estimate, settings)
    return griffin_lim_audio([estimate], [noisy], settings, griffin_lim_iters, "noisy", 0, device)[0]


def _denoise_channel(
    channel: np.ndarray,
    rate: int,
    model: nn.Module,
    settings: FeatureParams,
    method: str,
    device: torch.device,
    griffin_lim_iters: int,
) -> np.ndarray:
    """One channel at `rate`: to the model's rate, denoised, back to `rate` at its own number of samples."""
    audio = resample(np.asarray(channel, np.float32), rate, settings.sample_rate)
    estimate = estimate_windowed(model, mel_power(audio, settings), settings, device)
    denoised = _reconstruct(audio, estimate, settings, method, device, griffin_lim_iters)
    return librosa.util.fix_length(resample(denoised, settings.sample_rate, rate), size=len(channel))


def _check_method(method: str) -> None:
    if method not in RECONSTRUCTIONS:
        raise ValueError(f"method must be one of {', '.join(RECONSTRUCTIONS)}, not {method!r}")


def denoise_audio(
    audio: np.ndarray,
    rate: int,
    model: nn.Module,
    settings: FeatureParams,
    method: str,
    device: torch.device,
    griffin_lim_iters: int = 32,
) -> np.ndarray:
    """Denoised `audio` (samples,) or (samples, channels) at `rate`, whole and in memory: float32 of the
    same shape, each channel on its own. `method`: mask or griffinlim."""
    _check_method(method)
    if audio.ndim not in (1, 2) or len(audio) == 0:
        raise ValueError(f"audio must be (samples,) or (samples, channels) with samples, not {audio.shape}")
    channels = audio.reshape(len(audio), -1)
    padded = np.pad(channels, ((0, frame_padding(len(channels), rate, settings)), (0, 0)))
    denoised = [
        _denoise_channel(padded[:, c], rate, model, settings, method, device, griffin_lim_iters)
        for c in range(channels.shape[1])
    ]
    return np.stack(denoised, axis=1)[: len(audio)].reshape(audio.shape).astype(np.float32)


def frame_padding(samples: int, rate: int, settings: FeatureParams) -> int:
    """The silence after a recording of `samples` at `rate` that fills one STFT frame (n_fft samples at the
    model's rate): a shorter recording is denoised with it, which librosa would otherwise warn of, and its
    output cut back to the recording's length."""
    return max(0, math.ceil(settings.n_fft * rate / settings.sample_rate) - samples)


class StreamingDenoiser:
    """One channel at the model's rate, denoised chunk by chunk as `denoise_audio` denoises it whole.

    `push` takes the next samples and returns the denoised samples that are complete; `finish` returns
    the rest. Chunk k is the output frames [k C, (k + 1) C), C = `chunk_hops` window hops. It is made
    from the samples of those frames and `context` frames either side (the recording's own edges where
    they come first), with the estimate of every frame from the windows on the whole recording's grid,
    and only its own frames' samples are kept: the context absorbs the effect of cutting the audio there.
    Memory holds the samples of about one chunk and its context, whatever the recording's length.
    """

    def __init__(
        self,
        model: nn.Module,
        settings: FeatureParams,
        method: str,
        device: torch.device,
        griffin_lim_iters: int = 32,
        chunk_hops: int = CHUNK_HOPS,
    ):
        _check_method(method)
        self.model, self.settings, self.method, self.device = model, settings, method, device
        self.griffin_lim_iters, self.chunk_hops = griffin_lim_iters, chunk_hops
        self.hop, self.n_fft = settings.hop_length, settings.n_fft
        self.width = window_width(model, settings)
        self.chunk = chunk_hops * max(self.width // 2, 1)  # frames of output per chunk
        reach = math.ceil(self.n_fft / self.hop)  # frames either side that one inverse STFT mixes
        self.context = reach * (1 + (griffin_lim_iters + 1 if method == "griffinlim" else 0))
        self.buffer = np.zeros(0, np.float32)
        self.buffer_start = 0  # the recording's sample at buffer[0]
        self.next_frame = 0  # the first output frame not yet produced
        self.basis = mel_basis(settings)

    def fresh(self) -> "StreamingDenoiser":
        """A denoiser of the same model and settings, at the start of a recording."""
        return StreamingDenoiser(
            self.model, self.settings, self.method, self.device, self.griffin_lim_iters, self.chunk_hops
        )

    def push(self, samples: np.ndarray) -> np.ndarray:
        self.buffer = np.concatenate([self.buffer, np.asarray(samples, np.float32)])
        end = self.buffer_start + len(self.buffer)
        done = []
        # A chunk is ready once the samples reach past every window it reads, and past the next window: only
        # then is each of its windows known to be whole (the last window of the recording may be shorter).
        while (self.next_frame + self.chunk + self.context + 2 * self.width) * self.hop + self.n_fft <= end:
            done.append(self._chunk(length=None))
        return np.concatenate(done) if done else np.zeros(0, np.float32)

    def finish(self) -> np.ndarray:
        length = self.buffer_start + len(self.buffer)
        done = []
        while self.next_frame * self.hop < length:
            done.append(self._chunk(length))
        return np.concatenate(done) if done else np.zeros(0, np.float32)

    def _samples(self, start: int, stop: int, length: int | None) -> np.ndarray:
        """The recording's samples [start, stop), zeros before its start and past its end (`length`)."""
        out = np.zeros(stop - start, np.float64)
        lo, hi = max(start, 0), min(stop, self.buffer_start + len(self.buffer))
        if lo < self.buffer_start or (length is None and hi < stop):
            raise AssertionError(f"samples [{start}, {stop}) are not all in the buffer")  # a bug, never bad input
        out[lo - start : hi - start] = self.buffer[lo - self.buffer_start : hi - self.buffer_start]
        return out

    def _chunk(self, length: int | None) -> np.ndarray:
        hop, width, context = self.hop, self.width, self.context
        first, last = self.next_frame, self.next_frame + self.chunk
        # The recording's frames so far: all of them at the end, else enough that no window read is its last.
        frames = 1 + length // hop if length is not None else last + context + 2 * width
        # The segment of audio reconstructed: the chunk's frames and their context, within the recording.
        low = max(0, first - context)
        seg_start = low * hop
        seg_stop = (last + context) * hop if length is None else min(length, (last + context) * hop)
        seg_frames = 1 + (seg_stop - seg_start) // hop
        # The noisy mel of every window covering the segment's frames, framed as the whole recording's STFT.
        starts = [s for s in window_starts(frames, width) if s < low + seg_frames and s + width > low]
        mel_first, mel_last = starts[0], min(starts[-1] + width, frames)
        pad = self.n_fft // 2
        audio = self._samples(mel_first * hop - pad, (mel_last - 1) * hop - pad + self.n_fft, length)
        spectrum = stft(audio, self.settings, centered=False)
        mel = self.basis @ np.abs(spectrum) ** 2
        estimate = _estimate_frames(
            self.model, mel, mel_first, frames, (low, low + seg_frames), self.settings, self.device
        )
        segment = self._samples(seg_start, seg_stop, length).astype(np.float32)
        denoised = _reconstruct(segment, estimate, self.settings, self.method, self.device, self.griffin_lim_iters)
        keep_stop = last * hop if length is None else min(length, last * hop)
        kept = denoised[first * hop - seg_start : keep_stop - seg_start]
        self.next_frame = last
        drop = max(0, (self.next_frame - context - 2 * width) * hop - pad)  # before anything a later chunk reads
        if drop > self.buffer_start:
            self.buffer = self.buffer[drop - self.buffer_start :]
            self.buffer_start = drop
        return kept


# The file names taken as audio in a folder input: soundfile's own rule on writing (the suffix is a format's name,
# in any case) and the other usual spellings of those formats. RAW is header-less: no such file reads as given.
AUDIO_SUFFIXES = frozenset(f".{name.lower()}" for name in sf.available_formats() if name != "RAW") | {
    ".aif",
    ".aifc",
    ".oga",
    ".opus",
}


def output_path(path: Path, out_dir: Path, root: Path | None = None) -> Path:
    """Where `path`'s denoised audio goes: OUT_DIR/<its stem>.wav, or for a file found in the folder `root`, its
    place under `root` with a .wav suffix (root/a/b.flac -> OUT_DIR/a/b.wav)."""
    relative = Path(path).relative_to(root) if root is not None else Path(Path(path).name)
    return Path(out_dir) / relative.with_name(f"{relative.stem}.wav")


def check_input(path: Path) -> None:
    """An error naming `path` unless it is a file of decodable, non-empty audio (reads only its header)."""
    if Path(path).is_dir():
        raise PipelineError(f"{path}: a folder, not an audio file")
    if not Path(path).is_file():
        raise PipelineError(f"{path}: no such input file")
    check_audio_file(path)


def audio_files(folder: Path, skip: Path | None = None) -> list[Path]:
    """The audio files (AUDIO_SUFFIXES) under `folder` at any depth, sorted; hidden files and folders (a macOS
    ._ file, an interrupted run's .partial) and anything under `skip` (an output folder inside) are left out."""
    skip = skip.resolve() if skip is not None else None
    found = []
    for path in sorted(Path(folder).rglob("*")):
        parts = path.relative_to(folder).parts
        if path.suffix.lower() not in AUDIO_SUFFIXES or any(part.startswith(".") for part in parts):
            continue
        if path.is_file() and (skip is None or not path.resolve().is_relative_to(skip)):
            found.append(path)
    return found


def plan_outputs(inputs: list[Path], out_dir: Path) -> list[tuple[Path, Path]]:
    """Each audio file to denoise and its output: a file as given to OUT_DIR/<stem>.wav, a folder as every audio
    file under it in the same layout under OUT_DIR (`output_path`). An error if a folder holds no audio file, if two
    inputs would be written to one output, or an output would overwrite an input."""
    out_dir = Path(out_dir)
    plan = []
    for given in map(Path, inputs):
        if not given.is_dir():
            plan.append((given, output_path(given, out_dir)))
            continue
        # An output folder inside the input one is not read back: a rerun would denoise the last run's outputs.
        inside = out_dir.resolve() != given.resolve()
        files = audio_files(given, skip=out_dir if inside else None)
        if not files:
            raise PipelineError(
                f"{given}: no audio file in this folder or below it (no .wav, .flac, .ogg, .mp3 or other file "
                f"named for one of the {len(AUDIO_SUFFIXES)} formats soundfile reads)"
            )
        plan.extend((path, output_path(path, out_dir, root=given)) for path in files)
    seen: dict[Path, Path] = {}
    for path, output in plan:
        if output in seen:
            raise PipelineError(f"{path}: same name as {seen[output]}; both would be written to {output}")
        seen[output] = path
    resolved = {path.resolve() for path, _ in plan}
    for path, output in plan:
        if output.resolve() in resolved:
            raise PipelineError(f"{path}: its output {output} would overwrite an input; choose another output folder")
    return plan


def check_outputs(outputs: list[Path]) -> None:
    """An error naming the path unless every output can be written: its folder is, or can be made, a folder that
    takes new files, and the output itself is not a folder. Checked by doing it (permissions alone miss a read-only
    disk, or /proc, which refuses folders even to root); the folders made to find out are removed again."""
    for output in outputs:
        if Path(output).is_dir():
            raise PipelineError(f"{output}: an output file's path is a folder")
    for folder in dict.fromkeys(Path(output).parent for output in outputs):
        _check_output_folder(folder)


def _check_output_folder(folder: Path) -> None:
    missing = []  # the folders that mkdir will make, deepest first
    for ancestor in (folder, *folder.parents):
        if ancestor.exists():
            if not ancestor.is_dir():
                where = "" if ancestor == folder else f"{ancestor} "
                raise PipelineError(f"{folder}: {where}is a file, not a folder; choose another output folder")
            break
        missing.append(ancestor)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as exc:
        raise PipelineError(f"{folder}: cannot create or write to this output folder ({exc.strerror})") from None
    finally:
        for made in missing:
            with contextlib.suppress(OSError):
                made.rmdir()


class _ChannelStream:
    """One channel of a file at its own rate: to the model's rate, `StreamingDenoiser`, and back, with
    soxr's streaming resampler (the same samples as its whole-array one), at the input's number of samples."""

    def __init__(self, rate: int, denoiser: StreamingDenoiser):
        self.rate, self.model_rate = rate, denoiser.settings.sample_rate
        stream = lambda a, b: soxr.ResampleStream(a, b, 1, np.float32, RESAMPLE_QUALITY) if a != b else None  # noqa: E731
        self.inward, self.outward = stream(rate, self.model_rate), stream(self.model_rate, rate)
        self.denoiser = denoiser
        self.length = self.resampled = self.written = 0
        self.held = np.zeros(0, np.float32)  # output beyond the input read so far, until more comes

    def push(self, samples: np.ndarray) -> np.ndarray:
        self.length += len(samples)
        return self._out(self.denoiser.push(self._in(samples, last=False)), last=False)

    def finish(self) -> np.ndarray:
        tail = self._in(np.zeros(0, np.float32), last=True)
        # `audio.io.resample` (librosa's) gives ceil(n * ratio) samples, padding soxr's rounded count with silence.
        tail = np.pad(tail, (0, max(0, math.ceil(self.length * self.model_rate / self.rate) - self.resampled)))
        return self._out(np.concatenate([self.denoiser.push(tail), self.denoiser.finish()]), last=True)

    def _in(self, samples: np.ndarray, last: bool) -> np.ndarray:
        resampled = samples if self.inward is None else self.inward.resample_chunk(samples, last=last)
        self.resampled += len(resampled)
        return resampled

    def _out(self, denoised: np.ndarray, last: bool) -> np.ndarray:
        denoised = np.asarray(denoised, np.float32)
        back = denoised if self.outward is None else self.outward.resample_chunk(denoised, last=last)
        pending = np.concatenate([self.held, back])
        room = self.length - self.written
        if last:  # as librosa.util.fix_length: cut to the input's length, or pad it with silence
            out = np.pad(pending, (0, max(0, room - len(pending))))[:room]
        else:
            out, self.held = pending[:room], pending[room:]
        self.written += len(out)
        return out


def denoise_file(path: Path, out_dir: Path, denoiser: StreamingDenoiser, output: Path | None = None) -> Path:
    """Denoise the recording at `path` into `output` (by default OUT_DIR/<stem>.wav; see `plan_outputs`), 32-bit
    float, the input's rate and channels, streaming: `denoise_audio`'s result, read, denoised and written a chunk at
    a time, each channel by a fresh copy of `denoiser` (which itself is left unused)."""
    check_input(path)
    output = Path(output) if output is not None else plan_outputs([Path(path)], Path(out_dir))[0][1]
    check_outputs([output])
    info = sf.info(path)
    channels = [_ChannelStream(info.samplerate, denoiser.fresh()) for _ in range(info.channels)]
    seconds = round(info.frames / info.samplerate, 1)
    padding = frame_padding(info.frames, info.samplerate, denoiser.settings)
    with (
        atomic_file(output) as partial,  # an interrupted run leaves no partial output
        FloatWavWriter(partial, info.samplerate, info.channels) as writer,
        tqdm(total=seconds, desc=Path(path).name, unit="s", mininterval=0.5, disable=seconds < 60) as bar,
    ):
        write = lambda samples: writer.write(samples[: info.frames - writer.frames])  # noqa: E731
        blocks = read_blocks(path, READ_SAMPLES)
        if padding:  # so short a file is one block
            blocks = [np.concatenate([*blocks, np.zeros((padding, info.channels), np.float32)])]
        for block in blocks:
            write(_stack([channel.push(block[:, c]) for c, channel in enumerate(channels)]))
            bar.update(round(len(block) / info.samplerate, 3))
        write(_stack([channel.finish() for channel in channels]))
    return output


def _stack(channels: list[np.ndarray]) -> np.ndarray:
    """Channels of equal length (each saw the same samples) as (samples, channels)."""
    return np.stack(channels, axis=1)
