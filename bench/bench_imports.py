"""A process's start: librosa's first use with numba's cache empty (the reference: what the first process after an
install pays) against the cache that process leaves (ours: what every later one pays), and each stage's imports.

numba keeps the machine code of librosa's compiled functions in `__pycache__` beside librosa's sources in the
environment (`cache=True` in librosa), so one process compiles and every later one loads. An empty
NUMBA_CACHE_DIR stands in for a fresh environment here. Each figure is the best of a few fresh processes.
"""

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FIRST_USE = "import librosa, numpy as np; librosa.stft(np.zeros(4096)); librosa.resample(np.zeros(4800), orig_sr=48000, target_sr=16000)"  # noqa: E501
STAGES = ("corpus", "natural", "mix", "split", "featurize", "references", "train", "conditions", "evaluate", "samples")
REPEATS = 3


def seconds(code: str, env: dict | None = None, cwd: Path | None = None) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=cwd, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    warm = min(seconds(FIRST_USE) for _ in range(REPEATS))
    cold = []
    for _ in range(REPEATS):
        with tempfile.TemporaryDirectory() as empty:
            cold.append(seconds(FIRST_USE, os.environ | {"NUMBA_CACHE_DIR": empty}))
    ratio = min(cold) / warm
    print(f"librosa first use | numba cache empty {min(cold):6.2f} s | warm {warm:5.2f} s | ratio {ratio:5.1f}x")
    stages = Path(__file__).resolve().parents[1] / "stages"
    for stage in STAGES:
        # A stage's module-level imports: its source up to main(), as `python stages/<name>.py` runs it.
        code = (
            f"import sys; sys.path.insert(0, '.'); "
            f"exec(compile(open('{stage}.py').read().split('def main')[0], '{stage}', 'exec'))"
        )
        print(f"stage {stage:<9} imports {min(seconds(code, cwd=stages) for _ in range(REPEATS)):5.2f} s")


if __name__ == "__main__":
    main()
