"""CPU and wall time of ``lossbench check-loss --all``: the defaults, then the parameter grid, per loss.

Run: ``python benchmarks/check_loss_cost.py [--top 8]``

Prints the configurations checked and the seconds for the defaults of every loss and for the whole run
(defaults + grid), then the losses whose checks cost the most CPU. The checks run torch on one thread.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from lossbench.conformance import CHECKS, parameter_grid, run_checks, run_grid
from lossbench.losses import LOSSES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--top", type=int, default=8, help="how many of the costliest losses to list")
    args = parser.parse_args()
    cpu: dict[str, tuple[float, float]] = {}
    wall = {"defaults": 0.0, "grid": 0.0}
    for name in LOSSES.names():
        spent = []
        for part, run in (("defaults", run_checks), ("grid", run_grid)):
            c, w = time.process_time(), time.perf_counter()
            run(name)
            spent.append(time.process_time() - c)
            wall[part] += time.perf_counter() - w
        cpu[name] = (spent[0], spent[1])
    configs = sum(1 + len(parameter_grid(n)) for n in LOSSES.names())
    defaults_cpu = sum(d for d, _ in cpu.values())
    grid_cpu = sum(g for _, g in cpu.values())
    print(f"{len(cpu)} losses, {configs} configurations, {len(CHECKS)} checks each")
    print(f"defaults: {defaults_cpu:6.1f} s CPU {wall['defaults']:6.1f} s wall")
    print(f"all:      {defaults_cpu + grid_cpu:6.1f} s CPU {wall['defaults'] + wall['grid']:6.1f} s wall")
    print("costliest (s CPU, defaults + grid):")
    for name, (d, g) in sorted(cpu.items(), key=lambda kv: -sum(kv[1]))[: args.top]:
        print(f"  {name:20s} {d:5.1f} + {g:5.1f}  ({1 + len(parameter_grid(name))} configurations)")


if __name__ == "__main__":
    main()
