"""SIMD paths of other CPUs on this one: run a command as it would run on an x86-64 CPU without AVX.

OpenBLAS, NumPy, OpenCV, PyTorch and oneDNN each pick their kernels from the CPU at run time,
so float results can round differently on another machine. These variables make each library
take its SSE4 kernels here, so a test can compare both paths on one machine:

    python tests/simd.py python -m pytest tests/test_quality.py
"""

import os
import sys

OLDER_SIMD = {
    "OPENBLAS_CORETYPE": "Nehalem",
    "NPY_DISABLE_CPU_FEATURES": "X86_V3 X86_V4 AVX512_ICL AVX512_SPR",
    "OPENCV_CPU_DISABLE": "AVX,FP16,AVX2,FMA3,AVX512-SKX",
    "ATEN_CPU_CAPABILITY": "default",
    "ONEDNN_MAX_CPU_ISA": "SSE41",
}

if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: python tests/simd.py COMMAND [ARGS...]")
    os.execvpe(sys.argv[1], sys.argv[1:], os.environ | OLDER_SIMD)
