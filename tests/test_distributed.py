"""The search on several processes (jax.distributed over localhost, gloo collectives)
equals the search on one process with as many devices; kill and resume; a dead peer.

Every search here is a subprocess with its own XLA_FLAGS (conftest's 4 simulated
devices are for this test process only) and a timeout.
"""

import json
import os
import subprocess
import sys
import time

import pytest

from arl_jax import parallel, search
from experiments import launch_local

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEARCH = [sys.executable, "-m", "experiments.meta_search", "--pop", "8",
          "--generations", "3", "--datasets", "synthetic", "--train-size", "200",
          "--val-size", "100", "--steps", "10", "--tasks", "2", "--select-tasks", "2",
          "--holdout=", "--peer-timeout", "30"]  # fmt: skip
TIMEOUT = 240


def env_with(devices: int, **extra: str) -> dict:
    env = dict(os.environ, JAX_PLATFORMS="cpu", **extra)
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    return env


def one_process(out, devices: int) -> subprocess.CompletedProcess:
    res = subprocess.run([*SEARCH, "--out", str(out)], env=env_with(devices),
                         cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT)
    assert res.returncode == 0, res.stderr[-3000:]
    return res


def start(out, n: int, devices: int, extra=(), envs=None) -> list[subprocess.Popen]:
    """`n` processes of one search on a free localhost port (not yet waited for)."""
    port = launch_local.free_port()
    base = [*SEARCH, "--out", str(out), *extra]
    return [
        subprocess.Popen(
            launch_local.process_command(base, port, n, i), cwd=ROOT,
            env=env_with(devices, **(envs or {}).get(i, {})),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(n)
    ]  # fmt: skip


def wait(procs: list[subprocess.Popen], timeout: float = TIMEOUT) -> list[tuple]:
    """``(returncode, stdout, stderr)`` of each; kills them all on a timeout."""
    try:
        outs = [p.communicate(timeout=timeout) for p in procs]
        return [(p.returncode, *out) for p, out in zip(procs, outs)]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()


def results(out) -> dict:
    """What must not depend on how many processes ran the search."""
    with open(out / "best_loss.json") as fh:
        coeffs = json.load(fh)["coeffs"]
    with open(out / "metrics.jsonl") as fh:
        metrics = [json.loads(line) for line in fh]
    for record in metrics:
        record.pop("elapsed_s")
    with open(out / "selection.json") as fh:
        selection = json.load(fh)
    return {"coeffs": coeffs, "metrics": metrics, "selection": selection}


@pytest.fixture(scope="module")
def one_process_two_devices(tmp_path_factory):
    out = tmp_path_factory.mktemp("one_x2") / "run"
    one_process(out, devices=2)
    return results(out)


@pytest.mark.slow
def test_two_processes_equal_one_process_two_devices(one_process_two_devices,
                                                     tmp_path):
    out = tmp_path / "run"
    runs = wait(start(out, n=2, devices=1))
    for code, _, stderr in runs:
        assert code == 0, stderr[-3000:]
    assert "devices: 2 x cpu over 2 processes" in runs[0][1]
    # Only process 0 prints (gloo's C++ connection note aside).
    assert [ln for ln in runs[1][1].splitlines() if not ln.startswith("[Gloo]")] == []
    assert {"config.json", "metrics.jsonl", "checkpoint.npz", "best_loss.json",
            "selection.json", "fitness.png", "learned_loss.png"} <= set(os.listdir(out))
    assert results(out) == one_process_two_devices


@pytest.mark.slow
def test_kill_both_after_generation_two_and_resume_both(one_process_two_devices,
                                                        tmp_path):
    out = tmp_path / "run"
    runs = wait(start(out, n=2, devices=1,
                      envs={0: {"ARL_JAX_TEST_KILL_AFTER": "2"},
                            1: {"ARL_JAX_TEST_KILL_AFTER": "2"}}))  # fmt: skip
    assert [code for code, _, _ in runs] == [-9, -9]
    with open(out / "metrics.jsonl") as fh:
        assert len(fh.readlines()) == 2
    assert not (out / "best_loss.json").exists()
    runs = wait(start(out, n=2, devices=1, extra=["--resume", str(out)]))
    for code, _, stderr in runs:
        assert code == 0, stderr[-3000:]
    assert f"resuming {out} at generation 2" in runs[0][1]
    assert results(out) == one_process_two_devices


@pytest.mark.slow
def test_one_process_four_devices_equals_two_processes_two_devices(tmp_path):
    one_process(tmp_path / "one", devices=4)
    # Through the launcher, as a user would start it.
    status = launch_local.launch(
        [*SEARCH, "--out", str(tmp_path / "two")], 2, devices=2, grace=60)
    assert status == 0
    assert results(tmp_path / "two") == results(tmp_path / "one")


@pytest.mark.slow
def test_a_dead_process_ends_the_other_with_a_clear_error(tmp_path):
    procs = start(tmp_path / "run", n=2, devices=1,
                  envs={1: {"ARL_JAX_TEST_KILL_AFTER": "1"}})
    died = None
    try:
        while procs[0].poll() is None and time.time() < (died or 1e18) + 60:
            if died is None and procs[1].poll() is not None:
                died = time.time()
            time.sleep(0.1)
        ended = time.time()
        if died is None and procs[1].poll() is not None:
            died = ended  # both ended within one poll: the survivor was quick
    finally:
        runs = wait(procs, timeout=30)
    assert died is not None and runs[1][0] == -9
    code, _, stderr = runs[0]
    assert code not in (0, None) and ended - died < 60, (code, ended - died)
    assert "error: process 0 of 2 stops" in stderr, stderr[-3000:]
    assert "--resume" in stderr.splitlines()[-1]


@pytest.mark.slow
def test_processes_that_disagree_stop_naming_the_difference(tmp_path):
    port = launch_local.free_port()
    base = [*SEARCH, "--out", str(tmp_path / "run")]
    procs = [subprocess.Popen(
        launch_local.process_command(base + (["--seed", "1"] if i else []), port, 2, i),
        cwd=ROOT, env=env_with(1), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True) for i in range(2)]  # fmt: skip
    for code, _, stderr in wait(procs, timeout=120):
        assert code == 1
        assert "process 1 differs from process 0: --seed: 0 != 1" in stderr, stderr


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--num-processes", "2"], "--num-processes/--process-id need --coordinator"),
        (["--coordinator", "localhost"], "--coordinator must be HOST:PORT"),
        (["--coordinator", "h:1"], "needs --num-processes N"),
        (["--coordinator", "h:1", "--num-processes", "2"], "needs --process-id I"),
        (["--coordinator", "h:1", "--num-processes", "2", "--process-id", "2"],
         "--process-id must be in 0 .. 1"),
        (["--coordinator", "auto", "--process-id", "1"],
         "--num-processes must be >= 1 when --process-id"),
        (["--peer-timeout", "0"], "--peer-timeout must be >= 1"),
    ],
)
def test_bad_process_flags_are_refused_before_anything_starts(flags, message, capsys):
    from arl_jax.commands import meta_search, meta_test

    for module in (meta_search, meta_test):
        argv = [*flags, "--holdout="] if module is meta_search else flags
        with pytest.raises(SystemExit) as stop:
            module.main(argv)
        assert stop.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert message in err, err


def test_auto_and_explicit_flags_reach_jax_distributed(monkeypatch):
    calls, updates = [], []
    monkeypatch.setattr(parallel.jax.distributed, "initialize",
                        lambda **kw: calls.append(kw))
    monkeypatch.setattr(parallel.jax.config, "update",
                        lambda *a: updates.append(a))
    assert parallel.initialize_distributed("") is False and calls == []
    assert parallel.initialize_distributed("auto", timeout_s=40) is True
    assert calls[-1] == {"initialization_timeout": 40, "heartbeat_timeout_seconds": 20,
                         "shutdown_timeout_seconds": 40}
    parallel.initialize_distributed("10.0.0.1:1234", 4, 3)
    assert calls[-1]["coordinator_address"] == "10.0.0.1:1234"
    assert (calls[-1]["num_processes"], calls[-1]["process_id"]) == (4, 3)
    assert updates[-1] == ("jax_cpu_collectives_implementation", "gloo")


def test_resume_takes_the_process_flags_of_its_command(tmp_path):
    from arl_jax.commands import meta_search

    saved = dict(search.SearchConfig(holdout="").__dict__, distributed=True,
                 coordinator="h:1", num_processes=2, process_id=1)
    (tmp_path / "config.json").write_text(json.dumps(saved))
    cfg = meta_search.resolve_config(["--resume", str(tmp_path)])
    assert (cfg.coordinator, cfg.num_processes, cfg.process_id) == ("", 0, -1)
    assert cfg.out == str(tmp_path)
