"""Recording conditions for fresh training noise: the clean clip as if recorded at a lower rate, at another level,
through another microphone (a spectral tilt) or in a room (reverberation), before the noise is added.

Each option of `TrainParams.recording_conditions` that is on takes its draws from the clip's own generator, in
the order of `recorded`; with every option off nothing is drawn and the clip is left as it is.
"""

import librosa
import numpy as np
import scipy.fft
from scipy.signal import fftconvolve

from ..audio.io import resample
from ..params import TrainParams

_TILT_PIVOT_HZ = 1000.0  # the frequency a tilt leaves at its level
_TILT_FLOOR_HZ = 62.5  # below it the tilt is flat, so a tilt never boosts or cuts DC without bound
_DECAY_DB = 60.0  # the decay an RT60 is the time of


def band_limited(audio: np.ndarray, rate: int, low_rate: int) -> np.ndarray:
    """`audio` resampled down to `low_rate` and back: nothing left above `low_rate`'s Nyquist frequency."""
    return librosa.util.fix_length(resample(resample(audio, rate, low_rate), low_rate, rate), size=len(audio))


def tilted(audio: np.ndarray, rate: int, db_per_octave: float) -> np.ndarray:
    """`audio` with a gain of `db_per_octave` per octave above 1 kHz (a loss per octave below, flat under 62.5 Hz).

    scipy and librosa design shelves of a set corner, none a constant slope in dB per octave; a zero-phase gain
    on the FFT is that slope exactly, in two lines. The FFT is zero-padded to a length of small prime factors: a
    clip's own length may be a large prime, and then its FFT is many times slower.
    """
    padded = scipy.fft.next_fast_len(len(audio), real=True)
    frequencies = np.maximum(np.fft.rfftfreq(padded, 1 / rate), _TILT_FLOOR_HZ)
    gain = 10 ** (db_per_octave * np.log2(frequencies / _TILT_PIVOT_HZ) / 20)
    return scipy.fft.irfft(scipy.fft.rfft(audio, padded) * gain, padded)[: len(audio)]


def reverberant(audio: np.ndarray, rate: int, rt60: float, rng: np.random.Generator) -> np.ndarray:
    """`audio` through a synthetic room: Gaussian noise decaying by 60 dB in `rt60` seconds, of unit energy (the
    clip keeps about its level), the tail past the clip's end cut so that its length stays."""
    t = np.arange(max(1, round(rt60 * rate))) / rate
    response = rng.standard_normal(len(t)) * 10 ** (-_DECAY_DB * t / rt60 / 20)
    return fftconvolve(audio, response / np.linalg.norm(response))[: len(audio)]


def recorded(audio: np.ndarray, rate: int, params: TrainParams, rng: np.random.Generator) -> np.ndarray:
    """The clean clip `audio` (float64) under conditions drawn from `rng`: band limit, level, tilt, room.

    Each option that is on draws whether and how it applies before it applies, so one clip's draws never depend
    on its audio; the room's response, whose length depends on its RT60, is the last draw.
    """
    if params.band_limit_probability > 0:
        applies = rng.random() < params.band_limit_probability
        low_rate = int(rng.choice(params.band_limit_rates))
        if applies and low_rate < rate:
            audio = band_limited(audio, rate, low_rate)
    if params.gain_db != [0, 0]:
        audio = audio * 10 ** (rng.uniform(*params.gain_db) / 20)
    if params.tilt_db_per_octave != [0, 0]:
        audio = tilted(audio, rate, rng.uniform(*params.tilt_db_per_octave))
    if params.reverb_probability > 0:
        applies = rng.random() < params.reverb_probability
        rt60 = rng.uniform(*params.reverb_rt60)
        if applies:  # the target is this reverberant clip: a mel gain with the noisy phase can take little of a
            # room's tail away, and a dry target would teach it to cut speech with it rather than remove noise
            audio = reverberant(audio, rate, rt60, rng)
    return audio
