"""Run a stage script that stops for good part-way, so that a test can kill it there and never after it ends.

    python tests/gated_stage.py STAGE_SCRIPT MODULE:FUNCTION CALLS MARKER

After the CALLS-th call of MODULE.FUNCTION returns (one of the stage's writes, say `scipy.io.wavfile:write`), it
creates MARKER and blocks, as does every later call: the stage has written part of its output and cannot
finish. Calls are counted per process; the pool's workers, forked after the patch, block once MARKER exists.
"""

import importlib
import os
import runpy
import sys
import time
from pathlib import Path


def block_forever() -> None:
    while True:
        time.sleep(60)


def gate(function, calls: int, marker: Path):
    count = 0

    def gated(*args, **kwargs):
        nonlocal count
        if marker.exists():
            block_forever()
        result = function(*args, **kwargs)
        count += 1
        if count >= calls:
            marker.touch()
            block_forever()
        return result

    return gated


def main() -> None:
    script, target, calls, marker = sys.argv[1:]
    module_name, name = target.split(":")
    module = importlib.import_module(module_name)
    setattr(module, name, gate(getattr(module, name), int(calls), Path(marker).resolve()))
    sys.argv = [script]  # as `python stages/NAME.py`: the stage names itself after its script
    sys.path[0] = os.path.dirname(os.path.abspath(script))
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
