"""The data stages give the same bytes whichever SIMD kernels this CPU's libraries pick.

The eSpeak NG corpus, its noisy copies (white noise, and pink noise, shaped through an FFT) and the
feature cache are made twice in fresh processes: once with this machine's own kernels, once with
OpenBLAS, NumPy, OpenCV and PyTorch held to the SSE4 kernels of an older CPU (`simd.OLDER_SIMD`).
Every file must be byte for byte the same, so that `dvc.lock` made on one machine holds on another.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import REPO
from simd import OLDER_SIMD

MAKE_DATA = """
import hashlib, json, sys
from pathlib import Path
from audiomnist_denoise.data.noise import mix_corpus, noise_maker
from audiomnist_denoise.data.sources import write_tts_corpus
from audiomnist_denoise.features.cache import build_feature_cache
from audiomnist_denoise.params import load_params

out, params = Path(sys.argv[1]), load_params(sys.argv[2])
tts = params.data.tts.model_copy(update={"speakers": 2, "reps": 1})
write_tts_corpus(out / "raw", params.data.model_copy(update={"workers": 1, "tts": tts}))
for kind in ("white", "pink"):
    mix_corpus(out / "raw", out / kind, noise_maker(kind, out / "raw", 6, out), -8.0, 0, workers=1)
build_feature_cache(out / "raw", out / "pink", out / "features", params.features.model_copy(update={"workers": 1}))
files = sorted(path for path in out.rglob("*") if path.is_file())
digests = {str(path.relative_to(out)): hashlib.sha256(path.read_bytes()).hexdigest() for path in files}
print(json.dumps(digests))
"""


def data_digests(folder: Path, extra_env: dict[str, str]) -> dict[str, str]:
    env = os.environ | extra_env
    command = [sys.executable, "-c", MAKE_DATA, str(folder), str(REPO / "params.yaml")]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.splitlines()[-1])


def test_corpus_noise_and_features_are_the_same_bytes_on_older_simd_kernels(tmp_path):
    native = data_digests(tmp_path / "native", {})
    older = data_digests(tmp_path / "older", OLDER_SIMD)
    assert {"features/clean.npy", "features/noisy.npy", "features/index.csv", "pink/01/0_01_0.wav"} <= set(native)
    differing = sorted(name for name in native if native[name] != older.get(name))
    assert not differing, f"{len(differing)} of {len(native)} files differ, e.g. {differing[:5]}"
