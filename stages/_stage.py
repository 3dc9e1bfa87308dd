"""What every stage script shares: logging, and bad input as one line and a non-zero exit."""

import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path

from audiomnist_denoise.errors import PipelineError


def run(stage: Callable[[], str]) -> None:
    """Run `stage`, log its one-line summary with the time taken; a PipelineError exits 1, Ctrl-C 130."""
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    name = Path(sys.argv[0]).stem
    started = time.perf_counter()
    try:
        summary = stage()
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print(f"{name}: interrupted; outputs are written only on success, so rerun to finish", file=sys.stderr)
        sys.exit(130)
    logging.getLogger(name).info("%s in %.1f s", summary, time.perf_counter() - started)
