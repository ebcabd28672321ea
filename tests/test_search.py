"""The meta-search: command line, outputs, resume after SIGKILL, progress, sharding."""

import dataclasses
import json
import os
import shlex
import signal
import subprocess
import sys

import jax
import numpy as np
import pytest

from arl_jax import losses, search
from experiments import meta_search

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
        [sys.executable, "-m", "experiments.meta_search", *args],
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
        "config.json", "metrics.jsonl", "best_loss.json", "checkpoint.pkl",
        "fitness.png", "learned_loss.png", "heldout.json", "selection.json",
    ):  # fmt: skip
        assert (out / name).exists(), name
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["pop"] == 8 and cfg["datasets"] == "synthetic"
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["generation"] for line in lines] == [0, 1, 2, 3]
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
from experiments import meta_search
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
    # allowed); other settings would continue, or crash in, the old search (a GPU
    # session's second search resumed the first one's checkpoint this way).
    out = tmp_path / "run"
    out.mkdir()
    argv = [*TINY, "--generations", "4", "--out", str(out)]
    cfg = meta_search.resolve_config(argv)
    (out / "config.json").write_text(json.dumps(dataclasses.asdict(cfg)))
    assert meta_search.resolve_config(argv) == cfg  # no checkpoint yet
    (out / "checkpoint.pkl").write_bytes(b"")
    assert meta_search.resolve_config(argv) == cfg
    more = meta_search.resolve_config([*argv, "--generations", "6", "--holdout="])
    assert (more.generations, more.holdout) == (6, "")
    for flags, change in [
        (["--family", "taylor_nce_sched"], "--family: taylor_nce -> taylor_nce_sched"),
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
        (["--fitness", "median"], "--fitness"),
        (["--fitness", "margin", "--references", "nce_maee"], "--references"),
        (["--fitness", "margin", "--references", "arl"], "--references"),
        (["--fitness", "margin", "--references", ""], "--references"),
    ],
)
def test_bad_flags_are_refused_before_compiling(flags, message, capsys):
    with pytest.raises(SystemExit) as err:
        meta_search.resolve_config(flags)
    assert err.value.code == 2
    assert message in capsys.readouterr().err


def test_every_config_field_is_a_flag():
    parser_help = run_cli(["--help"], timeout=120).stdout
    for f in search.SearchConfig.__dataclass_fields__:
        assert "--" + f.replace("_", "-") in parser_help


def small_cfg(**kw):
    base = dict(
        pop=8, generations=1, datasets="synthetic", archs="mlp-s",
        noise="symmetric:0.6", tasks=1, steps=60, batch_size=64, train_size=512,
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


def test_margin_fitness_is_the_worst_architecture_against_the_best_reference():
    # [pop 3, tasks 4, seeds 1]; tasks 0-1 on "mlp", 2-3 on "cnn"; 2 references.
    val = np.array([
        [[0.90], [0.80], [0.60], [0.50]],  # far ahead on mlp, behind on cnn
        [[0.76], [0.66], [0.66], [0.56]],  # a little ahead on both
        [[0.00], [0.00], [0.00], [0.00]],  # diverged
    ])  # fmt: skip
    refs = np.array([
        [[0.75], [0.60], [0.65], [0.55]],
        [[0.70], [0.65], [0.60], [0.50]],
    ])  # best per task: .75 .65 .65 .55
    archs = ["mlp", "mlp", "cnn", "cnn"]
    fit = search.fitness_from(val, "margin", refs, archs)
    # candidate 0: mlp (+.15 +.15)/2 = .15, cnn (-.05 -.05)/2 = -.05 -> worst -.05
    np.testing.assert_allclose(fit, [0.05, -0.01, 0.70], atol=1e-6)
    assert int(np.argmin(fit)) == 1  # ahead everywhere beats far ahead on one arch
    # The mean fitness would pick candidate 0.
    assert int(np.argmin(search.fitness_from(val, "mean"))) == 0
    with pytest.raises(ValueError, match="ref_val_acc"):
        search.fitness_from(val, "margin", refs, archs[:3])


def test_margin_fitness_search_and_selection_run():
    cfg = small_cfg(fitness="margin", references="nce_mae,cross_entropy", tasks=2,
                    archs="mlp-s,mlp", select_tasks=2)
    mesh = jax.sharding.Mesh(np.array(jax.devices()), ("pop",))
    pool = search.TaskPool(cfg, mesh)
    es, params = search.make_strategy(cfg)
    state = search.init_es_state(cfg, es, params, jax.random.key(0))
    _, rec = search.run_generation(cfg, es, params, state, pool, 0)
    ref = np.array(rec["task_ref_val_acc"])  # [2 references, 2 tasks]
    assert ref.shape == (2, 2) and ((0.0 < ref) & (ref <= 1.0)).all()
    best = np.array(rec["task_val_acc_best"])  # the fittest candidate's, per task
    archs = np.array([t["arch"] for t in rec["tasks"]])
    worst = min((best - ref.max(0))[archs == a].mean() for a in set(archs))
    assert rec["best_fitness"] == pytest.approx(-worst, abs=1e-6)
    # Selection: a loss that rewards a low p_y is far behind the references.
    good = losses.family_init("taylor_nce", 4)
    idx, fit = search.select_final(cfg, pool, np.stack([-good, good]))
    assert idx == 1 and fit[0] > 0.15 and fit[0] > fit[1] + 0.15


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
    fn = pool.evaluator("synthetic", "mlp-s", cfg.family, cfg.steps)
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
    from arl_jax import losses
    from experiments import ship_loss

    out, _ = full_run
    dest = tmp_path / "arl.json"
    # force: this 4-generation toy search need not beat CE on its held-out data
    # (the refusal is tested on real searches below).
    ship_loss.ship(str(out), str(dest), force=True)
    info = json.loads(dest.read_text())
    best = json.loads((out / "best_loss.json").read_text())
    assert info["search_coeffs"] == best["coeffs"] and info["provisional"] is False
    # Shipped in normal form: the same loss up to a positive factor and a constant.
    coeffs, scale = losses.normalise_coeffs(best["family"], best["coeffs"])
    assert info["coeffs"] == coeffs and info["scale"] == scale > 0
    assert set(info["heldout"]["results"]) == {"learned", "cross_entropy", "gce"}
    logits = jax.numpy.array([[2.0, 0.0, -1.0]])
    val = losses.arl_loss(logits, jax.numpy.array([0]), coeffs=info["coeffs"])
    assert np.isfinite(val).all()
    with pytest.raises(SystemExit):
        ship_loss.main([str(tmp_path / "nothing-here")])


@pytest.mark.parametrize(("run", "match"), [
    ("search_y", "below cross-entropy"),  # 11.15% against 78.16% on Fashion-MNIST
    ("search_z", "changes over training"),  # a scheduled family
])
def test_ship_loss_refuses_what_should_not_be_the_default(run, match, tmp_path):
    from experiments import ship_loss

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    src = os.path.join(root, "docs", "runs", run)
    dest = tmp_path / "arl.json"
    with pytest.raises(ValueError, match=match):
        ship_loss.ship(src, str(dest))
    assert not dest.exists()
    with pytest.raises(SystemExit):
        ship_loss.main([src, "--dest", str(dest)])
    info = ship_loss.ship(src, str(dest), force=True)  # the researcher's call
    assert info["family"] == "taylor_nce_sched"
    assert json.loads(dest.read_text())["family"] == info["family"]
    assert info["coeffs"] != info["search_coeffs"]  # in normal form


def test_ship_loss_adds_the_class_prior_or_says_why_not(tmp_path, capsys):
    from arl_jax import losses
    from experiments import ship_loss

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    src = os.path.join(root, "docs", "runs", "search_r")
    found = json.loads(open(os.path.join(src, "best_loss.json")).read())
    dest = tmp_path / "arl.json"
    # In normal form by default: the penalty's weight is divided by the same factor.
    info = ship_loss.ship(src, str(dest), prior_weight=1.5)
    assert (info["family"], info["search_family"]) == ("taylor_nce_prior", "taylor_nce")
    assert info["search_coeffs"] == [*found["coeffs"], 1.5]
    assert info["coeffs"][-1] == pytest.approx(1.5 / info["scale"])
    assert (info["coeffs"], info["scale"]) == tuple(
        losses.normalise_coeffs("taylor_nce_prior", info["search_coeffs"]))
    kept = ship_loss.ship(src, str(dest), prior_weight=0, keep_coeffs=True)
    assert kept["coeffs"] == [*found["coeffs"], 0.0] and "scale" not in kept
    for argv, message in [
        ([src, "--prior-weight", "-1"], "--prior-weight must be finite and >= 0"),
        ([src, "--prior-weight", "nan"], "--prior-weight must be finite and >= 0"),
        ([os.path.join(root, "docs", "runs", "search_z"), "--force",
          "--prior-weight", "1"], "has no class-prior form"),
    ]:
        with pytest.raises(SystemExit):
            ship_loss.main([*argv, "--dest", str(tmp_path / "no.json")])
        assert message in capsys.readouterr().err
    assert not (tmp_path / "no.json").exists()


@pytest.mark.slow
@pytest.mark.parametrize("family", ["taylor_nce_fit", "taylor_nce_prior"])
def test_batch_reading_search_ships_a_drop_in_loss(tmp_path, family):
    # A search of the fit-driven family plots its loss at three batch fits (the prior
    # family its per-example part), and its loss ships (unlike a scheduled one):
    # arl_loss(logits, labels) evaluates it.
    from arl_jax import losses
    from experiments import ship_loss

    out = tmp_path / "fit"
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
    assert ship_loss._refusal({"family": family}) == ""


def test_scheduled_search_rejects_losses_that_rise():
    # Searches Y and AA ended with losses that rise from a uniform to a perfect
    # prediction (and collapsed on Fashion-MNIST); Z's falls at both ends.
    from arl_jax import losses

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    pop = np.array([json.loads(open(os.path.join(
        root, "docs", "runs", f"search_{r}", "best_loss.json")).read())["coeffs"]
        for r in ("y", "z")])
    np.testing.assert_array_equal(losses.loss_falls("taylor_nce_sched", pop),
                                  [False, True])
    res = {"val_acc": np.full((2, 3, 1), 0.7), "diverged": np.zeros((2, 3, 1), bool)}
    cfg = search.SearchConfig(family="taylor_nce_sched")
    out = search.reject_rising(cfg, pop, res)
    np.testing.assert_array_equal(out["val_acc"][:, :, 0], [[0, 0, 0], [0.7] * 3])
    np.testing.assert_array_equal(out["falls"], [False, True])
    np.testing.assert_allclose(search.fitness_from(out["val_acc"]), [0.0, -0.7])
    # The batch-driven families have the same two ends, checked alike.
    for family in ("taylor_nce_fit", "taylor_nce_conf"):
        cfg = search.SearchConfig(family=family)
        np.testing.assert_array_equal(search.reject_rising(cfg, pop, res)["val_acc"],
                                      out["val_acc"])
    # A constant family's candidates are left to the fitness (the default search).
    rising = np.array([[0.0, 1.0, 1.0, 0.0, 0.0, 0.0], [1.54, 1, -3.1, -2, -1.8, -.56]])
    assert losses.loss_falls("taylor_nce", rising).tolist() == [False, True]
    kept = search.reject_rising(search.SearchConfig(), rising, res)
    np.testing.assert_array_equal(kept["val_acc"], res["val_acc"])


def test_shipped_pretrained_loss_has_provenance():
    from arl_jax import losses

    info = losses.load_pretrained()
    for key in ("family", "coeffs", "fitness", "generation", "command", "seed", "date"):
        assert key in info
    assert len(info["coeffs"]) == losses.family_num_params(info["family"], 4) or (
        info["family"] == "taylor" and len(info["coeffs"]) >= 2
    )


def test_defaults_reproduce_search_g_and_the_shipped_loss_is_r_plus_the_prior(
    tmp_path, monkeypatch
):
    # `make demo` (the defaults with --seed 2) reproduces search G: its recorded
    # config (docs/runs/search_g) says so. The shipped loss is search R plus 3 x the
    # class prior (docs/RESULTS.md sections 22-23), written by the command it
    # records, with the coefficients the meta-test tables measured.
    from experiments import ship_loss

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    runs = os.path.join(root, "docs", "runs")
    with open(os.path.join(runs, "search_g", "config.json")) as f:
        recorded = json.load(f)
    recorded = recorded.get("config", recorded)
    recorded.setdefault("fitness", "mean")  # flags added after G, at G's behaviour
    recorded.setdefault("references", search.SearchConfig.references)
    defaults = dataclasses.asdict(search.SearchConfig(seed=2))
    assert {k: v for k, v in recorded.items() if k != "out"} == {
        k: v for k, v in defaults.items() if k != "out"
    }
    with open(os.path.join(root, "arl_jax", "pretrained", "arl.json")) as f:
        shipped = json.load(f)
    assert shipped["run_dir"] == "docs/runs/search_r" and shipped["seed"] == 3
    assert (shipped["family"], shipped["prior_weight"]) == ("taylor_nce_prior", 3.0)
    with open(os.path.join(runs, "search_r", "best_loss.json")) as f:
        found = json.load(f)
    assert shipped["coeffs"] == [*found["coeffs"], 3.0]
    for table in ("bar_confirm/seed2", "bar_confirm/cpu_lenet/seed3"):
        with open(os.path.join(runs, table, "config.json")) as f:
            tested = json.load(f)["learned_losses"]["arl[r_prior3]"]
        assert tested == {"family": shipped["family"], "coeffs": shipped["coeffs"]}
    # Its own command, rerun from the repository root, writes the same file.
    argv = shlex.split(shipped["ship_command"])[3:]
    assert ship_loss.command_line(argv) == shipped["ship_command"]
    monkeypatch.chdir(root)
    args = ship_loss.build_parser().parse_args(argv)
    dest = tmp_path / "arl.json"
    ship_loss.ship(args.run_dir, str(dest), args.force, args.prior_weight,
                   args.keep_coeffs, args.note, ship_loss.command_line(argv))
    assert json.loads(dest.read_text()) == shipped
    with open(os.path.join(root, "Makefile")) as f:
        assert "meta_search --seed 2 --out runs/demo" in f.read()
