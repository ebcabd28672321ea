"""Candidate evaluations per second: jit+vmap against a loop and PyTorch.

    python -m benchmarks.benchmark --out runs/bench            # full run (minutes)
    python -m benchmarks.benchmark --quick --skip-torch --out /tmp/b   # seconds

Writes ``results.json`` and ``results.md`` to ``--out``; the logic lives in
`arl_jax.bench` and `arl_jax.bench_report`. torch is optional (``pip install -e
'.[bench]'``); without it the PyTorch rows are reported as skipped.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import sys
import time


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(",") if v)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="runs/benchmark", help="output folder")
    p.add_argument("--quick", action="store_true", help="tiny sizes, for tests")
    p.add_argument("--steps", type=int, default=None,
                   help="Adam steps of the MLP run (default 200; quick 5)")
    p.add_argument("--pops", type=_ints, default=None,
                   help="population sizes for the MLP (default 1,8,64,256)")
    p.add_argument("--cnn-steps", type=int, default=None,
                   help="Adam steps of the CNN run (default 50; quick 2)")
    p.add_argument("--cnn-pops", type=_ints, default=None,
                   help="population sizes for the CNN (default 1,8)")
    p.add_argument("--cases", default="mlp,cnn", help="mlp, cnn or both")
    p.add_argument("--skip-torch", action="store_true", help="no PyTorch rows")
    p.add_argument("--torch-device", default="auto", choices=("auto", "cpu", "cuda"),
                   help="where the PyTorch rows run (auto: CUDA when JAX is on a GPU)")
    p.add_argument("--loop-candidates", type=int, default=None,
                   help="candidates timed in the Python loop (default 8)")
    p.add_argument("--torch-candidates", type=int, default=2,
                   help="candidates timed in eager/compiled PyTorch")
    p.add_argument("--devices", type=_ints, default=None,
                   help="simulated device counts (default 1,2,4; empty: skip)")
    p.add_argument("--device-pop", type=int, default=None,
                   help="population for the device scaling (default 64)")
    p.add_argument("--repeats", type=int, default=3, help="timed calls (best of)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark and write results.json and results.md."""
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from benchmarks import bench, bench_report

    q = args.quick
    t0 = time.perf_counter()
    steps = args.steps or (5 if q else 200)
    cnn_steps = args.cnn_steps or (2 if q else 50)
    specs = {
        "mlp": bench.Case("mlp", "mlp", "mnist1d", steps,
                          args.pops or ((2,) if q else (1, 8, 64, 256))),
        "cnn": bench.Case("cnn", "cnn", "fashion_mnist", cnn_steps,
                          args.cnn_pops or ((2,) if q else (1, 8))),
    }
    cases = [specs[name] for name in args.cases.split(",") if name]
    devices = args.devices if args.devices is not None else ((2,) if q else (1, 2, 4))
    out = bench.run_benchmark(
        cases,
        quick=q,
        skip_torch=args.skip_torch,
        loop_candidates=args.loop_candidates or (2 if q else 8),
        torch_candidates=1 if q else args.torch_candidates,
        torch_vmap_pops=(2,) if q else (8, 64),
        devices=devices,
        device_pop=args.device_pop or (2 if q else 64),
        repeats=1 if q else args.repeats,
        torch_device=args.torch_device,
        log=lambda s: print(f"[{time.perf_counter() - t0:6.1f} s] {s}", flush=True),
    )
    out["command"] = "python -m benchmarks.benchmark " + shlex.join(
        sys.argv[1:] if argv is None else argv
    )
    out["date"] = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(out, f, indent=1, default=float)
    md = bench_report.to_markdown(out)
    md = f"Command: `{out['command']}` ({out['date']})\n\n" + md
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(md)
    print(md)
    return out


if __name__ == "__main__":
    main()
