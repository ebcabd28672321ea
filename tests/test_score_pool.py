"""score_pool: family members equal the baselines they name; the command's outputs."""

import json

import jax
import numpy as np
import pytest

from arl_jax import compare, losses, search
from arl_jax.commands import score_pool

# Search R's loss (taylor_nce, order 4): the shipped loss without its prior weight.
R_COEFFS = [1.4867494106292725, 0.8034337162971497, -2.1545286178588867,
            -0.5859202146530151, -0.09289447963237762, 0.19338619709014893]


@pytest.fixture
def search_r(tmp_path):
    """A search's best_loss.json (taylor_nce, order 4) in a folder named search_r."""
    path = tmp_path / "search_r" / "best_loss.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"family": "taylor_nce", "coeffs": R_COEFFS,
                                "fitness": -0.7, "seed": 3}))
    return str(path)


@pytest.mark.parametrize("family, name", [
    ("taylor_nce", "mae"), ("taylor_nce", "nce_mae"), ("taylor_nce", "nce_rce"),
    ("taylor_nce_prior", "mae"), ("taylor_nce_prior", "nce_mae"),
    ("taylor_nce_prior", "nce_rce"),
])  # fmt: skip
def test_family_members_are_the_baselines_they_name(family, name):
    coeffs = score_pool.family_members(family, 4)[name]
    assert len(coeffs) == losses.family_num_params(family, 4)
    logits = 3.0 * jax.random.normal(jax.random.key(0), (64, 10))
    labels = jax.random.randint(jax.random.key(1), (64,), 0, 10)
    got = losses.arl_loss(logits, labels, coeffs=coeffs, family=family)
    want = losses.LOSSES[name](logits, labels)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    # Members have no batch term (a prior weight of 0): the objective is the mean.
    np.testing.assert_allclose(
        losses.family_objective(family, coeffs, logits, labels), np.mean(want),
        rtol=1e-5, atol=1e-6)


def test_ce_taylor_is_the_search_start():
    members = score_pool.family_members("taylor", 3)
    assert set(members) == {"ce_taylor"}  # no NCE term in the paper's family
    np.testing.assert_array_equal(members["ce_taylor"], losses.family_init("taylor", 3))


TINY = [
    "--datasets", "synthetic,digits", "--archs", "mlp-s", "--tasks", "2",
    "--steps", "20", "--train-size", "200", "--val-size", "64", "--draws", "2",
]  # fmt: skip


@pytest.mark.slow
def test_score_pool_writes_scores(tmp_path, capsys):
    out = tmp_path / "pool"
    res = score_pool.main(
        [*TINY, "--losses", "arl", "mae", "nce_rce", "--out", str(out)]
    )
    saved = json.loads((out / "scores.json").read_text())
    assert saved["ranking"] == res["ranking"]
    assert set(saved["ranking"]) == {"arl", "mae", "nce_rce"}
    assert len(saved["rows"]) == 4  # 2 draws x 2 tasks
    assert {r["dataset"] for r in saved["rows"]} == {"synthetic", "digits"}
    for r in saved["rows"]:
        assert all(0.0 <= v <= 1.0 for v in r["val_acc"].values())
    # The mean is the mean of the rows, i.e. minus the search's fitness.
    for name, m in saved["mean"].items():
        assert m == pytest.approx(np.mean([r["val_acc"][name] for r in saved["rows"]]))
    # The shipped loss (taylor_nce_prior) is no member of the default family
    # (taylor_nce): it is trained by name, as GCE would be, and said so.
    assert losses.load_pretrained()["family"] == "taylor_nce_prior"
    assert saved["trained_by_name"] == ["arl"] and saved["coeffs"]["arl"] is None
    assert saved["coeffs"]["mae"] == pytest.approx([0, 1, -1, 0, 0, 0])
    md = (out / "scores.md").read_text()
    assert "| task | arl | mae | nce_rce |" in md and "mean (= -fitness)" in md
    assert "mean (= -fitness)" in capsys.readouterr().out


@pytest.mark.slow
def test_a_loss_outside_the_family_is_trained_by_name_on_the_same_tasks(
    tmp_path, monkeypatch
):
    # GCE is no member of taylor_nce: it is trained by name, on the tasks, noisy
    # labels and seeds the members get, so a member scored twice (once by name)
    # gets the same accuracies.
    argv = [*TINY, "--losses", "nce_mae", "gce", "--out", str(tmp_path / "p")]
    cands = score_pool.candidates(search.SearchConfig(), ["nce_mae", "gce"], [])
    assert cands["gce"] is None and cands["nce_mae"] is not None
    res = score_pool.main(argv)
    assert res["coeffs"]["gce"] is None
    assert set(res["mean"]) == {"nce_mae", "gce"}
    monkeypatch.setitem(losses.LOSSES, "nce_mae_named", losses.LOSSES["nce_mae"])
    cfg = search.SearchConfig(datasets="synthetic,digits", archs="mlp-s", tasks=2,
                              steps=20, train_size=200, val_size=64)
    twice = score_pool.score(cfg, {"nce_mae": cands["nce_mae"], "nce_mae_named": None},
                             draws=1)
    for r in twice:
        assert r["val_acc"]["nce_mae"] == pytest.approx(r["val_acc"]["nce_mae_named"],
                                                        abs=0.02)


def test_a_smaller_familys_loss_is_scored_in_a_larger_family(search_r):
    # Search R's loss (taylor_nce) can be scored in taylor_nce_prior, beside the
    # shipped loss: it is written there with a prior weight of 0. SCE is no member:
    # it is trained by name.
    cfg = search.SearchConfig(family="taylor_nce_prior")
    got = score_pool.candidates(cfg, ["sce"], [search_r])
    label = compare.loss_file_label(search_r)
    np.testing.assert_allclose(got[label], [*R_COEFFS, 0.0], rtol=1e-6)
    assert got["sce"] is None
    assert list(got) == ["sce", label]


def test_the_shipped_loss_is_a_member_of_its_family_and_trained_by_name_elsewhere():
    # The shipped loss is a taylor_nce_prior loss (the class prior's weight is its
    # last coefficient): a member of that family, with its own coefficients; in a
    # family that cannot write the penalty it is trained by name, like GCE, and not
    # refused.
    shipped = losses.load_pretrained()
    own = score_pool.candidates(search.SearchConfig(family=shipped["family"]),
                                ["arl"], [])
    np.testing.assert_allclose(own["arl"], shipped["coeffs"], rtol=1e-6)
    for family in ("taylor_nce", "taylor", "taylorglo"):
        got = score_pool.candidates(search.SearchConfig(family=family), ["arl"], [])
        assert got == {"arl": None}


@pytest.mark.parametrize("argv, message", [
    (["--losses", "nope"], "neither a member of family"),
    (["--family", "taylor", "--losses", "mae", "--loss-file", "SEARCH_R"],
     "search_r/best_loss.json is taylor_nce with 6 coefficients"),
    (["--draws", "0"], "--draws must be >= 1"),
    (["--losses", "mae", "--loss-file", "nope.json"], "nope.json: not found"),
    (["--losses", "mae", "--elites", "no-such-run"], "no metrics.jsonl"),
    (["--fitness", "margin"], "--fitness"),
])  # fmt: skip
def test_bad_flags_exit_with_a_message(argv, message, tmp_path, capsys, search_r):
    argv = [search_r if a == "SEARCH_R" else a for a in argv]
    with pytest.raises(SystemExit) as err:
        score_pool.main([*argv, "--out", str(tmp_path / "x")])
    text = capsys.readouterr().err + str(err.value)
    assert message in text


def fake_run(folder, coeffs_by_gen, es_mean):
    folder.mkdir()
    lines = [json.dumps({"generation": g, "best_coeffs": c, "es_mean": es_mean})
             for g, c in enumerate(coeffs_by_gen)]
    (folder / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def test_paired_difference_and_its_standard_error():
    rows = [{"val_acc": {"a": a, "b": b}} for a, b in [(0.5, 0.4), (0.7, 0.4),
                                                       (0.6, 0.6)]]
    got = score_pool.paired(rows, "a", "b")
    d = np.array([0.1, 0.3, 0.0])
    assert got["diff"] == pytest.approx(d.mean())
    assert got["se"] == pytest.approx(d.std(ddof=1) / np.sqrt(3))
    assert score_pool.paired(rows, "b", "b") == {"diff": 0.0, "se": 0.0}
    assert np.isnan(score_pool.paired(rows[:1], "a", "b")["se"])


def test_markdown_marks_every_loss_tied_at_the_printed_precision():
    # The same accuracy averaged in another order differs in the last bits.
    summary = {"by_task": {"digits symmetric:0.2": {"a": 0.9606481591860453,
                                                    "b": 0.9606481393178304,
                                                    "c": 0.95}},
               "mean": {"a": 0.5, "b": 0.6, "c": 0.4}}
    md = score_pool.to_markdown(summary, ["a", "b", "c"], 3)
    assert "| digits symmetric:0.2 | **96.06** | **96.06** | 95.00 |" in md
    assert "| **mean (= -fitness)** | 50.00 | **60.00** | 40.00 |" in md


@pytest.mark.slow
def test_elites_of_a_run_are_scored_and_paired(tmp_path):
    start = losses.family_init("taylor_nce", 4).tolist()
    run = fake_run(tmp_path / "run", [start, [1.0, 1.0, -2.0, 0, 0, 0]],
                   [0.5, 1.0, -1.0, 0, 0, 0])
    out = tmp_path / "pool"
    res = score_pool.main([*TINY, "--losses", "nce_mae", "--elites", str(run),
                           "--out", str(out)])
    assert list(res["mean"]) == ["nce_mae", "elite g0", "elite g1", "es_mean"]
    assert res["coeffs"]["elite g1"] == [1.0, 1.0, -2.0, 0, 0, 0]
    assert res["paired_reference"] == "nce_mae"
    for name in res["mean"]:
        want = np.mean([r["val_acc"][name] - r["val_acc"]["nce_mae"]
                        for r in res["rows"]])
        assert res["paired"][name]["diff"] == pytest.approx(want)
    md = (out / "scores.md").read_text()
    assert "| **vs nce_mae, paired by task (± s.e.)** | - |" in md
    # A run of another family is refused with the flag named.
    with pytest.raises(SystemExit):
        score_pool.main([*TINY, "--family", "taylor", "--losses", "ce_taylor",
                         "--elites", str(run), "--out", str(tmp_path / "x")])
