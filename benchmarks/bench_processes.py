"""Time one search generation on 1 process and on N local processes (jax.distributed).

    python -m benchmarks.bench_processes            # 1 x 1, 1 x 2 and 2 x 1 devices

Each layout runs the same small search (`SEARCH` below) in a fresh folder; a
generation's time is the difference of metrics.jsonl's `elapsed_s` between
consecutive generations, the first generation (compilation) left out. On one CPU
machine N processes share its cores, so this measures the overhead of the
multi-process runtime (gloo collectives, one compile per process), not a speed-up.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from experiments import launch_local

SEARCH = [sys.executable, "-m", "experiments.meta_search", "--pop", "16",
          "--generations", "5", "--datasets", "synthetic", "--train-size", "1000",
          "--val-size", "500", "--steps", "200", "--tasks", "2", "--select-tasks",
          "0", "--holdout="]  # fmt: skip


def generation_seconds(out: str) -> list[float]:
    """Seconds of each generation after the first."""
    with open(os.path.join(out, "metrics.jsonl")) as fh:
        elapsed = [json.loads(line)["elapsed_s"] for line in fh]
    return [b - a for a, b in zip(elapsed, elapsed[1:])]


def run_layout(processes: int, devices: int, root: str) -> dict:
    """One search with `processes` x `devices`; its generation times and wall time."""
    out = os.path.join(root, f"p{processes}_d{devices}")
    cmd = [*SEARCH, "--out", out]
    t0 = time.time()
    if processes == 1:
        env = dict(os.environ, JAX_PLATFORMS="cpu",
                   XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
        subprocess.run(cmd, env=env, check=True, capture_output=True)
    elif launch_local.launch(cmd, processes, devices=devices) != 0:
        raise RuntimeError(f"{processes} processes failed")
    gens = generation_seconds(out)
    return {"processes": processes, "devices_per_process": devices,
            "generation_s_median": round(statistics.median(gens), 3),
            "generation_s": [round(g, 3) for g in gens],
            "wall_s": round(time.time() - t0, 1)}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    """Run each layout (`--layouts 1x1 1x2 2x1`: processes x devices) and print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--layouts", nargs="+", default=["1x1", "1x2", "2x1"])
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as root:
        for layout in args.layouts:
            p, d = (int(v) for v in layout.split("x"))
            print(json.dumps(run_layout(p, d, root)), flush=True)


if __name__ == "__main__":
    main()
