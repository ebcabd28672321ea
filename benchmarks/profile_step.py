"""Where a training step's time goes: the engine's run and four cut-down variants of
its step (data gather only, forward, forward + backward with plain SGD, forward +
backward + Adam), for a group of G candidates of the benchmark's MLP (MNIST-1D, 200
steps) or CNN (Fashion-MNIST, 50 steps; "engine" includes its evaluation of 4,000
images).

    python -m benchmarks.profile_step 8         # ms per candidate and step, best of 3
    python -m benchmarks.profile_step 8 cnn
"""
# ruff: noqa: E401, E701, E702, E731, E501, E741
import sys
import time

import jax
import jax.numpy as jnp
import optax

from arl_jax import inner
from benchmarks import bench

G = int(sys.argv[1]) if len(sys.argv) > 1 else 8
case = {"mlp": bench.Case("mlp", "mlp", "mnist1d", 200, (G,)),
        "cnn": bench.Case("cnn", "cnn", "fashion_mnist", 50, (G,))}[sys.argv[2] if len(sys.argv) > 2 else "mlp"]
cfg = bench.inner_config(case); S = case.steps
d, _ = bench.load_case_data(case, False)
pp = jnp.asarray(bench.population(G)); key = jax.random.key(0)
model = inner.build_model(cfg.arch, 10); loss_fn = inner.make_loss(cfg)
tx = inner.build_optimizer(cfg, S)
idx = inner.batch_indices(key, d.x_train.shape[0], 128, S)
p0 = model.init(key, d.x_train[:1])
def make(kind):
    def one(lp):
        def step(state, b):
            params, opt = state
            x, y = d.x_train[b], d.y_train[b]
            if kind == "gather":
                return (jax.tree.map(lambda p: p + 1e-6 * x.mean(), params), opt), 0.0
            if kind == "forward":
                out = model.apply(params, x); l = loss_fn(lp, out, y)
                return (jax.tree.map(lambda p: p * (1 + 1e-9 * l), params), opt), l
            l, g = jax.value_and_grad(lambda p: loss_fn(lp, model.apply(p, x), y))(params)
            if kind == "sgd":
                return (jax.tree.map(lambda p, g: p - 1e-3 * g, params, g), opt), l
            u, opt = tx.update(g, opt, params)
            return (optax.apply_updates(params, u), opt), l
        (p, _), ls = jax.lax.scan(step, (p0, tx.init(p0)), idx)
        return ls.sum() + sum(jnp.sum(v) for v in jax.tree.leaves(p))
    return jax.jit(jax.vmap(one))
full = jax.jit(jax.vmap(inner.make_inner_train(cfg), in_axes=(0, None, None)))
fns = {"engine": lambda: full(pp, key, d)}
for k in ["gather", "forward", "sgd", "adam"]:
    f = make(k); fns[k] = (lambda f=f: f(pp))
for name, f in fns.items():
    jax.block_until_ready(f()); ts = []
    for _ in range(3):
        t0 = time.perf_counter(); jax.block_until_ready(f()); ts.append(time.perf_counter() - t0)
    print(f"{case.name} G={G} {name}: {1e3*min(ts)/G/S:.3f} ms/cand/step", flush=True)
