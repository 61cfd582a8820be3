"""Run every benchmark: ``python -m benchmarks`` (or ``make bench``). Each prints its figures."""

import importlib
import pkgutil
import sys
from pathlib import Path


def main(argv):
    wanted = set(argv)
    here = Path(__file__).parent
    for info in sorted(pkgutil.iter_modules([str(here)]), key=lambda m: m.name):
        if not info.name.startswith("bench_") or (wanted and info.name not in wanted):
            continue
        print(f"== {info.name}", flush=True)
        importlib.import_module(f"benchmarks.{info.name}").main()


if __name__ == "__main__":
    main(sys.argv[1:])
