"""Start one command as N local processes of one multi-process JAX run.

    python -m experiments.launch_local -n 2 -- \
        python -m experiments.meta_search --pop 8 --generations 3 --datasets synthetic

Each process gets ``--coordinator 127.0.0.1:PORT --num-processes N --process-id I``
appended (PORT: a free one, or --port). With --devices-per-process D each sees D
simulated CPU devices (``XLA_FLAGS=--xla_force_host_platform_device_count=D``; the
default, 1, makes N processes N devices), as on a machine without accelerators.
Process 0's output is the run's log; the others print only errors. When one process
fails, the others are given --grace seconds to end on their own (they stop with an
error naming the lost peer) and are then killed; the exit status is the first
non-zero one.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_command(command: list[str], port: int, n: int, i: int) -> list[str]:
    """`command` with the flags that make it process `i` of `n`."""
    return [*command, "--coordinator", f"127.0.0.1:{port}", "--num-processes",
            str(n), "--process-id", str(i)]  # fmt: skip


def launch(command: list[str], n: int, *, port: int = 0, devices: int | None = 1,
           grace: float = 120.0, env: dict | None = None) -> int:
    """Run `command` as `n` processes and wait for them; the first non-zero exit
    status, or 0."""
    port = port or free_port()
    env = dict(os.environ if env is None else env)
    if devices:
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
        env.setdefault("JAX_PLATFORMS", "cpu")
    procs = [subprocess.Popen(process_command(command, port, n, i), env=env)
             for i in range(n)]  # fmt: skip
    status, deadline = 0, None
    try:
        while any(p.poll() is None for p in procs):
            failed = [p.returncode for p in procs if p.returncode not in (None, 0)]
            if failed and deadline is None:
                status, deadline = failed[0], time.time() + grace
            if deadline is not None and time.time() > deadline:
                break
            time.sleep(0.2)
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                p.wait()
    return status or next((p.returncode for p in procs if p.returncode), 0)


def main(argv: list[str] | None = None) -> int:
    """Parse `-n N [--port P] [--devices-per-process D] -- COMMAND ...` and launch."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", "--num-processes", type=int, default=2)
    parser.add_argument("--port", type=int, default=0, help="coordinator port "
                        "(default: a free one)")
    parser.add_argument("--devices-per-process", type=int, default=1,
                        help="simulated CPU devices per process (0: leave XLA_FLAGS "
                        "as it is, e.g. for GPUs)")
    parser.add_argument("--grace", type=float, default=120.0, help="seconds the "
                        "others get to stop after one failed")
    parser.add_argument("command", nargs=argparse.REMAINDER,
                        help="the command, after --")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command after --, e.g. -- python -m "
                     "experiments.meta_search --pop 8")
    if args.num_processes < 1:
        parser.error("-n must be >= 1")
    return launch(command, args.num_processes, port=args.port,
                  devices=args.devices_per_process, grace=args.grace)


if __name__ == "__main__":
    sys.exit(main())
