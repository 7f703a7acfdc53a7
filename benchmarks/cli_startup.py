"""Start-up time of the command line: ``hbopt --help`` and each command's ``--help``.

Run: ``.venv/bin/python benchmarks/cli_startup.py [RUNS]`` (default 7 runs per command, after
one warm-up). Each run is a fresh interpreter, timed from outside; prints median and p90 [s].
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

from hbopt.cli import COMMANDS


def timed(argv: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main(runs: int) -> None:
    cases = [["--help"]] + [[c.name, "--help"] for c in COMMANDS]
    print(f"{'command':<28}{'median s':>10}{'p90 s':>10}")
    for args in cases:
        argv = [sys.executable, "-m", "hbopt", *args]
        timed(argv)
        times = sorted(timed(argv) for _ in range(runs))
        p90 = times[min(len(times) - 1, round(0.9 * (len(times) - 1)))]
        print(f"{'hbopt ' + ' '.join(args):<28}{statistics.median(times):>10.3f}{p90:>10.3f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 7)
