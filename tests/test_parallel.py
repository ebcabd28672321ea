"""Tests for arl_jax.parallel on 4 simulated CPU devices (see conftest.py)."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from arl_jax import data, inner, parallel
from arl_jax.models import ArchConfig

CFG = inner.InnerConfig(
    arch=ArchConfig(kind="mlp", widths=(16,)),
    num_classes=3,
    loss="taylor",
    steps=10,
    batch_size=32,
    lr=3e-2,
)


@pytest.fixture(scope="module")
def mesh():
    assert jax.device_count() == 4, "conftest.py should simulate 4 CPU devices"
    return parallel.make_mesh()


@pytest.fixture(scope="module")
def tiny_data():
    ds = data.load("synthetic", num_train=200, num_test=100, dim=6, num_classes=3)
    return inner.Data.from_dataset(ds)


def population(n: int) -> jax.Array:
    """``n`` distinct order-3 Taylor losses around the series of -log p."""
    base = np.array([1.0, -1.0, 0.5, -1.0 / 3.0], np.float32)
    steps = np.linspace(-0.3, 0.3, n, dtype=np.float32)[:, None]
    return jnp.asarray(base + steps)  # [n, 4]


def test_mesh_has_a_pop_axis_over_all_devices(mesh):
    assert mesh.axis_names == ("pop",)
    assert mesh.devices.shape == (4,)
    assert parallel.make_mesh(jax.devices()[:2]).devices.size == 2


def test_pad_population_repeats_the_last_row():
    x = np.arange(12, dtype=np.float32).reshape(6, 2)
    padded, n = parallel.pad_population(x, 4)
    assert n == 6 and padded.shape == (8, 2)
    np.testing.assert_array_equal(padded[:6], x)
    np.testing.assert_array_equal(padded[6:], [x[-1], x[-1]])
    same, n = parallel.pad_population(jnp.asarray(x), 3)
    assert n == 6 and same.shape == (6, 2)
    tree, n = parallel.pad_population({"a": x, "b": x[:, 0]}, 4)
    assert tree["a"].shape == (8, 2) and tree["b"].shape == (8,) and n == 6
    with pytest.raises(ValueError):
        parallel.pad_population(np.zeros((0, 2)), 4)


def test_shard_and_replicate(mesh):
    x = parallel.shard_population(jnp.ones((8, 3)), mesh)
    assert isinstance(x.sharding, NamedSharding) and x.sharding.spec == P("pop")
    assert len(x.addressable_shards) == 4
    assert x.addressable_shards[0].data.shape == (2, 3)
    r = parallel.replicate({"w": jnp.ones((5,))}, mesh)
    assert r["w"].sharding.spec == P()
    assert r["w"].addressable_shards[0].data.shape == (5,)
    with pytest.raises(ValueError, match="pad it first"):
        parallel.shard_population(jnp.ones((6, 3)), mesh)


@pytest.mark.slow
def test_sharded_equals_unsharded_and_stays_sharded(mesh, tiny_data):
    pop = population(8)
    keys = jax.random.split(jax.random.key(0), 2)
    plain = inner.make_evaluate(CFG)(pop, keys, tiny_data)
    sharded_eval = parallel.make_sharded_evaluate(CFG, mesh)
    assert parallel.make_sharded_evaluate(CFG, mesh) is sharded_eval  # cached
    out = sharded_eval(pop, keys, parallel.replicate(tiny_data, mesh))
    for leaf in jax.tree.leaves(out):
        assert leaf.shape == (8, 2)
        assert isinstance(leaf.sharding, NamedSharding)
        assert leaf.sharding.spec == P("pop")
    fitness = -out.val_acc.mean(axis=1)  # [pop], what the search ranks
    assert fitness.sharding.spec in (P("pop"), P("pop", None))
    n_val = tiny_data.y_val.shape[0]
    np.testing.assert_allclose(out.val_acc, plain.val_acc, atol=1.01 / n_val)
    np.testing.assert_allclose(out.train_loss, plain.train_loss, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(out.diverged, plain.diverged)


@pytest.mark.slow
def test_population_of_6_on_4_devices(mesh, tiny_data):
    pop = population(6)
    keys = jax.random.split(jax.random.key(1), 2)
    out = parallel.make_sharded_evaluate(CFG, mesh)(pop, keys, tiny_data)
    assert out.val_acc.shape == (6, 2)
    plain = inner.make_evaluate(CFG)(pop, keys, tiny_data)
    n_val = tiny_data.y_val.shape[0]
    np.testing.assert_allclose(out.val_acc, plain.val_acc, atol=1.01 / n_val)
    np.testing.assert_allclose(out.train_loss, plain.train_loss, rtol=1e-4, atol=1e-5)
    host = parallel.to_host(out)
    assert isinstance(host.val_acc, np.ndarray) and host.val_acc.shape == (6, 2)


def test_one_process_starts_no_distributed_runtime(monkeypatch, capsys):
    # The multi-process flags are tested in test_distributed.py; without them
    # nothing starts and this process is the one that writes and logs.
    calls = []
    monkeypatch.setattr(jax.distributed, "initialize", lambda **kw: calls.append(kw))
    assert parallel.initialize_distributed() is False
    assert calls == []
    assert parallel.is_main_process()
    parallel.log("hello")
    assert capsys.readouterr().out == "hello\n"
    assert parallel.run_guarded(lambda x: x + 1, 1) == 2


@pytest.mark.slow
def test_grouped_population_stays_sharded_and_equal(mesh, tiny_data):
    # 16 candidates in groups of 8 (strided: 0, 2, 4, ...), 2 a device a group.
    pop = population(16)
    keys = jax.random.split(jax.random.key(2), 2)
    grouped = inner.batch_inner_train(inner.make_inner_train(CFG), pop_chunk=8)
    out = parallel.shard_evaluate(grouped, mesh)(pop, keys, tiny_data)
    assert out.val_acc.sharding.spec == P("pop")
    plain = jax.jit(inner.batch_inner_train(inner.make_inner_train(CFG)))
    want = plain(pop, keys, tiny_data)
    n_val = tiny_data.y_val.shape[0]
    np.testing.assert_allclose(out.val_acc, want.val_acc, atol=1.01 / n_val)
    np.testing.assert_allclose(out.train_loss, want.train_loss, rtol=1e-4, atol=1e-5)


def test_split_cpu_gives_a_device_a_core_before_jax_starts(monkeypatch):
    import subprocess
    import sys

    code = ("import os; from arl_jax import parallel; n = parallel.split_cpu({pop}); "
            "import jax; print(n, jax.device_count(), os.environ.get('XLA_FLAGS', ''))")
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS",
                                                          "JAX_PLATFORMS")}
    for pop in (64, 8):
        out = subprocess.run([sys.executable, "-c", code.format(pop=pop)], env=env,
                             capture_output=True, text=True, check=True).stdout.split()
        want = parallel.cpu_device_count(pop)
        assert want == max(1, min(len(os.sched_getaffinity(0)), pop // 8))
        if want >= 2:
            assert out[:2] == [str(want), str(want)]
            assert out[2] == f"{parallel.DEVICE_COUNT_FLAG}={want}"
        else:
            assert out[:2] == ["0", "1"]
    # A device count the user set wins; so does a JAX that has already started.
    env["XLA_FLAGS"] = f"{parallel.DEVICE_COUNT_FLAG}=1"
    out = subprocess.run([sys.executable, "-c", code.format(pop=64)], env=env,
                         capture_output=True, text=True, check=True).stdout.split()
    assert out[:2] == ["0", "1"]
    jax.devices()  # JAX has started in this process
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    assert parallel.split_cpu(64) == 0 and "XLA_FLAGS" not in os.environ
