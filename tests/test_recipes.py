"""Training recipes as a task dimension, standardised inputs, and MNIST offline."""

import dataclasses
import gzip
import json
import pickle

import numpy as np
import pytest

from arl_jax import cli, compare, data, data_readers, report, search, tasks
from arl_jax.commands import meta_search, meta_test
from arl_jax.commands import report as report_cmd


@pytest.mark.parametrize("text", ["adam:0.001:constant:4000:128:std",
                                  "sgd:0.05:cosine:2000:64"])
def test_a_recipe_reads_back_from_its_spec(text):
    recipe = tasks.parse_recipe(text)
    assert recipe.spec() == text
    assert tasks.parse_recipe(recipe.spec()) == recipe


@pytest.mark.parametrize("text, message", [
    ("adam:1e-3:constant:100", "is not OPTIMIZER:LR"),
    ("adam:1e-3:constant:100:64:raw", "is not OPTIMIZER:LR"),
    ("rmsprop:1e-3:constant:100:64", "optimizer must be adam or sgd"),
    ("adam:1e-3:step:100:64", "schedule must be constant or cosine"),
    ("adam:fast:constant:100:64", "LR must be a number"),
    ("adam:-1:constant:100:64", "LR must be positive"),
    ("adam:nan:constant:100:64", "LR must be positive"),
    ("adam:1e-3:constant:0:64", "STEPS and BATCH must be >= 1"),
])
def test_a_bad_recipe_is_refused_in_one_line_naming_the_flag(text, message):
    with pytest.raises(ValueError, match=message) as err:
        tasks.parse_recipe(text, "--recipes")
    assert str(err.value).startswith("--recipes: ") and "\n" not in str(err.value)
    cfg = search.SearchConfig(recipes=(text,), holdout="")
    with pytest.raises(ValueError, match=message):
        cfg.validate()


def test_one_recipe_draws_the_same_tasks_as_before_and_several_are_all_drawn():
    noises = tasks.parse_noise_ranges(("symmetric:0.2-0.8", "pairflip:0.3"))
    archs = {"synthetic": ["mlp"], "mnist1d": ["mlp", "mlp-s"]}
    args = (16, ("synthetic", "mnist1d"), archs, noises, True)
    plain = tasks.sample_tasks(np.random.default_rng(3), *args)
    one = tasks.sample_tasks(np.random.default_rng(3), *args, (tasks.Recipe(),))
    assert plain == one
    recipes = tuple(tasks.parse_recipe(t) for t in
                    ("adam:1e-3:constant:10:32", "sgd:0.1:cosine:20:64:std"))
    drawn = tasks.sample_tasks(np.random.default_rng(3), *args, recipes)
    assert {t.recipe for t in drawn} == set(recipes)
    # The recipe is drawn after the rest: dataset, arch and noise are unchanged.
    assert [(t.dataset, t.noise) for t in drawn][:1] == [(plain[0].dataset,
                                                         plain[0].noise)]


def test_recipe_list_defaults_to_the_flags():
    cfg = search.SearchConfig(lr=1e-2, steps=7, batch_size=16)
    assert cfg.recipe_list == (tasks.Recipe("adam", 1e-2, "cosine", 7, 16, False),)
    cfg = search.SearchConfig(recipes=("sgd:0.1:constant:5:8:std",))
    assert cfg.recipe_list == (tasks.Recipe("sgd", 0.1, "constant", 5, 8, True),)


def test_standardize_uses_the_training_split_statistics():
    ds = data.load("digits")
    std = data.standardize(ds)
    assert abs(float(std.x_train.mean())) < 1e-4
    assert abs(float(std.x_train.std()) - 1.0) < 1e-3
    scale = float(ds.x_train.std())
    np.testing.assert_allclose(std.x_test * scale + ds.x_train.mean(), ds.x_test,
                               atol=1e-5)
    assert std.y_train is ds.y_train and std.num_classes == ds.num_classes


@pytest.mark.slow
def test_search_draws_recipes_and_records_them(tmp_path):
    out = tmp_path / "run"
    argv = ["--pop", "4", "--generations", "1", "--datasets", "synthetic",
            "--archs", "mlp-s", "--noise", "symmetric:0.4", "--tasks", "4",
            "--recipes", "adam:1e-3:constant:5:32:std", "sgd:0.05:cosine:6:16",
            "--train-size", "128", "--val-size", "64", "--select-tasks", "0",
            "--holdout", "", "--seed", "1", "--out", str(out)]
    meta_search.main(argv)
    record = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    specs = {t["recipe"] for t in record["tasks"]}
    assert specs <= {"adam:0.001:constant:5:32:std", "sgd:0.05:cosine:6:16"}
    assert specs  # every task says its recipe
    assert json.loads((out / "config.json").read_text())["recipes"] == [
        "adam:1e-3:constant:5:32:std", "sgd:0.05:cosine:6:16"]  # as given
    # One recipe: the identity (checkpoint hash) is what it was before --recipes.
    cfg = meta_search.resolve_config(argv[:-2] + ["--out", str(tmp_path / "x")])
    assert "recipes" in meta_search.search_identity(cfg)
    plain = dataclasses.replace(cfg, recipes=())
    assert "recipes" not in meta_search.search_identity(plain)


def test_task_pool_builds_one_evaluator_per_recipe(monkeypatch):
    built = []
    monkeypatch.setattr(search.parallel, "make_sharded_evaluate",
                        lambda icfg, mesh: built.append(icfg) or (lambda *a: None))
    cfg = search.SearchConfig(datasets="synthetic", archs="mlp-s", holdout="",
                              train_size=128, val_size=64,
                              recipes=("adam:1e-3:constant:5:32:std",
                                       "sgd:0.05:cosine:6:16"))
    pool = search.TaskPool(cfg, mesh=None)
    for r in cfg.recipe_list:
        pool.evaluator("synthetic", "mlp-s", "taylor_nce", r)
        pool.evaluator("synthetic", "mlp-s", "taylor_nce", r)  # cached
    assert [(c.optimizer, c.lr, c.schedule, c.steps, c.batch_size) for c in built] == [
        ("adam", 1e-3, "constant", 5, 32), ("sgd", 0.05, "cosine", 6, 16)]
    assert abs(float(pool.clean("synthetic", True).x_train.mean())) < 1e-4


def test_meta_test_schedule_and_standardize_reach_the_run(monkeypatch, tmp_path):
    seen = []
    monkeypatch.setattr(compare.inner, "make_evaluate", lambda cfg: seen.append(cfg))
    compare.Comparer(tasks.Recipe(schedule="constant", steps=10)).evaluator(
        "mlp", 10, compare.LossSpec("ce", "cross_entropy"))
    assert seen[0].schedule == "constant"
    monkeypatch.undo()
    out = tmp_path / "mt"
    argv = ["--dataset", "digits", "--noise", "symmetric:0.4", "--archs", "mlp-s",
            "--losses", "cross_entropy", "--seeds", "1", "--steps", "20",
            "--batch-size", "64", "--schedule", "constant", "--standardize",
            "--out", str(out)]
    meta_test.main(argv)
    cfg = json.loads((out / "config.json").read_text())
    assert (cfg["schedule"], cfg["standardize"]) == ("constant", True)
    assert "(constant), standardised inputs" in (out / "results.md").read_text()
    # The schedule is part of the recipe: rows of another one cannot join them.
    with pytest.raises(SystemExit):
        meta_test.main([*argv[:-5], "--out", str(out)])


def test_meta_test_refuses_an_unknown_schedule(capsys, tmp_path):
    with pytest.raises(SystemExit):
        meta_test.main(["--schedule", "step", "--out", str(tmp_path / "x")])
    assert "--schedule: 'step'; valid: constant, cosine" in capsys.readouterr().err


def test_report_reads_configs_from_before_the_schedule_existed(tmp_path):
    old = {"dataset": "digits", "noise": ["symmetric:0.4"], "seeds": 1, "steps": 20,
           "batch_size": 64, "lr": 0.001, "optimizer": "adam", "train_size": 0,
           "seed": 0}
    recipe = report_cmd._recipe(old, "f")
    assert (recipe["schedule"], recipe["standardize"]) == ("cosine", False)
    parsed = cli.parse_config(meta_test.MetaTestConfig, [])[0]
    assert {k: getattr(parsed, k) for k in report.RECIPE_DEFAULTS} == \
        report.RECIPE_DEFAULTS


def _fake_mnist(path, payload=None):
    rng = np.random.default_rng(0)

    def split(n):
        return (rng.random((n, 784), dtype=np.float32),
                rng.integers(0, 10, n).astype(np.int64))

    payload = payload if payload is not None else (split(30), split(10), split(20))
    with gzip.open(path, "wb") as f:
        pickle.dump(payload, f, protocol=2)
    return data_readers.sha256_file(path)


def test_mnist_pickle_is_read_checked_and_kept_to_arrays(tmp_path, monkeypatch):
    folder = tmp_path / "mnist"
    folder.mkdir()
    path = folder / "mnist.pkl.gz"
    digest = _fake_mnist(path)
    # Not the known file: refused, naming the fix.
    with pytest.raises(ValueError, match="make data"):
        data_readers.read_mnist_pickle(path)
    monkeypatch.setattr(data_readers, "MNIST_PICKLE_SHA256", digest)
    raw = data_readers.read_mnist_pickle(path)
    assert raw.x_train.shape == (30, 28, 28, 1) and raw.x_val.shape == (10, 28, 28, 1)
    assert raw.y_test.dtype == np.int32 and len(raw.y_test) == 20
    ds = data.load("mnist", data_dir=tmp_path)  # found under data_dir/mnist/
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (30, 10, 20)
    assert ds.input_shape == (28, 28, 1)
    # A pickle that would call anything but numpy's array builders is refused.
    bad = folder / "evil.pkl.gz"
    monkeypatch.setattr(data_readers, "MNIST_PICKLE_SHA256",
                        _fake_mnist(bad, payload=(dataclasses.replace,)))
    with pytest.raises(pickle.UnpicklingError, match="not a numpy array part"):
        data_readers.read_mnist_pickle(bad)


def test_a_recipe_batch_larger_than_the_data_is_refused_naming_recipes():
    cfg = search.SearchConfig(datasets="synthetic", archs="mlp-s", holdout="",
                              train_size=200, recipes=("adam:1e-3:constant:5:512",))
    with pytest.raises(ValueError, match="a --recipes batch size 512 is larger"):
        search.TaskPool(cfg, mesh=None)


def test_training_set_sizes_are_drawn_after_the_rest_and_only_when_given():
    noises = tasks.parse_noise_ranges(("symmetric:0.2-0.8",))
    archs = {"synthetic": ["mlp"], "mnist1d": ["mlp", "mlp-s"]}
    recipes = (tasks.parse_recipe("adam:1e-3:constant:10:32"),
               tasks.parse_recipe("sgd:0.1:cosine:20:64"))
    args = (16, ("synthetic", "mnist1d"), archs, noises, False, recipes)
    plain = tasks.sample_tasks(np.random.default_rng(5), *args)
    one = tasks.sample_tasks(np.random.default_rng(5), *args, (0,))
    assert plain == one
    sized = tasks.sample_tasks(np.random.default_rng(5), *args, (100, 400))
    assert {t.train_size for t in sized} == {100, 400}
    first = lambda t: (t.dataset, t.arch, t.noise, t.recipe)  # noqa: E731
    assert first(sized[0]) == first(plain[0])


@pytest.mark.parametrize("text,message", [
    ("100,x", "not a list of integers"),
    ("100,100", "distinct sizes >= 1"),
    ("0,200", "distinct sizes >= 1"),
    ("500", "two or more .* one size is --train-size"),
])
def test_bad_training_set_sizes_are_refused(text, message):
    with pytest.raises(ValueError, match=f"--train-sizes: .*{message}"):
        search.SearchConfig(train_sizes=text).validate()
    with pytest.raises(ValueError, match="--train-size and --train-sizes: give one"):
        search.SearchConfig(train_size=300, train_sizes="100,200").validate()


def test_every_training_set_size_is_validated_on_the_same_examples():
    cfg = search.SearchConfig(datasets="digits", archs="mlp-s", holdout="",
                              batch_size=32, val_size=200, train_sizes="100,5000")
    pool = search.TaskPool(cfg, mesh=None)
    small, full = pool.clean("digits", train_size=100), pool.clean("digits")
    assert len(small.y_train) == 100 and len(full.y_train) > 1000
    np.testing.assert_array_equal(small.x_val, full.x_val)
    np.testing.assert_array_equal(small.x_train, full.x_train[:100])  # nested
    # A drawn size above the data's is recorded as the size trained on.
    drawn = pool.sample(np.random.default_rng(0), 12)
    assert {t.train_size for t in drawn} == {100, len(full.y_train)}


def test_a_batch_larger_than_the_smallest_training_set_is_refused():
    cfg = search.SearchConfig(datasets="synthetic", archs="mlp-s", holdout="",
                              batch_size=64, train_sizes="32,500")
    with pytest.raises(ValueError, match="larger than the 32 training examples.*"
                                         "raise --train-sizes"):
        search.TaskPool(cfg, mesh=None)


@pytest.mark.slow
def test_search_trains_each_task_on_its_drawn_training_set(tmp_path, monkeypatch):
    seen = []
    real = search.parallel.make_sharded_evaluate

    def spy(icfg, mesh):
        fn = real(icfg, mesh)
        return lambda p, k, d: seen.append(d.x_train.shape[0]) or fn(p, k, d)

    monkeypatch.setattr(search.parallel, "make_sharded_evaluate", spy)
    out = tmp_path / "run"
    argv = ["--pop", "4", "--generations", "1", "--datasets", "synthetic",
            "--archs", "mlp-s", "--noise", "symmetric:0.4", "--tasks", "6",
            "--steps", "4", "--batch-size", "16", "--train-sizes", "64,256",
            "--val-size", "64", "--select-tasks", "0", "--holdout", "",
            "--seed", "2", "--out", str(out)]
    meta_search.main(argv)
    record = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    sizes = [t["train_size"] for t in record["tasks"]]
    assert set(sizes) == {64, 256} and seen == sizes
    cfg = meta_search.resolve_config(argv[:-2] + ["--out", str(tmp_path / "x")])
    assert meta_search.search_identity(cfg)["train_sizes"] == "64,256"
    plain = dataclasses.replace(cfg, train_sizes="")
    assert "train_sizes" not in meta_search.search_identity(plain)
