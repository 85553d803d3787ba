"""``labeling-assets demo``: the main job on the bundled demo data, step by step, with progress."""

import argparse
import time

from labeling_assets.constants import data_dir


def run_demo(args: argparse.Namespace) -> int:
    """Run every stage that exists on the demo digits and print what each did."""
    from labeling_assets.cli import cmd_ingest

    started = time.perf_counter()
    print(f"labeling-assets demo: data folder {data_dir()}")
    print("[1] ingest: bundled demo digits -> content-addressed raw store + label store")
    code = cmd_ingest(args)
    print(f"\ndemo finished in {time.perf_counter() - started:.1f}s (exit {code})")
    return code


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser("demo", help="run the main job on the bundled demo data (digits) and print a summary")
    p.set_defaults(func=run_demo)
