#!/usr/bin/env python
"""Wall time of `python -c "import adapterlib"` and `python -m adapterlib --help`, and modules loaded.

Each command runs in a fresh interpreter, REPS times; checkouts given with --root alternate run
by run (the order rotating every round), so two checkouts are compared under the same load.
Reports the median wall time of each command and how many modules `import adapterlib` loads.

    python benchmarks/import_time.py                       # this checkout, median of 5
    git worktree add /tmp/before <commit>                  # compare with an earlier commit:
    python benchmarks/import_time.py --root /tmp/before --root . --reps 5
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {
    "import adapterlib": ["-c", "import adapterlib"],
    "python -m adapterlib --help": ["-m", "adapterlib", "--help"],
}
HEAVY = ("accelerate", "datasets", "pandas", "sklearn", "scipy", "matplotlib", "dask", "papermill")


def _run(root: Path, args: list[str]) -> float:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": str(root)}
    t = time.perf_counter()
    subprocess.run([sys.executable, *args], cwd=root, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def _modules(root: Path) -> list[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(root)}
    out = subprocess.run([sys.executable, "-c", "import adapterlib, sys; print(*sorted(sys.modules))"],
                         cwd=root, env=env, check=True, capture_output=True, text=True).stdout.split()
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", action="append", type=Path, help="checkout to measure (repeatable; default: this one)")
    p.add_argument("--reps", type=int, default=5, help="runs of each command per checkout (default: 5)")
    args = p.parse_args(argv)
    roots = [r.resolve() for r in (args.root or [ROOT])]
    for root in roots:  # warm the file cache and the bytecode once, not timed
        for cmd in COMMANDS.values():
            _run(root, cmd)
    times = {(r, c): [] for r in roots for c in COMMANDS}
    order = [(r, c) for r in roots for c in COMMANDS]
    for i in range(args.reps):
        for r, c in order[i % len(order):] + order[:i % len(order)]:
            times[r, c].append(_run(r, COMMANDS[c]))
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.2f} at the end; median of {args.reps} runs")
    for r in roots:
        mods = _modules(r)
        heavy = sorted({m.split(".")[0] for m in mods} & set(HEAVY))
        print(f"\n{r}: import adapterlib loads {len(mods)} modules; heavy: {', '.join(heavy) or 'none'}")
        for c in COMMANDS:
            ts = times[r, c]
            print(f"  {c:30s} median {statistics.median(ts):6.2f} s  (runs: {', '.join(f'{t:.2f}' for t in ts)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
