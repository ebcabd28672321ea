"""Meta-test command line: every output, resumable CSV, tables, bad flags."""

import csv
import json

import pytest

from arl_jax import cli, compare, losses, report, tasks
from arl_jax.commands import meta_test

TINY = [
    "--dataset", "digits",
    "--noise", "symmetric:0.4",
    "--archs", "mlp-s",
    "--losses", "arl", "cross_entropy", "gce",
    "--seeds", "2",
    "--steps", "30",
    "--batch-size", "64",
]  # fmt: skip


@pytest.mark.slow
def test_meta_test_writes_every_output_and_resumes(tmp_path, capsys):
    out = tmp_path / "mt"
    rows = meta_test.main([*TINY, "--out", str(out)])
    # 2 settings (clean + symmetric:0.4) x 3 losses x 2 seeds.
    assert len(rows) == 12
    with open(out / "runs.csv") as fh:
        got = list(csv.DictReader(fh))
    assert len(got) == 12
    assert {r["loss"] for r in got} == {"arl", "cross_entropy", "gce"}
    assert {r["noise"] for r in got} == {"none", "symmetric:0.4"}
    for r in got:
        assert 0.0 <= float(r["test_acc"]) <= 1.0
    md = (out / "results.md").read_text()
    assert "| loss | none | symmetric:0.4 | mean (noisy) |" in md
    assert md.count("**") >= 6  # the best of each of the 3 columns is bold
    assert (out / "accuracy_vs_noise.png").stat().st_size > 10_000
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["mlp-s"]["ranking"]) == {"arl", "cross_entropy", "gce"}
    assert summary["mlp-s"]["reference"] == "arl"
    assert set(summary["mlp-s"]["paired_minus_reference"]) >= {"cross_entropy", "gce"}
    # A rerun skips what is done: no new rows.
    meta_test.main([*TINY, "--out", str(out)])
    assert len(report.read_rows(str(out / "runs.csv"))) == 12
    # The coefficients behind the `arl` rows are recorded; if the shipped loss has
    # changed since, a rerun refuses to file new rows under the old ones' name.
    config = json.loads((out / "config.json").read_text())
    assert config["learned_losses"]["arl"] == {
        "family": losses.load_pretrained()["family"],
        "coeffs": pytest.approx(losses.load_pretrained()["coeffs"]),
    }
    config["learned_losses"]["arl"]["coeffs"][0] += 1.0
    (out / "config.json").write_text(json.dumps(config))
    with pytest.raises(SystemExit):
        meta_test.main([*TINY, "--out", str(out)])
    assert "was run with taylor" in capsys.readouterr().err
    assert len(report.read_rows(str(out / "runs.csv"))) == 12
    # Nor rows of another recipe (here: more steps) beside the old ones.
    with pytest.raises(SystemExit):
        meta_test.main([*TINY, "--steps", "31", "--out", str(out)])
    assert "--steps: 30 -> 31" in capsys.readouterr().err


def test_learned_coeffs_are_recorded_and_checked_by_name(tmp_path):
    arl = compare.LossSpec("arl", "taylor_nce", (1.0, 1.0, -1.0))
    other = compare.LossSpec("arl[x]", "taylor", (1.0, -1.0))
    base = compare.LossSpec("gce", "gce")
    rec = meta_test.learned_coeffs_in(str(tmp_path), [], [arl, other, base])
    assert rec == {"arl": {"family": "taylor_nce", "coeffs": [1.0, 1.0, -1.0]},
                   "arl[x]": {"family": "taylor", "coeffs": [1.0, -1.0]}}
    (tmp_path / "config.json").write_text(json.dumps({"learned_losses": rec}))
    rows = [{"loss": "arl"}, {"loss": "gce"}]
    changed = compare.LossSpec("arl", "taylor_nce", (2.0, 1.0, -1.0))
    with pytest.raises(ValueError, match="rename those rows"):
        meta_test.learned_coeffs_in(str(tmp_path), rows, [changed])
    # No rows of that name yet: the new coefficients are simply recorded.
    now = meta_test.learned_coeffs_in(str(tmp_path), [{"loss": "gce"}], [changed])
    assert now["arl"]["coeffs"] == [2.0, 1.0, -1.0] and "arl[x]" in now


def test_a_rerun_with_another_recipe_is_refused(tmp_path, capsys):
    parse = lambda argv: cli.parse_config(meta_test.MetaTestConfig, argv)[0]  # noqa: E731
    cfg = parse(["--steps", "2000", "--noise", "symmetric:0.6"])
    rows = [{"loss": "gce"}]
    assert meta_test.recipe_changes(str(tmp_path), [], cfg) == []  # nothing yet
    # Rows without the config that made them: their recipe is unknown.
    with pytest.raises(ValueError, match="has rows but no readable"):
        meta_test.recipe_changes(str(tmp_path), rows, cfg)
    # A config.json written before --optimizer existed: its default is assumed.
    old = {"dataset": "fashion_mnist", "noise": ["symmetric:0.6"], "seeds": 3,
           "steps": 2000, "batch_size": 128, "lr": 0.001, "train_size": 0, "seed": 0}
    (tmp_path / "config.json").write_text(json.dumps(old))
    assert meta_test.recipe_changes(str(tmp_path), rows, cfg) == []
    assert meta_test.recipe_changes(str(tmp_path), [], parse(["--steps", "5"])) == []
    changed = parse(["--steps", "5000", "--noise", "symmetric:0.6", "--optimizer",
                     "sgd"])
    assert meta_test.recipe_changes(str(tmp_path), rows, changed) == [
        "--steps: 2000 -> 5000", "--optimizer: adam -> sgd"]


def test_interrupted_csv_keeps_finished_rows(tmp_path):
    path = str(tmp_path / "runs.csv")
    w = report.RowWriter(path)
    row = dict(dataset="digits", arch="mlp", noise="none", kind="none", rate=0.0,
               loss="mae", seed=0, val_acc=0.5, test_acc=0.25, train_loss=1.0,
               diverged=False, seconds=0.1)  # fmt: skip
    w.write([row])
    # No close(): the row is on disk already (flushed and synced).
    assert report.read_rows(path)[0]["test_acc"] == 0.25
    w.close()


def test_tables_mark_the_best_of_each_column():
    rows = []
    for loss, accs in {"a": (0.9, 0.5), "b": (0.8, 0.7)}.items():
        for noise, acc in zip(("none", "symmetric:0.6"), accs):
            rows.append(dict(dataset="d", arch="mlp", noise=noise,
                             kind=noise.split(":")[0], rate=0.0, loss=loss, seed=0,
                             val_acc=acc, test_acc=acc, train_loss=0.0,
                             diverged=False, seconds=0.0))  # fmt: skip
    md = report.markdown_tables(rows)
    # One seed a cell: the mean alone, no "± 0.00".
    assert "| a | **90.00** | 50.00 | 50.00 |" in md
    assert "| b | 80.00 | **70.00** | **70.00** |" in md
    # A second seed brings the spread.
    rows += [dict(r, seed=1, test_acc=r["test_acc"] - 0.02) for r in rows]
    md = report.markdown_tables(rows)
    assert "| a | **89.00 ± 1.00** | 49.00 ± 1.00 | 49.00 |" in md
    # Ties at the printed precision are all bold (accuracies averaged in another
    # order differ in the last bits).
    tie = [dict(r, loss="c", test_acc=r["test_acc"] + (1e-7 if r["noise"] == "none"
                                                       else -0.2))
           for r in rows if r["loss"] == "a"]
    md = report.markdown_tables(rows + tie)
    assert "| a | **89.00 ± 1.00** |" in md and "| c | **89.00 ± 1.00** |" in md


def test_paired_differences_compare_seed_by_seed():
    def row(loss, seed, noise, acc):
        return dict(dataset="d", arch="mlp", noise=noise, kind=noise.split(":")[0],
                    rate=0.0, loss=loss, seed=seed, val_acc=acc, test_acc=acc,
                    train_loss=0.0, diverged=False, seconds=0.0)  # fmt: skip

    rows = []
    # Seed 1 is harder for every loss; "b" is 1 point ahead of "arl" on seed 0 and
    # 3 points ahead on seed 1; "c" is behind on seed 0, ahead on seed 1.
    for seed, base in ((0, 0.80), (1, 0.70)):
        for noise, shift in (("none", 0.1), ("symmetric:0.4", 0.0),
                             ("symmetric:0.8", -0.2)):  # fmt: skip
            rows.append(row("arl", seed, noise, base + shift))
            rows.append(row("b", seed, noise, base + shift + (0.01, 0.03)[seed]))
            rows.append(row("c", seed, noise, base + shift + (-0.02, 0.02)[seed]))
    # The clean column does not count: only the noisy settings make the grid.
    rows.append(row("d", 0, "none", 1.0))
    assert report.seed_differences(rows, "b", "arl") == pytest.approx([1.0, 3.0])
    assert report.seed_differences(rows, "d", "arl") == []
    stats = report.paired_differences(rows, "arl")["mlp"]
    keys = ("mean", "std", "seeds", "ahead", "min")
    assert {k: stats["b"][k] for k in keys} == pytest.approx(
        {"mean": 2.0, "std": 1.0, "seeds": 2, "ahead": 2, "min": 1.0})
    assert {k: stats["c"][k] for k in keys} == pytest.approx(
        {"mean": 0.0, "std": 2.0, "seeds": 2, "ahead": 1, "min": -2.0})
    assert "d" not in stats  # no noisy setting run
    # A seed missing one noisy setting is left out rather than compared on less.
    short = [r for r in rows if not (r["loss"] == "c" and r["seed"] == 1
                                     and r["noise"] == "symmetric:0.8")]  # fmt: skip
    assert report.paired_differences(short, "arl")["mlp"]["c"]["seeds"] == 1
    assert report.seed_differences(short, "c", "arl") == pytest.approx([-2.0])
    md = report.paired_tables(rows, "arl")
    assert md.index("| b | +2.00 ± 1.00 | 2 of 2 |") < md.index(
        "| c | +0.00 ± 2.00 | 1 of 2 |")
    assert report.paired_tables(rows, "nonexistent") == ""
    summary = meta_test.summarise(rows)
    assert set(summary["mlp"]) == {"reference", "mean_over_noisy", "ranking",
                                   "paired_minus_reference"}
    assert summary["mlp"]["reference"] == "arl"
    assert summary["mlp"]["paired_minus_reference"]["b"]["mean"] == pytest.approx(2.0)
    assert summary["mlp"]["ranking"][0] == "b"
    # Without the shipped loss, summary.json compares with the first learned loss,
    # as results.md does (`meta_test --losses nce_mae --loss-file RUN/best_loss.json`).
    renamed = [{**r, "loss": "arl[run]"} if r["loss"] == "arl" else r for r in rows]
    assert meta_test.learned_reference(renamed) == "arl[run]"
    other = meta_test.summarise(renamed)["mlp"]
    assert other["reference"] == "arl[run]"
    assert other["paired_minus_reference"]["b"]["mean"] == pytest.approx(2.0)
    # Another reference may be named.
    vs_c = meta_test.summarise(rows, "c")["mlp"]
    assert vs_c["reference"] == "c"
    assert vs_c["paired_minus_reference"]["arl"]["mean"] == pytest.approx(0.0)
    plain = [r for r in rows if r["loss"] in ("b", "c")]
    assert meta_test.learned_reference(plain) is None
    assert "paired_minus_reference" not in meta_test.summarise(plain)["mlp"]


def test_summary_ranks_every_loss_by_its_mean_over_the_noisy_settings():
    def row(arch, loss, noise, acc, seed=0):
        return dict(dataset="d", arch=arch, noise=noise, kind=noise.split(":")[0],
                    rate=0.0, loss=loss, seed=seed, val_acc=acc, test_acc=acc,
                    train_loss=0.0, diverged=False, seconds=0.0)  # fmt: skip

    accs = {  # arch -> loss -> (none, symmetric:0.6, asymmetric:0.4)
        "mlp": {"arl": (0.9, 0.80, 0.70), "cross_entropy": (0.99, 0.60, 0.40),
                "arl[other]": (0.5, 0.90, 0.80)},  # a learned candidate ranks too
        "lenet": {"arl": (0.9, 0.70, 0.70), "cross_entropy": (0.95, 0.75, 0.75)},
    }  # fmt: skip
    noises = ("none", "symmetric:0.6", "asymmetric:0.4")
    rows = [row(a, n, z, v[i] + d) for a, by in accs.items() for n, v in by.items()
            for i, z in enumerate(noises) for d in (-0.01, 0.01)]  # fmt: skip
    rows = [dict(r, seed=i % 2) for i, r in enumerate(rows)]
    summary = meta_test.summarise(rows)
    assert set(summary) == {"mlp", "lenet"}  # one entry per architecture, no other
    mlp, lenet = summary["mlp"], summary["lenet"]
    # The clean column does not count.
    assert mlp["mean_over_noisy"] == pytest.approx(
        {"arl": 0.75, "cross_entropy": 0.50, "arl[other]": 0.85})
    assert mlp["ranking"] == ["arl[other]", "arl", "cross_entropy"]
    assert lenet["ranking"] == ["cross_entropy", "arl"]
    assert lenet["paired_minus_reference"]["cross_entropy"]["mean"] == pytest.approx(
        5.0)  # points of accuracy, seed by seed
    text = json.dumps(summary)
    assert "bar" not in text and "criterion" not in text
    assert not any(n.startswith("BAR") or "bar_" in n for n in dir(meta_test))


def test_noise_settings_take_the_one_syntax_at_fixed_rates():
    got = meta_test.noise_settings(("symmetric:0.2,0.4", "asymmetric:3e-1", "none"))
    assert [(k, r) for k, r, *_ in got] == [
        ("symmetric", 0.2), ("symmetric", 0.4), ("asymmetric", 0.3)]
    # The old one-kind-per-entry form is the same.
    assert meta_test.noise_settings(("symmetric:0.2,symmetric:0.4",)) == (
        meta_test.noise_settings(("symmetric:0.2,0.4",)))
    assert meta_test.noise_settings(("none",)) == []  # clean rows are always added
    # A range is for the search; the message says how to list the rates instead.
    with pytest.raises(ValueError, match=r"symmetric:0.2-0.6 is a range.*"
                       r"symmetric:0.2,0.6"):
        meta_test.noise_settings(("symmetric:0.2-0.6",))
    with pytest.raises(ValueError, match="--noise"):
        meta_test.noise_settings(("0.2",))


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--dataset", "imagenet"], "--dataset"),
        (["--archs", "vit"], "--archs"),
        (["--losses", "hinge"], "--losses"),
        (["--losses", ","], "--losses: empty"),
        (["--losses", "none"], "give at least one --loss-file"),
        (["--losses", "none", "gce"], "none cannot be given"),
        (["--noise", "symmetric:1.5"], "--noise"),
        (["--noise", "symmetric:0.2-0.6"], "is a range"),
        (["--noise", "symmetric:0.2", "0.4"], "--noise"),
        (["--loss-file", "/nonexistent/best_loss.json"], "--loss-file"),
        (["--optimizer", "rmsprop"], "--optimizer"),
        (["--lr", "-0.1"], "--lr"),
    ],
)
def test_bad_flags_exit_with_a_message(flags, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as err:
        meta_test.main([*flags, "--out", str(tmp_path)])
    assert err.value.code == 2
    assert message in capsys.readouterr().err


def test_the_optimizer_flag_reaches_the_inner_training(monkeypatch):
    seen = []
    monkeypatch.setattr(compare.inner, "make_evaluate", lambda cfg: seen.append(cfg))
    cfg = cli.parse_config(meta_test.MetaTestConfig,
                           ["--optimizer", "sgd", "--lr", "0.05"])[0]
    recipe = tasks.Recipe(cfg.optimizer, cfg.lr, steps=10)
    comp = compare.Comparer(recipe)
    comp.evaluator("mlp", 10, compare.LossSpec("ce", "cross_entropy"))
    assert (seen[0].optimizer, seen[0].lr, seen[0].steps) == ("sgd", 0.05, 10)


def test_lists_take_commas_or_spaces():
    # The issue's own example spells `--archs mlp,cnn`; both forms mean the same.
    parse = lambda argv: cli.parse_config(meta_test.MetaTestConfig, argv)[0]  # noqa: E731
    commas = parse(["--archs", "mlp,cnn", "--losses", "arl,gce", "cross_entropy"])
    spaces = parse(["--archs", "mlp", "cnn", "--losses", "arl", "gce", "cross_entropy"])
    assert commas.archs == spaces.archs == ("mlp", "cnn")
    assert commas.losses == spaces.losses == ("arl", "gce", "cross_entropy")
    # --noise keeps its commas: they separate the rates of one kind.
    assert parse(["--noise", "symmetric:0.2,0.4"]).noise == ("symmetric:0.2,0.4",)
    with pytest.raises(SystemExit):
        parse(["--archs", "mlp,vit"])


def test_losses_arl_runs_no_baseline(tmp_path):
    # `--losses arl --loss-file F` compares the shipped loss with a search's only;
    # an empty baseline list once fell back to every baseline.
    best = tmp_path / "search_q" / "best_loss.json"
    best.parent.mkdir()
    best.write_text(json.dumps(losses.load_pretrained()))
    parse = lambda argv: cli.parse_config(meta_test.MetaTestConfig, argv)[0]  # noqa: E731
    names = [s.name for s in meta_test.loss_specs(
        parse(["--losses", "arl", "--loss-file", str(best)]))]
    assert names == ["arl", compare.loss_file_label(str(best))]
    assert [s.name for s in meta_test.loss_specs(parse(["--losses", "gce"]))] == ["gce"]
    every = meta_test.loss_specs(parse(["--losses", "all"]))
    assert len(every) == len(losses.LOSSES)  # the shipped loss and every baseline
    assert compare.baseline_specs([]) == []
    # `--losses none`: the --loss-file losses only, neither the shipped loss nor
    # a baseline (what `--losses ,` once did without saying so).
    only = meta_test.loss_specs(parse(["--losses", "none", "--loss-file", str(best)]))
    assert [s.name for s in only] == [compare.loss_file_label(str(best))]


def test_plot_styles_keep_every_learned_loss_apart():
    learned = ["arl"] + [f"arl[run{i}]" for i in range(7)]
    hand = [f"hand{i}" for i in range(12)]
    styles = report.line_styles(hand[:3] + learned + hand[3:])
    looks = {(s["color"], s["ls"], s["marker"]) for k, s in styles.items()
             if report.is_learned(k)}  # fmt: skip
    assert len(looks) == len(learned)  # eight learned losses, eight looks
    assert all(styles[k]["lw"] == 2.5 for k in learned)
    # Hand-designed ones take matplotlib's colours (none given), a new dash after ten.
    assert all("color" not in styles[k] for k in hand)
    assert [styles[k]["ls"] for k in hand] == ["-"] * 10 + ["--"] * 2
