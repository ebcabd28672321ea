"""Nothing lost, nothing mixed: bad input refused before anything compiles, one
owner per run folder, checkpoints checked against their run, files always valid."""

import json
import math
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from arl_jax import io, noise, search
from arl_jax.commands import meta_search, meta_test

TINY = ["--pop", "4", "--generations", "2", "--tasks", "1", "--datasets", "synthetic",
        "--steps", "10", "--train-size", "200", "--val-size", "100",
        "--select-tasks", "1", "--holdout", ""]


def _refused(main, argv, capsys) -> str:
    """`main(argv)` exits with an error; the one message it printed."""
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code not in (0, None)
    err = capsys.readouterr().err + str(info.value.code)
    assert "Traceback" not in err
    return err


# ------------------------------------------------------------ refused up front


@pytest.mark.parametrize(("extra", "match"), [
    (["--holdout", "fashion_mnist", "--holdout-steps", "0"], "--holdout-steps"),
    (["--holdout", "synthetic", "--holdout-noise", "asymmetric:0.2"],
     "no asymmetric mapping"),
    (["--holdout", "synthetic", "--holdout-noise", "symmetric:0.2-0.4"],
     "fixed rate"),
    (["--sigma", "1e39"], "--sigma"),
    (["--init", "1e39,1,1,1,1,1"], "--init"),
    (["--init", "nan,1,1,1,1,1"], "finite"),
    (["--init", "1,1"], "needs 6 numbers (got 2)"),
    (["--datasets", "npz:/nonexistent.npz"], "no such file"),
    (["--noise", "symmetric:2e-1,zz"], "not a rate"),
])
def test_search_refuses_settings_before_anything_runs(tmp_path, capsys, extra, match):
    out = tmp_path / "s"
    err = _refused(meta_search.main, [*TINY, *extra, "--out", str(out)], capsys)
    assert match in err
    assert not (out / "config.json").exists()


@pytest.mark.parametrize(("extra", "match"), [
    (["--archs", "lenet"], "accepts dataset 'synthetic'"),
    (["--batch-size", "512"], "--batch-size 512 is larger than the 200"),
])
def test_search_refuses_what_the_data_cannot_take_before_compiling(
        tmp_path, capsys, extra, match):
    out = tmp_path / "s"
    assert match in _refused(meta_search.main, [*TINY, *extra, "--out", str(out)],
                             capsys)
    assert not (out / io.CHECKPOINT).exists()
    io.release_folder(str(out))


def test_a_rate_written_with_an_exponent_is_a_rate():
    cfg = search.SearchConfig(noise=("symmetric:2e-1",), holdout="")
    cfg.validate()


@pytest.mark.parametrize(("extra", "match"), [
    (["--lr", "inf"], "--lr"),
    (["--train-size", "-5"], "--train-size"),
    (["--losses", "gce", "gce"], "given twice"),
    (["--noise", "symmetric:0.2-0.6"], "is a range"),
    (["--archs", "lenet"], "accepts synthetic's input"),
    (["--train-size", "100", "--batch-size", "128"], "--batch-size 128 is larger"),
])
def test_meta_test_refuses_bad_settings(tmp_path, capsys, extra, match):
    argv = ["--dataset", "synthetic", "--archs", "mlp", "--steps", "5",
            "--out", str(tmp_path / "mt"), *extra]
    assert match in _refused(meta_test.main, argv, capsys)
    assert not (tmp_path / "mt" / "runs.csv").exists()


# --------------------------------------------------------------- one owner


def test_a_folder_has_one_owner(tmp_path):
    folder = str(tmp_path / "run")
    io.claim_folder(folder, "meta_search", "me")
    io.claim_folder(folder, "meta_search", "me")  # the same process: fine
    with pytest.raises(ValueError, match="holds a meta_search run"):
        io.claim_folder(folder, "meta_test", "other")
    io.release_folder(folder)
    assert not os.path.exists(os.path.join(folder, io.LOCK))
    # A live process of this machine holds it: refused, naming the process.
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock = {"pid": sleeper.pid, "host": os.uname().nodename, "command": "arl-x"}
        with open(os.path.join(folder, io.LOCK), "w") as fh:
            json.dump(lock, fh)
        with pytest.raises(ValueError, match=f"in use by process {sleeper.pid}"):
            io.claim_folder(folder, "meta_search", "me")
    finally:
        sleeper.kill()
        sleeper.wait()
    # Its process is gone (SIGKILL): the stale lock is taken over.
    io.claim_folder(folder, "meta_search", "me")
    with open(os.path.join(folder, io.LOCK)) as fh:
        assert json.load(fh)["pid"] == os.getpid()
    io.release_folder(folder)
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        io.claim_folder(str(afile), "meta_test", "me")


def test_meta_test_into_a_search_folder_is_refused(tmp_path, capsys):
    out = tmp_path / "s"
    out.mkdir()
    (out / "metrics.jsonl").write_text("{}\n")  # a search's folder
    config = '{"pop": 4}\n'
    (out / "config.json").write_text(config)
    argv = ["--dataset", "synthetic", "--archs", "mlp", "--out", str(out)]
    assert "holds a meta_search run" in _refused(meta_test.main, argv, capsys)
    assert (out / "config.json").read_text() == config  # untouched


@pytest.mark.slow
def test_two_learned_losses_in_folders_of_the_same_name_get_two_rows(tmp_path):
    paths = []
    for parent, a in (("A", 0.5), ("B", 2.0)):
        folder = tmp_path / parent / "search"
        folder.mkdir(parents=True)
        (folder / "best_loss.json").write_text(json.dumps(
            {"family": "taylor_nce", "coeffs": [a, 1.0, -1.0, 0.2]}))
        paths.append(str(folder / "best_loss.json"))
    out = tmp_path / "mt"
    rows = meta_test.main([
        "--dataset", "synthetic", "--noise", "symmetric:0.2", "--archs", "mlp",
        "--losses", "none", "--loss-file", *paths, "--seeds", "1", "--steps", "5",
        "--out", str(out)])
    names = sorted({r["loss"] for r in rows})
    assert len(names) == 2 and all(n.startswith("arl[") for n in names)
    learned = json.loads((out / "config.json").read_text())["learned_losses"]
    assert sorted(v["coeffs"][0] for v in learned.values()) == [0.5, 2.0]
    io.release_folder(str(out))


# ------------------------------------------------------------- checkpoints


def _state():
    cfg = search.SearchConfig(pop=4, holdout="")
    es, params = search.make_strategy(cfg)
    return search.init_es_state(cfg, es, params, jax.random.key(0))


def test_checkpoints_refuse_corruption_truncation_and_another_state(tmp_path):
    state = _state()
    path = io.save_checkpoint(str(tmp_path), state, {"history": [1, 2]})
    loaded, record = io.load_checkpoint(str(tmp_path), state)
    assert record == {"history": [1, 2]}
    for a, b in zip(jax.tree.leaves(loaded), jax.tree.leaves(state), strict=True):
        np.testing.assert_array_equal(a, b)
    data = bytearray(open(path, "rb").read())
    good = bytes(data)
    # One flipped bit inside an array's values: the checksum (or the zip's CRC)
    # sees it.
    i = data.find(np.asarray(state.mean).tobytes())
    assert i > 0
    data[i + 1] ^= 0x01
    open(path, "wb").write(bytes(data))
    with pytest.raises(ValueError, match="corrupted|unreadable"):
        io.load_checkpoint(str(tmp_path), state)
    open(path, "wb").write(good[: len(good) // 2])  # truncated
    with pytest.raises(ValueError, match="unreadable or truncated"):
        io.load_checkpoint(str(tmp_path), state)
    open(path, "wb").write(good)
    other = search.SearchConfig(pop=4, family="taylor", holdout="")
    es, params = search.make_strategy(other)
    with pytest.raises(ValueError, match="another search state"):
        io.load_checkpoint(str(tmp_path), search.init_es_state(
            other, es, params, jax.random.key(0)))


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path,
                                                                   monkeypatch):
    state = _state()
    io.save_checkpoint(str(tmp_path), state, {"history": [1]})

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", full_disk)
    with pytest.raises(OSError):
        io.save_checkpoint(str(tmp_path), state, {"history": [1, 2]})
    assert sorted(os.listdir(tmp_path)) == [io.CHECKPOINT]
    assert io.load_checkpoint(str(tmp_path), state)[1] == {"history": [1]}


def test_json_files_are_always_valid(tmp_path):
    path = tmp_path / "x.json"
    io.atomic_write_json(str(path), {"a": float("nan"), "b": [math.inf, 1.0]})
    assert json.loads(path.read_text(), parse_constant=lambda c: 1 / 0) == {
        "a": None, "b": [None, 1.0]}


# ------------------------------------------------------------- a whole search


@pytest.mark.slow
def test_resume_refuses_other_settings_and_fewer_generations(tmp_path, capsys):
    out = str(tmp_path / "s")
    meta_search.main([*TINY, "--out", out])
    io.release_folder(out)
    best = json.loads((tmp_path / "s" / "best_loss.json").read_text())
    err = _refused(meta_search.main, ["--resume", out, "--pop", "16"], capsys)
    assert "--pop: 4 -> 16" in err
    err = _refused(meta_search.main, [*TINY[:2], "--generations", "1", *TINY[4:],
                                      "--out", out], capsys)
    assert "--generations must be at least 2" in err
    assert json.loads((tmp_path / "s" / "best_loss.json").read_text()) == best
    # A corrupted checkpoint is refused, never silently restarted.
    (tmp_path / "s" / io.CHECKPOINT).write_bytes(b"garbage")
    err = _refused(meta_search.main, ["--resume", out], capsys)
    assert "unreadable or truncated" in err
    # Its config.json unreadable: said plainly, without recommending --resume.
    (tmp_path / "s" / "config.json").write_text("{")
    err = _refused(meta_search.main, [*TINY, "--out", out], capsys)
    assert "no readable" in err and "--resume" not in err.split("no readable")[1]


@pytest.mark.slow
def test_a_search_where_everything_diverges_says_so(tmp_path, capsys):
    out = tmp_path / "s"
    meta_search.main([*TINY, "--lr", "1e30", "--out", str(out)])
    io.release_folder(str(out))
    records = [json.loads(line) for line in
               (out / "metrics.jsonl").read_text().splitlines()]
    assert all(r["all_diverged"] for r in records)
    text = capsys.readouterr()
    assert "every candidate diverged" in text.out + text.err
    json.loads((out / "best_loss.json").read_text())  # strict JSON


# ------------------------------------------------------------------ noise


def test_asymmetric_noise_checks_its_mapping_and_takes_a_matrix():
    y = np.arange(10).repeat(50)
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="names a class >= num_classes=10"):
        noise.asymmetric(key, y, 0.4, {0: 10}, num_classes=10)
    t = np.full((10, 10), 1 / 9)
    np.fill_diagonal(t, 0.0)
    out = np.asarray(noise.asymmetric(key, y, 0.4, t))
    assert 0.3 < np.mean(out != y) < 0.5 and out.max() < 10
    with pytest.raises(ValueError, match="rows that sum to 1") as info:
        noise.asymmetric(key, y, 0.4, np.ones((10, 10)))
    assert "1." not in str(info.value)  # the array is not printed
