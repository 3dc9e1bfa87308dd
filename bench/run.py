"""Run every benchmark in bench/ (files named bench_*.py, each with a main()) and print its report."""

import importlib.util
import sys
from pathlib import Path


def main() -> None:
    only = sys.argv[1:]
    for path in sorted(Path(__file__).parent.glob("bench_*.py")):
        if only and path.stem.removeprefix("bench_") not in only:
            continue
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        print(f"== {path.stem}")
        module.main()


if __name__ == "__main__":
    main()
