"""Time how long `lossbench` takes to answer before any work: --help, --version and usage errors.

Usage: python benchmarks/startup.py [--repeats 10]

Each command runs as a fresh `python -m lossbench` process (what a user and a CI step pay). Prints the
median and fastest wall time and the median CPU time per command (on a shared, loaded machine the CPU time is
the steadier figure), and the interpreter's own start-up (`python -c pass`) for scale.
Targets: --help and --version under 0.5 s, a usage error under 1 s.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {
    "python -c pass": ["-c", "pass"],
    "lossbench --version": ["-m", "lossbench", "--version"],
    "lossbench --help": ["-m", "lossbench", "--help"],
    "lossbench run --help": ["-m", "lossbench", "run", "--help"],
    "lossbench run --seeds 0 (usage error)": ["-m", "lossbench", "run", "--seeds", "0"],
    "lossbench list --format yaml (usage error)": ["-m", "lossbench", "list", "losses", "--format", "yaml"],
    "lossbench runn (unknown verb)": ["-m", "lossbench", "runn"],
}


def timed(args: list[str]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of one fresh process: CPU time does not grow with load."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, *args], env=env, capture_output=True, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"{'command':45s} {'wall median s':>13s} {'wall min s':>10s} {'CPU median s':>12s}")
    for name, argv in COMMANDS.items():
        timed(argv)  # warm the file cache
        walls, cpus = zip(*(timed(argv) for _ in range(args.repeats)), strict=True)
        print(f"{name:45s} {statistics.median(walls):13.3f} {min(walls):10.3f} {statistics.median(cpus):12.3f}")


if __name__ == "__main__":
    main()
