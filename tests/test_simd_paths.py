"""The data stages give the same bytes whichever SIMD kernels this CPU's libraries pick.

The eSpeak NG corpus, its noisy copies (white noise, and pink noise, shaped through an FFT) and the
feature cache are made twice in fresh processes: once with this machine's own kernels, once with
OpenBLAS, NumPy, OpenCV and PyTorch held to the SSE4 kernels of an older CPU (`simd.OLDER_SIMD`).
Every file must be byte for byte the same, so that `dvc.lock` made on one machine holds on another.
Each process also reports the kernels each library picked, so that the second run is known to have taken
the older ones (where this CPU has newer ones to leave out).
"""

import json
import os
import re
import subprocess
import sys

import pytest
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

# The kernels this process's libraries picked.
import cv2, torch
from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
from numpy.lib.introspect import opt_func_info
from threadpoolctl import threadpool_info
with torch.no_grad(), torch.backends.mkldnn.verbose(torch.backends.mkldnn.VERBOSE_ON):
    torch.nn.Conv2d(32, 32, 3)(torch.randn(4, 32, 64, 64))  # large enough for oneDNN, which then names its ISA
sys.stdout.flush()
opencv_ids = {name: getattr(cv2, f"CPU_{name}", number) for name, number in (("AVX", 10), ("AVX2", 11), ("FMA3", 12))}
kernels = {
    "numpy": [target for target in __cpu_dispatch__ if __cpu_features__[target]],
    "numpy add": opt_func_info(func_name="^add$", signature="float64")["add"]["ddd"]["current"],
    "openblas": sorted({lib["architecture"] for lib in threadpool_info() if lib["internal_api"] == "openblas"}),
    "opencv": [name for name, number in opencv_ids.items() if cv2.checkHardwareSupport(number)],
    "aten": torch.backends.cpu.get_cpu_capability(),
}
print(json.dumps({"digests": digests, "kernels": kernels}))
"""


def make_data(folder, extra_env: dict[str, str]) -> dict:
    """The data's digests and the kernels picked, from a fresh process with `extra_env`."""
    env = os.environ | extra_env
    command = [sys.executable, "-c", MAKE_DATA, str(folder), str(REPO / "params.yaml")]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.splitlines()[-1])
    isa = re.search(r"^onednn_verbose,.*,cpu,isa:(.+)$", done.stdout, re.MULTILINE)
    report["kernels"]["onednn"] = isa.group(1) if isa else None
    return report


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[dict, dict]:
    """This machine's own kernels, then the older CPU's."""
    folder = tmp_path_factory.mktemp("simd")
    return make_data(folder / "native", {}), make_data(folder / "older", OLDER_SIMD)


def test_corpus_noise_and_features_are_the_same_bytes_on_older_simd_kernels(runs):
    native, older = (run["digests"] for run in runs)
    assert {"features/clean.npy", "features/noisy.npy", "features/index.csv", "pink/01/0_01_0.wav"} <= set(native)
    differing = sorted(name for name in native if native[name] != older.get(name))
    assert not differing, f"{len(differing)} of {len(native)} files differ, e.g. {differing[:5]}"


def older_kernels(kernels: dict) -> dict[str, bool]:
    """Per library, whether it runs an SSE4 CPU's kernels (numpy: its baseline, no dispatch target above it)."""
    return {
        "numpy": kernels["numpy"] == [] and kernels["numpy add"].startswith("baseline"),
        "openblas": kernels["openblas"] == ["Nehalem"],
        "opencv": kernels["opencv"] == [],
        "aten": kernels["aten"] == "DEFAULT",
        "onednn": kernels["onednn"] is not None and kernels["onednn"].endswith("SSE4.1"),
    }


@pytest.mark.parametrize("library", ["numpy", "openblas", "opencv", "aten", "onednn"])
def test_the_second_run_took_the_older_cpus_kernels(runs, library):
    native, older = (run["kernels"] for run in runs)
    if older_kernels(native)[library]:
        pytest.skip(f"this CPU gives {library} no newer kernels than an SSE4 CPU's ({native}): nothing to force")
    assert older_kernels(older)[library], f"{library}: {OLDER_SIMD} left newer kernels in place: {older}"
