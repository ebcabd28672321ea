"""The built wheel is the library alone, and works from outside the repository: its
console scripts run, `arl_loss` trains in Flax NNX and linen loops, `load_loss`
reads a search's best_loss.json, and shipping never writes into the package."""

import json
import os
import pathlib
import subprocess
import sys
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

SCRIPT = """
import json, sys
import flax.linen as nn
import jax, jax.numpy as jnp, optax
from flax import nnx
from arl_jax import losses

x = jax.random.normal(jax.random.key(0), (64, 10))
y = (x[:, 0] > 0).astype(jnp.int32) + 2 * (x[:, 1] > 0)

# Flax NNX
model = nnx.Linear(10, 4, rngs=nnx.Rngs(0))
opt = nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.Param)

@nnx.jit
def nnx_step(model, opt, x, y):
    loss, grads = nnx.value_and_grad(lambda m: losses.arl_objective(m(x), y))(model)
    opt.update(model, grads)
    return loss

first = nnx_step(model, opt, x, y)
for _ in range(30):
    last = nnx_step(model, opt, x, y)
assert last < first, (first, last)

# linen
net = nn.Dense(4)
params = net.init(jax.random.key(1), x)
tx = optax.adam(1e-2)
state = tx.init(params)

@jax.jit
def linen_step(params, state):
    loss, g = jax.value_and_grad(
        lambda p: losses.arl_loss(net.apply(p, x), y).mean())(params)
    updates, state = tx.update(g, state)
    return optax.apply_updates(params, updates), state, loss

params, state, first = linen_step(params, state)
for _ in range(30):
    params, state, last = linen_step(params, state)
assert last < first, (first, last)

fn = losses.load_loss(sys.argv[1])
print(json.dumps({"module": losses.__file__, "loaded": float(fn(x[:, :4], y).mean())}))
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "--no-build-isolation", "-w", str(tmp / "dist"), str(ROOT)],
                   check=True, cwd=tmp, timeout=300)
    wheel = next((tmp / "dist").glob("arl_jax-*.whl"))
    target = tmp / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--target", str(target), str(wheel)], check=True, timeout=300)
    env = {**os.environ, "PYTHONPATH": str(target)}
    env.pop("XLA_FLAGS", None)  # one device, as most users have
    return wheel, target, env, tmp


@pytest.mark.slow
def test_wheel_holds_the_library_only(installed):
    wheel = installed[0]
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert not {"experiments", "benchmarks", "tests"} & tops
    assert "arl_jax/pretrained/arl.json" in names
    assert not [n for n in names if "bench" in n]
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    scripts = zipfile.ZipFile(wheel).read(entry).decode()
    for name in ("arl-search", "arl-meta-test", "arl-ship", "arl-report"):
        assert name in scripts


@pytest.mark.slow
def test_installed_wheel_works_outside_the_repository(installed):
    _, target, env, tmp = installed
    cwd = tmp / "elsewhere"
    cwd.mkdir()
    best = cwd / "best_loss.json"
    best.write_text(json.dumps({"family": "taylor_nce", "coeffs": [1.0, 1.0, -1.0]}))
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(best)], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["module"].startswith(str(target))  # the wheel's copy, not the repo's
    for script in ("arl-search", "arl-meta-test", "arl-ship", "arl-report"):
        run = subprocess.run([str(target / "bin" / script), "--help"], cwd=cwd, env=env,
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0 and "usage:" in run.stdout, run.stderr[-1000:]
    # No experiments package comes with the install: a user's own is free.
    run = subprocess.run([sys.executable, "-c", "import experiments"], cwd=cwd,
                         env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode != 0
    # Shipping from an installed copy needs --dest and never touches the package.
    packaged = (target / "arl_jax" / "pretrained" / "arl.json").read_bytes()
    run = subprocess.run([str(target / "bin" / "arl-ship"), str(cwd)], cwd=cwd,
                         env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "--dest is required" in run.stderr
    assert (target / "arl_jax" / "pretrained" / "arl.json").read_bytes() == packaged
