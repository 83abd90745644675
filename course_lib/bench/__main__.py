"""Run every benchmark section: ``python -m course_lib.bench [--quick] [--only NAME ...]``."""
from __future__ import annotations

import argparse
import importlib
import time

SECTIONS = ["discrete", "glow", "splines", "peers", "autoregressive", "continuous"]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m course_lib.bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny budgets, to check it runs")
    parser.add_argument("--only", nargs="*", choices=SECTIONS, help="run only these sections")
    args = parser.parse_args(argv)
    for name in args.only or SECTIONS:
        try:
            module = importlib.import_module(f"course_lib.bench.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"course_lib.bench.{name}":
                raise
            continue
        start = time.perf_counter()
        print(f"\n== {name} ==", flush=True)
        print(module.run(quick=args.quick), flush=True)
        print(f"({time.perf_counter() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
