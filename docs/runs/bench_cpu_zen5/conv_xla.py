# python conv_xla.py CONV POP -> ms a candidate of the benchmark's CNN run (50 steps), CONV "patches" or "xla"; PYTHONPATH=. from the checkout
import sys, time, json, dataclasses
import jax, jax.numpy as jnp
from arl_jax import inner, models
from benchmarks import bench
conv, pop = sys.argv[1], int(sys.argv[2])
case = bench.Case("cnn", "cnn", "fashion_mnist", 50, (pop,))
cfg = dataclasses.replace(bench.inner_config(case), arch=dataclasses.replace(models.ARCHS["cnn"], conv=conv))
d, _ = bench.load_case_data(case, False)
pp = jnp.asarray(bench.population(pop)); keys = jax.random.key(0)[None]
f = inner.make_evaluate(cfg) if pop > 1 else jax.jit(inner.make_inner_train(cfg))
args = (pp, keys, d) if pop > 1 else (pp[0], jax.random.key(0), d)
t0 = time.perf_counter(); jax.block_until_ready(f(*args)); first = time.perf_counter() - t0
ts = []
for _ in range(2):
    t0 = time.perf_counter(); out = jax.block_until_ready(f(*args)); ts.append(time.perf_counter() - t0)
print(json.dumps({"conv": conv, "pop": pop, "ms_per_candidate": 1e3 * min(ts) / pop, "first_s": first,
                  "val_acc": float(jnp.mean(out.val_acc))}), flush=True)
