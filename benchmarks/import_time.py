"""How long a fresh Python takes to import the project's definitions: every Dagster run's process, code server and
`labeling-assets` command pays it before doing anything (the webhook latency and the soak's run starts wait on it).

    python benchmarks/import_time.py [--repeats 5] [--top 8]

Prints the median, min and max wall time of `import labeling_assets.definitions` over fresh interpreters, the load
average before and after (the figure is only comparable at the same load), and the heaviest third-party packages of
the last import (`python -X importtime`, cumulative microseconds).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STATEMENT = "import labeling_assets.definitions"


def one_import() -> tuple[float, str]:
    env = {**os.environ, "PYTHONPATH": REPO}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", STATEMENT], env=env, capture_output=True,
                          text=True, check=True)  # fmt: skip
    return time.perf_counter() - started, done.stderr


def heaviest(importtime: str, top: int) -> list[tuple[str, float]]:
    """Third-party packages by cumulative import time, and the SciPy/matplotlib submodules the project defers."""
    rows: dict[str, float] = {}
    for line in importtime.splitlines():
        parts = line.split("|")
        if len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        name = parts[2].strip()
        if ("." not in name and name != "labeling_assets") or name in DEFERRED:
            rows[name] = max(rows.get(name, 0.0), int(parts[1]) / 1e6)
    return sorted(rows.items(), key=lambda r: -r[1])[:top]


DEFERRED = {"scipy.optimize", "scipy.stats", "matplotlib.pyplot"}  # imported where used, not with the definitions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--top", type=int, default=8)
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    one_import()  # bytecode and the page cache warm
    times, last = [], ""
    for _ in range(args.repeats):
        seconds, last = one_import()
        times.append(seconds)
    print(f"import labeling_assets.definitions, {args.repeats} fresh interpreters: median {statistics.median(times):.2f} s "
          f"(min {min(times):.2f}, max {max(times):.2f}); load {load_before:.1f} -> {os.getloadavg()[0]:.1f}")  # fmt: skip
    print("heaviest top-level imports of the last one (cumulative s):")
    for name, seconds in heaviest(last, args.top):
        print(f"  {seconds:6.2f}  {name}")


if __name__ == "__main__":
    main()
