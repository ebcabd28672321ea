"""arl-report (arl_jax.commands.report) and the paired statistics it prints
(arl_jax.report.paired_differences, t_interval), on small meta_test folders written
here with accuracies chosen so that every expected number has a closed form."""

import json
import math

import numpy as np
import pytest

from arl_jax import report
from arl_jax.commands import report as report_cmd

NOISY = ("symmetric:0.4", "symmetric:0.8")
RECIPE = dict(
    dataset="fashion_mnist",
    noise=["symmetric:0.4,0.8"],
    seeds=3,
    steps=50,
    batch_size=8,
    lr=0.001,
    optimizer="adam",
    train_size=100,
)
# Student-t 97.5% quantiles (tables): df = 2, 5.
T975 = {2: 4.302652729911275, 5: 2.570581835636314}


def _row(arch, noise, loss, seed, acc):
    kind, _, rate = noise.partition(":")
    return dict(
        dataset="fashion_mnist",
        arch=arch,
        noise=noise,
        kind=kind,
        rate=float(rate or 0),
        loss=loss,
        seed=seed,
        val_acc=acc,
        test_acc=acc,
        train_loss=0.0,
        diverged=False,
        seconds=1.0,
    )


def _folder(path, rows, seed=0, **changes):
    path.mkdir(parents=True)
    cfg = {**RECIPE, "seed": seed, "out": str(path), "learned_losses": {}, **changes}
    (path / "config.json").write_text(json.dumps(cfg))
    writer = report.RowWriter(str(path / "runs.csv"))
    writer.write(rows)
    writer.close()
    return str(path)


# Per seed, loss "x" is ahead of "ref" by these points on BOTH noisy settings (so its
# difference of noisy means is the same), for the draws --seed 0 and --seed 1.
LEAD = {0: [1.0, 2.0, 6.0], 1: [-1.0, 0.5, 3.5]}


def _draw(seed):
    rows = []
    for s, lead in enumerate(LEAD[seed]):
        for noise, base in (
            ("none", 0.9),
            ("symmetric:0.4", 0.8),
            ("symmetric:0.8", 0.5 - 0.05 * s),
        ):
            rows.append(_row("mlp", noise, "ref", s, base))
            rows.append(_row("mlp", noise, "x", s, base + lead / 100))
    return rows


def test_t_interval_matches_the_closed_form():
    v = [1.0, 2.0, 6.0]
    half = T975[2] * np.std(v, ddof=1) / math.sqrt(3)
    assert report.t_interval(v) == pytest.approx((3.0 - half, 3.0 + half))
    assert all(math.isnan(b) for b in report.t_interval([2.0]))


def test_paired_differences_carry_the_interval_and_smallest_difference():
    st = report.paired_differences(_draw(0), "ref")["mlp"]["x"]
    half = T975[2] * np.std(LEAD[0], ddof=1) / math.sqrt(3)
    assert st["mean"] == pytest.approx(3.0)
    assert st["std"] == pytest.approx(np.std(LEAD[0]))
    assert (st["seeds"], st["ahead"]) == (3, 3)
    assert st["min"] == pytest.approx(1.0)
    assert (st["low"], st["high"]) == pytest.approx((3.0 - half, 3.0 + half))


def test_folders_of_one_recipe_pair_and_draws_pool(tmp_path, capsys):
    # --seed 0 split over two folders (x's rows in one, ref's in the other), as when
    # one run added a loss to another's table; --seed 1 in a third.
    d0 = _draw(0)
    a = _folder(tmp_path / "a", [r for r in d0 if r["loss"] == "x"])
    b = _folder(tmp_path / "b", [r for r in d0 if r["loss"] == "ref"])
    c = _folder(tmp_path / "c", _draw(1), seed=1)
    out = tmp_path / "report.md"
    text = report_cmd.main([a, b, c, "--reference", "ref", "--out", str(out)])
    assert out.read_text() == text + "\n" and text in capsys.readouterr().out
    both = LEAD[0] + LEAD[1]  # six seeds: (draw, seed) pairs, never across draws
    m = float(np.mean(both))
    half = T975[5] * np.std(both, ddof=1) / math.sqrt(6)
    half0 = T975[2] * np.std(LEAD[0], ddof=1) / math.sqrt(3)
    half1 = T975[2] * np.std(LEAD[1], ddof=1) / math.sqrt(3)
    line = next(x for x in text.splitlines() if x.startswith("| x | +"))
    assert line == (
        f"| x | {m:+.2f} [{m - half:+.2f}, {m + half:+.2f}] | -1.00 | "
        f"5 of 6 | +3.00 [{3 - half0:+.2f}, {3 + half0:+.2f}] | "
        f"+1.00 [{1 - half1:+.2f}, {1 + half1:+.2f}] |"
    )
    # Means over all six seeds: clean, each noisy setting, the noisy mean.
    sym8 = np.mean([0.5 - 0.05 * s for s in range(3)]) * 100
    x_sym8 = sym8 + m
    x_mean = (80 + m + x_sym8) / 2
    assert f"| x | 6 | {90 + m:.2f} | {80 + m:.2f} | {x_sym8:.2f} | {x_mean:.2f} |" \
        in text  # fmt: skip
    assert "| ref | 6 | 90.00 | 80.00 |" in text


def test_settings_restrict_the_grid(tmp_path):
    rows = _draw(0)
    # x is 10 points ahead at symmetric 0.8 only, on every seed.
    rows = [{**r, "test_acc": r["test_acc"] + 0.1}
            if r["loss"] == "x" and r["noise"] == "symmetric:0.8" else r
            for r in rows]  # fmt: skip
    a = _folder(tmp_path / "a", rows)
    text = report_cmd.main([a, "--reference", "ref", "--settings", "symmetric:0.8"])
    half = T975[2] * np.std(LEAD[0], ddof=1) / math.sqrt(3)
    assert f"| x | +13.00 [{13 - half:+.2f}, {13 + half:+.2f}] | +11.00 | 3 of 3 |" \
        in text  # fmt: skip
    assert "symmetric:0.4" not in text.split("## mlp")[1]
    with pytest.raises(SystemExit, match="no rows at asymmetric:0.2"):
        report_cmd.main([a, "--reference", "ref", "--settings", "asymmetric:0.2"])
    with pytest.raises(SystemExit, match="no rows of nce_mae"):
        report_cmd.main([a, "--reference", "nce_mae"])


def test_folders_that_cannot_pool_are_refused(tmp_path):
    rows = _draw(0)
    a = _folder(tmp_path / "a", rows)
    # Another --noise list: other labels for the same seed; another step count.
    other = _folder(tmp_path / "noise", rows, noise=["symmetric:0.8,0.4"])
    with pytest.raises(SystemExit, match="cannot pool.*--noise"):
        report_cmd.main([a, other, "--reference", "ref"])
    longer = _folder(tmp_path / "steps", rows, seed=1, steps=100)
    with pytest.raises(SystemExit, match="cannot pool.*--steps"):
        report_cmd.main([a, longer, "--reference", "ref"])
    # The same run in two folders of one draw would be counted twice.
    twice = _folder(tmp_path / "twice", [r for r in rows if r["loss"] == "x"])
    with pytest.raises(SystemExit, match="in both"):
        report_cmd.main([a, twice, "--reference", "ref"])
    # One learned loss name for two sets of coefficients.
    arl = [{**r, "loss": "arl[run]"} for r in rows if r["loss"] == "x"]
    spec = {"arl[run]": {"family": "taylor", "coeffs": [1.0]}}
    p = _folder(tmp_path / "p", arl, learned_losses=spec)
    q = _folder(
        tmp_path / "q",
        [r for r in rows if r["loss"] == "ref"],
        seed=1,
        learned_losses={"arl[run]": {"family": "taylor", "coeffs": [2.0]}},
    )
    with pytest.raises(SystemExit, match="other coefficients"):
        report_cmd.main([p, q, "--reference", "ref"])
    with pytest.raises(SystemExit, match="no runs.csv"):
        report_cmd.main([str(tmp_path / "missing"), "--reference", "ref"])


def test_grid_reads_cells_of_other_datasets_and_recipes(tmp_path, capsys):
    # Three cells: two datasets, two recipes. "x" leads "ref" by 2 points on
    # fashion_mnist and trails it by 5 on digits, on every seed and setting.
    def cell(name, dataset, lead, **recipe):
        rows = []
        for s in range(2):
            for noise in ("none", *NOISY):
                rows.append(_row("mlp", noise, "ref", s, 0.6))
                rows.append(_row("mlp", noise, "x", s, 0.6 + lead / 100))
        return _folder(tmp_path / name, rows, dataset=dataset, **recipe)

    a = cell("a", "fashion_mnist", 2.0)
    b = cell("b", "fashion_mnist", 2.0, optimizer="sgd", schedule="constant",
             standardize=True)
    c = cell("c", "digits", -5.0)
    text = report_cmd.main([a, b, c, "--grid", "--reference", "ref"])
    assert "c2: fashion_mnist: SGD 0.001 constant, 50 steps, batch 8, std" in text
    line = next(x for x in text.splitlines() if x.startswith("| x |"))
    # cells, all cells, without fashion_mnist (digits only), without digits
    assert line == "| x | 62.00 | 62.00 | 55.00 | 59.67 | 55.00 | **62.00** |"
    line = next(x for x in text.splitlines() if x.startswith("| ref |"))
    assert line == "| ref | 60.00 | 60.00 | 60.00 | **60.00** | **60.00** | 60.00 |"
    # Paired by (cell, seed): 6 units, 4 ahead by 2 and 2 behind by 5.
    diff = next(x for x in text.splitlines() if x.startswith("| x | -0.33 ["))
    assert diff.endswith("| -5.00 | 4 of 6 |")
    png = tmp_path / "grid.png"
    report_cmd.main([a, b, c, "--grid", "--reference", "ref", "--plot", str(png)])
    assert png.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(SystemExit, match="add --grid"):
        report_cmd.main([a, "--reference", "ref", "--plot", str(png)])
    # The same cell twice would count it twice: refused without --grid's say-so.
    with pytest.raises(SystemExit, match="are the same cell"):
        report_cmd.main([a, a, "--grid", "--reference", "ref"])
    # Without --grid, other recipes still cannot be pooled.
    with pytest.raises(SystemExit, match="cannot pool"):
        report_cmd.main([a, b, "--reference", "ref"])
