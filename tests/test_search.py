"""The meta-search: command line, outputs, resume after SIGKILL, checkpoints,
fitness, sharding, and shipping a result (`arl_jax.commands.ship_loss`)."""

import dataclasses
import json
import os
import signal
import subprocess
import sys

import jax
import numpy as np
import pytest

from arl_jax import io, losses, search, tasks
from arl_jax.commands import meta_search, ship_loss

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A tiny but real search: synthetic Gaussian-mixture data, a small MLP, few steps.
TINY = [
    "--pop", "8",
    "--datasets", "synthetic",
    "--archs", "mlp-s",
    "--noise", "symmetric:0.2-0.6",
    "--tasks", "2",
    "--steps", "40",
    "--batch-size", "64",
    "--train-size", "512",
    "--val-size", "256",
    "--select-tasks", "2",
    "--holdout", "digits",
    "--holdout-steps", "40",
]  # fmt: skip


def run_cli(args, env_extra=None, **kw):
    env = dict(os.environ)
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "-m", "arl_jax.commands.meta_search", *args],
        cwd=REPO, env=env, capture_output=True, text=True, **kw,
    )  # fmt: skip


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    proc = run_cli([*TINY, "--generations", "4", "--out", str(out)], timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc


@pytest.mark.slow
def test_cli_writes_every_output(full_run):
    out, proc = full_run
    for name in (
        "config.json", "metrics.jsonl", "best_loss.json", "checkpoint.npz",
        "fitness.png", "learned_loss.png", "heldout.json", "selection.json",
    ):  # fmt: skip
        assert (out / name).exists(), name
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["pop"] == 8 and cfg["datasets"] == "synthetic"
    lines = (out / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["generation"] for r in records] == [0, 1, 2, 3]
    for r in records:
        assert {"best_fitness", "mean_fitness", "best_val_acc", "mean_val_acc",
                "diverged_fraction", "es_mean", "tasks", "task_val_acc_best"} <= set(r)
    best = json.loads((out / "best_loss.json").read_text())
    for key in ("family", "coeffs", "fitness", "generation", "command", "seed",
                "versions"):  # fmt: skip
        assert key in best
    assert best["family"] == "taylor_nce" and len(best["coeffs"]) == 6
    assert np.all(np.isfinite(best["coeffs"]))
    assert -1.0 <= best["fitness"] <= 0.0
    assert "jax" in best["versions"] and "--pop 8" in best["command"]
    held = json.loads((out / "heldout.json").read_text())
    assert set(held["results"]) == {"learned", "cross_entropy", "gce"}
    # The selection record: the 4 elites and the final mean, the chosen one first
    # by fitness and equal to best_loss.json.
    sel = json.loads((out / "selection.json").read_text())
    cands = sel["candidates"]
    assert [c["origin"] for c in cands] == ["elite"] * 4 + ["es_mean"]
    assert [c["generation"] for c in cands] == [0, 1, 2, 3, 3]
    chosen = cands[sel["chosen"]]
    assert chosen["coeffs"] == best["coeffs"] and chosen["fitness"] == best["fitness"]
    assert chosen["fitness"] == min(c["fitness"] for c in cands)
    # The progress bar and the final comparison are printed.
    assert "generation" in proc.stderr and "4/4" in proc.stderr
    assert "Held-out" in proc.stdout


# meta_search that kills itself with SIGKILL once 2 generations are checkpointed.
KILL_AFTER_2 = """
import os, signal, sys
from arl_jax.commands import meta_search
write = meta_search.write_metrics
def write_then_die(run_dir, history):
    write(run_dir, history)
    if len(history) == 2:
        os.kill(os.getpid(), signal.SIGKILL)
meta_search.write_metrics = write_then_die
meta_search.main(sys.argv[1:])
"""


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_matches_uninterrupted(full_run, tmp_path):
    ref_out, _ = full_run
    out = tmp_path / "killed"
    # A real SIGKILL at a fixed point (right after generation 1 is saved), not one
    # timed from outside: a poll could see 2 generations and the search finish
    # before the signal came (it did on an idle machine).
    proc = subprocess.run(
        [sys.executable, "-c", KILL_AFTER_2, *TINY, "--generations", "4", "--out",
         str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    metrics = out / "metrics.jsonl"
    done = len(metrics.read_text().splitlines())
    assert 2 <= done < 4, "killed too late to test resume"
    assert not (out / "best_loss.json").exists()

    resumed = run_cli(["--resume", str(out)], timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming {out} at generation {done}" in resumed.stdout
    got = json.loads((out / "best_loss.json").read_text())
    want = json.loads((ref_out / "best_loss.json").read_text())
    np.testing.assert_allclose(got["coeffs"], want["coeffs"], rtol=1e-6)
    lines = [json.loads(x) for x in metrics.read_text().splitlines()]
    assert [r["generation"] for r in lines] == [0, 1, 2, 3]


def test_out_with_a_search_of_other_settings_is_refused(tmp_path, capsys):
    # A rerun of the same command continues the search in --out (more generations
    # allowed); other settings would continue, or crash in, the old search (a
    # second search on one GPU machine resumed the first one's checkpoint this way).
    out = tmp_path / "run"
    out.mkdir()
    argv = [*TINY, "--generations", "4", "--out", str(out)]
    cfg = meta_search.resolve_config(argv)
    (out / "config.json").write_text(json.dumps(dataclasses.asdict(cfg)))
    assert meta_search.resolve_config(argv) == cfg  # no checkpoint yet
    (out / "checkpoint.npz").write_bytes(b"")
    assert meta_search.resolve_config(argv) == cfg
    more = meta_search.resolve_config([*argv, "--generations", "6", "--holdout="])
    assert (more.generations, more.holdout) == (6, "")
    for flags, change in [
        (["--family", "taylor_nce_prior"], "--family: taylor_nce -> taylor_nce_prior"),
        (["--seed", "5"], "--seed: 0 -> 5"),
        (["--archs", "mlp"], "--archs: mlp-s -> mlp"),
    ]:
        with pytest.raises(SystemExit) as err:
            meta_search.resolve_config([*argv, *flags])
        assert err.value.code == 2
        msg = capsys.readouterr().err
        assert change in msg and f"--resume {out}" in msg, msg
    (out / "config.json").unlink()
    with pytest.raises(SystemExit):
        meta_search.resolve_config(argv)
    assert "no readable" in capsys.readouterr().err


# A search small enough that a missed refusal would still end quickly.
MICRO = ["--pop", "4", "--generations", "1", "--datasets", "synthetic", "--archs",
         "mlp-s", "--noise", "symmetric:0.4", "--tasks", "1", "--steps", "5",
         "--batch-size", "32", "--train-size", "128", "--val-size", "64",
         "--select-tasks", "0", "--holdout", ""]  # fmt: skip


def _es_state(cfg):
    es, params = search.make_strategy(cfg)
    return search.init_es_state(cfg, es, params, jax.random.key(cfg.seed))


def test_checkpoint_of_another_search_is_refused(tmp_path):
    # A checkpoint whose config hash is not this search's (config.json edited, or a
    # folder shared by two searches) is refused, never resumed into another search.
    out = tmp_path / "run"
    out.mkdir()
    argv = [*MICRO, "--out", str(out)]
    cfg = meta_search.resolve_config(argv)
    (out / "config.json").write_text(json.dumps(dataclasses.asdict(cfg)))
    other = io.config_hash(meta_search.search_identity(
        dataclasses.replace(cfg, seed=cfg.seed + 1)))
    assert other != io.config_hash(meta_search.search_identity(cfg))
    io.save_checkpoint(str(out), _es_state(cfg), {"config_hash": other, "history": []})
    with pytest.raises(SystemExit) as err:
        meta_search.main(argv)
    assert "belongs to a search with other settings" in str(err.value.code)
    assert not (out / "metrics.jsonl").exists()
    # The hash covers what the search is, not what may change when it continues.
    more = dataclasses.replace(cfg, generations=9, holdout="digits", out="elsewhere")
    assert io.config_hash(meta_search.search_identity(more)) == io.config_hash(
        meta_search.search_identity(cfg))


def test_corrupted_checkpoint_is_refused_with_a_message(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    argv = [*MICRO, "--out", str(out)]
    cfg = meta_search.resolve_config(argv)
    (out / "config.json").write_text(json.dumps(dataclasses.asdict(cfg)))
    path = io.save_checkpoint(str(out), _es_state(cfg), {
        "config_hash": io.config_hash(meta_search.search_identity(cfg)),
        "history": []})
    with open(path, "rb") as fh:
        whole = fh.read()
    with open(path, "wb") as fh:
        fh.write(whole[: len(whole) // 2])  # a truncated file
    with pytest.raises(SystemExit) as err:
        meta_search.main(argv)
    assert "unreadable or truncated" in str(err.value.code)
    assert not (out / "metrics.jsonl").exists()


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--pop", "2"], "--pop"),
        (["--order", "0"], "--order"),
        (["--datasets", "imagenet"], "--datasets"),
        (["--archs", "transformer"], "--archs"),
        (["--noise", "symmetric:1.0"], "--noise"),
        (["--noise", "symmetric:1.5"], "--noise"),
        (["--family", "nope"], "--family"),
        (["--init", "1,2"], "--init"),
        (["--datasets", "synthetic", "--noise", "asymmetric:0.3"], "--noise"),
        (["--noise", "symmetric:0.2", "0.4"], "--noise"),  # a rate without a kind
        (["--noise", "symmetric:0.2-0.4-0.6"], "--noise"),
        (["--fitness", "median"], "--fitness"),
        (["--fitness", "margin"], "--fitness"),  # removed
        (["--references", "nce_mae"], "--references"),  # removed
        (["--family", "taylor_nce_sched"], "--family"),  # removed
    ],
)
def test_bad_flags_are_refused_before_compiling(flags, message, capsys):
    with pytest.raises(SystemExit) as err:
        meta_search.resolve_config(flags)
    assert err.value.code == 2
    assert message in capsys.readouterr().err


def test_noise_flag_takes_one_syntax_in_several_words():
    cfg = meta_search.resolve_config(
        ["--noise", "symmetric:0.2,0.4", "asymmetric:0.2-0.4", "--datasets", "digits"])
    assert cfg.noise == ("symmetric:0.2,0.4", "asymmetric:0.2-0.4")
    assert tasks.parse_noise_ranges(cfg.noise) == tasks.parse_noise_ranges(
        "symmetric:0.2,symmetric:0.4,asymmetric:0.2-0.4")
    old = meta_search.resolve_config(["--noise", "symmetric:0.2,symmetric:0.4"])
    assert tasks.parse_noise_ranges(old.noise) == tasks.parse_noise_ranges(
        "symmetric:0.2,0.4")
    default = search.SearchConfig()
    assert isinstance(default.noise, tuple)
    assert [r.spec(r.low) for r in tasks.parse_noise_ranges(default.noise)] == [
        f"{k}:{r:.4f}" for k, rates in (("symmetric", (0.2, 0.4, 0.6, 0.8)),
                                        ("asymmetric", (0.2, 0.4))) for r in rates]


def test_every_config_field_is_a_flag_and_the_checkout_shim_runs():
    # `python -m experiments.meta_search` (the checkout's shim) runs the same main.
    parser_help = subprocess.run(
        [sys.executable, "-m", "experiments.meta_search", "--help"], cwd=REPO,
        capture_output=True, text=True, timeout=120).stdout
    for f in search.SearchConfig.__dataclass_fields__:
        assert "--" + f.replace("_", "-") in parser_help
    assert tasks.NOISE_SYNTAX.split(",")[0] in " ".join(parser_help.split())


def small_cfg(**kw):
    base = dict(
        pop=8, generations=1, datasets="synthetic", archs="mlp-s",
        noise=("symmetric:0.6",), tasks=1, steps=60, batch_size=64, train_size=512,
        val_size=256, select_tasks=0, holdout="",
    )  # fmt: skip
    base.update(kw)
    cfg = search.SearchConfig(**base)
    cfg.validate()
    return cfg


def test_rank_fitness_weighs_every_task_the_same():
    # [pop 4, tasks 2, seeds 2]: task 0's accuracies spread widely, task 1's barely.
    val = np.array([
        [[0.90, 0.90], [0.10, 0.10]],
        [[0.50, 0.50], [0.13, 0.11]],
        [[0.60, 0.60], [0.12, 0.14]],
        [[0.70, 0.50], [0.15, 0.15]],
    ])  # fmt: skip
    mean = search.fitness_from(val, "mean")
    np.testing.assert_allclose(mean, [-0.5, -0.31, -0.365, -0.375])
    assert int(np.argmin(mean)) == 0  # the mean follows the wide task
    rank = search.fitness_from(val, "rank")
    # seed means: task 0 [.9, .5, .6, .6] -> ranks 3, 0, 1.5, 1.5 (ties share);
    # task 1 [.10, .12, .13, .15] -> ranks 0, 1, 2, 3; scaled by pop - 1 = 3.
    np.testing.assert_allclose(rank, [-0.5, -1 / 6, -7 / 12, -0.75])
    assert int(np.argmin(rank)) == 3  # the best mean rank: never last on a task
    with pytest.raises(ValueError, match="fitness mode"):
        search.fitness_from(val, "median")


@pytest.mark.slow
def test_rank_fitness_search_and_selection_run():
    cfg = small_cfg(fitness="rank", select_tasks=2)
    mesh = jax.sharding.Mesh(np.array(jax.devices()), ("pop",))
    pool = search.TaskPool(cfg, mesh)
    es, params = search.make_strategy(cfg)
    state = search.init_es_state(cfg, es, params, jax.random.key(0))
    _, rec = search.run_generation(cfg, es, params, state, pool, 0)
    assert -1.0 <= rec["best_fitness"] <= rec["mean_fitness"] <= 0.0
    assert rec["mean_fitness"] == pytest.approx(-0.5)  # mean rank of a population
    assert 0.0 < rec["best_val_acc"] <= 1.0 and 0.0 < rec["mean_val_acc"] <= 1.0
    # Selection ranks the real candidates only (3 here; the pop is 8): a loss that
    # rewards a low p_y comes last on both tasks, CE's expansion first.
    good = losses.family_init("taylor_nce", 4)
    bad = -good
    idx, fit = search.select_final(cfg, pool, np.stack([bad, good, 0.5 * good]))
    assert fit.shape == (3,) and fit[0] == 0.0 and idx != 0
    assert sorted(fit)[0] <= -0.5


def test_fitness_modes_are_mean_and_rank_only():
    assert set(search.FITNESS_MODES) == {"mean", "rank"}
    val = np.zeros((2, 3, 1))
    with pytest.raises(ValueError, match="fitness mode"):
        search.fitness_from(val, "margin")
    with pytest.raises(ValueError, match="--fitness"):
        search.SearchConfig(fitness="margin").validate()


@pytest.mark.slow
def test_search_improves_on_a_toy_task():
    # Start from a loss that *rewards* low p_y (theta_1 > 0: accuracy near chance or
    # worse); a good loss decreases in p_y, which CMA-ES must find.
    cfg = small_cfg(
        pop=8,
        sigma=0.5,
        family="taylor",
        init="0,0.5,0,0,0",
        steps=200,
        noise="symmetric:0.4",
    )
    mesh = jax.sharding.Mesh(np.array(jax.devices()), ("pop",))
    pool = search.TaskPool(cfg, mesh)
    es, params = search.make_strategy(cfg)
    state = search.init_es_state(cfg, es, params, jax.random.key(0))
    records = []
    for g in range(8):
        state, rec = search.run_generation(cfg, es, params, state, pool, g)
        records.append(rec)
    first_mean = records[0]["mean_fitness"]
    best_late = min(r["best_fitness"] for r in records[2:])
    assert best_late < first_mean - 0.2, [r["mean_fitness"] for r in records]
    assert np.mean([r["mean_fitness"] for r in records[-2:]]) < first_mean - 0.1


@pytest.mark.slow
def test_search_population_is_sharded_on_four_devices():
    from jax.sharding import PartitionSpec as P

    from arl_jax import inner, tasks

    assert len(jax.devices()) == 4
    cfg = small_cfg(pop=8, steps=10)
    mesh = jax.sharding.Mesh(np.array(jax.devices()), ("pop",))
    pool = search.TaskPool(cfg, mesh)
    es, params = search.make_strategy(cfg)
    state = search.init_es_state(cfg, es, params, jax.random.key(0))
    population, _ = es.ask(jax.random.key(1), state, params)
    fn = pool.evaluator("synthetic", "mlp-s", cfg.family, cfg.recipe_list[0])
    noisy = tasks.noisy_task_data(
        jax.random.key(2), pool.clean("synthetic"), "symmetric:0.5"
    )
    m = fn(
        population,
        jax.random.split(jax.random.key(3), 1),
        inner.Data.from_dataset(noisy),
    )
    assert m.val_acc.shape == (8, 1)
    assert m.val_acc.sharding.spec == P("pop")
    assert len(m.val_acc.sharding.device_set) == 4
    # A whole generation with a population (6) that does not divide 4 devices.
    cfg6 = dataclasses.replace(cfg, pop=6)
    es6, params6 = search.make_strategy(cfg6)
    state6 = search.init_es_state(cfg6, es6, params6, jax.random.key(0))
    state6, rec = search.run_generation(
        cfg6, es6, params6, state6, search.TaskPool(cfg6, mesh), 0
    )
    assert np.isfinite(rec["best_fitness"])
    assert int(state6.generation_counter) == 1


@pytest.mark.slow
def test_ship_loss_writes_a_loadable_pretrained_file(full_run, tmp_path):
    out, _ = full_run
    dest = tmp_path / "arl.json"
    # force: this 4-generation toy search need not beat CE on its held-out data
    # (the refusal is tested below).
    ship_loss.ship(str(out), str(dest), force=True)
    info = json.loads(dest.read_text())
    best = json.loads((out / "best_loss.json").read_text())
    assert info["search_coeffs"] == best["coeffs"] and info["provisional"] is False
    # Shipped in normal form: the same loss up to a positive factor and a constant.
    coeffs, scale = losses.normalise_coeffs(best["family"], best["coeffs"])
    assert info["coeffs"] == coeffs and info["scale"] == scale > 0
    assert set(info["heldout"]["results"]) == {"learned", "cross_entropy", "gce"}
    logits = jax.numpy.array([[2.0, 0.0, -1.0]])
    val = losses.arl_loss(logits, jax.numpy.array([0]), coeffs=info["coeffs"],
                          family=info["family"])
    assert np.isfinite(val).all()
    # The file is a loss file: load_loss and $ARL_JAX_LOSS_FILE read it.
    np.testing.assert_allclose(losses.load_loss(str(dest))(logits, [0]), val)
    with pytest.raises(SystemExit):
        ship_loss.main([str(tmp_path / "nothing-here"), "--dest", str(tmp_path / "x")])
    assert not (tmp_path / "x").exists()


# Search R's loss (taylor_nce, order 4): the shipped loss without its prior weight.
R_COEFFS = [1.4867494106292725, 0.8034337162971497, -2.1545286178588867,
            -0.5859202146530151, -0.09289447963237762, 0.19338619709014893]


def fake_run(folder, family="taylor_nce", coeffs=R_COEFFS, learned=None, ce=None):
    """A finished search folder: best_loss.json, and heldout.json when given."""
    folder.mkdir()
    best = {"family": family, "coeffs": list(coeffs), "fitness": -0.7,
            "generation": 3, "command": "python -m experiments.meta_search",
            "seed": 3, "date": "2026-01-01T00:00:00+00:00"}
    (folder / "best_loss.json").write_text(json.dumps(best))
    if learned is not None:
        held = {"dataset": "fashion_mnist", "noise": "symmetric:0.6", "arch": "mlp-s",
                "steps": 100, "seeds": 2, "results": {
                    "learned": {"test_acc_mean": learned, "test_acc_std": 0.0},
                    "cross_entropy": {"test_acc_mean": ce, "test_acc_std": 0.0}}}
        (folder / "heldout.json").write_text(json.dumps(held))
    return str(folder), best


def test_ship_loss_refuses_a_loss_below_cross_entropy(tmp_path):
    src, _ = fake_run(tmp_path / "lost", learned=0.1115, ce=0.7816)
    dest = tmp_path / "arl.json"
    with pytest.raises(ValueError, match="below cross-entropy"):
        ship_loss.ship(src, str(dest))
    assert not dest.exists()
    with pytest.raises(SystemExit):
        ship_loss.main([src, "--dest", str(dest)])
    assert not dest.exists()
    info = ship_loss.ship(src, str(dest), force=True)  # the researcher's call
    assert info["family"] == "taylor_nce"
    assert json.loads(dest.read_text()) == info
    assert info["coeffs"] != info["search_coeffs"]  # in normal form
    assert info["heldout"]["results"]["learned"]["test_acc_mean"] == 0.1115
    # One that beat cross-entropy ships without --force.
    won, _ = fake_run(tmp_path / "won", learned=0.80, ce=0.78)
    assert ship_loss.ship(won, str(tmp_path / "won.json"))["family"] == "taylor_nce"


def test_ship_loss_adds_the_class_prior_or_says_why_not(tmp_path, capsys):
    src, found = fake_run(tmp_path / "r")
    dest = tmp_path / "arl.json"
    # In normal form by default: the penalty's weight is divided by the same factor.
    info = ship_loss.ship(src, str(dest), prior_weight=1.5)
    assert (info["family"], info["search_family"]) == ("taylor_nce_prior", "taylor_nce")
    assert info["search_coeffs"] == [*found["coeffs"], 1.5]
    assert info["coeffs"][-1] == pytest.approx(1.5 / info["scale"])
    assert (info["coeffs"], info["scale"]) == tuple(
        losses.normalise_coeffs("taylor_nce_prior", info["search_coeffs"]))
    kept = ship_loss.ship(src, str(dest), prior_weight=3, keep_coeffs=True)
    assert kept["coeffs"] == [*found["coeffs"], 3.0] and "scale" not in kept
    assert kept["prior_weight"] == 3.0
    # As shipped: the written file is the objective of mean loss + 3 x the penalty.
    logits = jax.random.normal(jax.random.key(0), (16, 10))
    labels = jax.random.randint(jax.random.key(1), (16,), 0, 10)
    want = float(np.mean(losses.taylor_nce_loss(np.array(found["coeffs"]), logits,
                                                labels))) + 3.0 * float(
        losses.class_prior_penalty(logits))
    np.testing.assert_allclose(losses.load_objective(str(dest))(logits, labels), want,
                               rtol=1e-5)
    taylor, _ = fake_run(tmp_path / "taylor", family="taylor", coeffs=[1.0, -1.0, 0.5])
    for argv, message in [
        ([src, "--prior-weight", "-1"], "--prior-weight must be finite and >= 0"),
        ([src, "--prior-weight", "nan"], "--prior-weight must be finite and >= 0"),
        ([taylor, "--prior-weight", "1"], "has no class-prior form"),
    ]:
        with pytest.raises(SystemExit):
            ship_loss.main([*argv, "--dest", str(tmp_path / "no.json")])
        assert message in capsys.readouterr().err
    assert not (tmp_path / "no.json").exists()


def test_ship_loss_destination(tmp_path, capsys, monkeypatch):
    src, _ = fake_run(tmp_path / "r")
    # From a source checkout the default is the checkout's shipped loss file...
    assert ship_loss.checkout_pretrained() == os.path.join(
        REPO, "arl_jax", "pretrained", "arl.json")
    # ...from an installed copy there is none: --dest is required.
    monkeypatch.setattr(ship_loss, "checkout_pretrained", lambda: None)
    with pytest.raises(SystemExit):
        ship_loss.main([src])
    assert "--dest is required" in capsys.readouterr().err
    # A folder is refused (the file would not be where the user looks).
    with pytest.raises(SystemExit):
        ship_loss.main([src, "--dest", str(tmp_path)])
    assert "is a folder" in capsys.readouterr().err
    dest = tmp_path / "mine.json"
    ship_loss.main([src, "--dest", str(dest)])
    assert f"to {dest}" in capsys.readouterr().out
    info = json.loads(dest.read_text())
    assert info["ship_command"] == ship_loss.command_line([src, "--dest", str(dest)])
    assert info["run_dir"] == os.path.normpath(src)
    # ship() itself needs its destination.
    with pytest.raises(TypeError):
        ship_loss.ship(src)


@pytest.mark.slow
def test_prior_family_search_ships_a_drop_in_loss(tmp_path):
    # A search of the prior family plots the per-example part of its loss, and its
    # loss ships: arl_loss(logits, labels) evaluates it per example and
    # arl_objective adds its penalty.
    family = "taylor_nce_prior"
    out = tmp_path / "prior"
    proc = run_cli([*TINY, "--pop", "4", "--generations", "1", "--family",
                    family, "--out", str(out)], timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "learned_loss.png").stat().st_size > 10_000
    dest = tmp_path / "arl.json"
    info = ship_loss.ship(str(out), str(dest), force=True)  # a toy search: see above
    assert info["family"] == family
    assert len(info["coeffs"]) == losses.family_num_params(family, 4)
    logits = jax.random.normal(jax.random.key(0), (16, 10))
    labels = jax.random.randint(jax.random.key(1), (16,), 0, 10)
    got = losses.arl_loss(logits, labels, coeffs=info["coeffs"], family=info["family"])
    assert got.shape == (16,) and np.isfinite(got).all()
    total = losses.arl_objective(logits, labels, coeffs=info["coeffs"], family=family)
    want = np.mean(np.asarray(got, np.float64)) + info["coeffs"][-1] * float(
        losses.class_prior_penalty(logits))
    np.testing.assert_allclose(total, want, rtol=1e-5)
    assert ship_loss._refusal({"family": family}) == ""


def test_shipped_pretrained_loss_has_provenance():
    info = losses.load_pretrained()
    for key in ("family", "coeffs", "fitness", "generation", "command", "seed", "date"):
        assert key in info
    assert info["family"] in losses.FAMILIES
    assert len(info["coeffs"]) == losses.family_num_params(info["family"], 4) or (
        info["family"] == "taylor" and len(info["coeffs"]) >= 2
    )
