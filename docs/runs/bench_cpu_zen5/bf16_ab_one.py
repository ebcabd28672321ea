# One timing in a fresh process (bf16_ab.sh): python bf16_ab_one.py CASE PRODUCTS
import sys, time, json, dataclasses
import jax, jax.numpy as jnp
from arl_jax import inner
from benchmarks import bench
name, products = sys.argv[1], sys.argv[2]
case = (bench.Case("mlp", "mlp", "mnist1d", 200, (64,), products) if name == "mlp"
        else bench.Case("cnn", "cnn", "fashion_mnist", 50, (8,), products))
cfg = bench.inner_config(case)
d, _ = bench.load_case_data(case, False)
pop = case.pops[0]
pp = jnp.asarray(bench.population(pop)); keys = jax.random.key(0)[None]
f = inner.make_evaluate(cfg)
jax.block_until_ready(f(pp, keys, d))
ts = []
for _ in range(2):
    t0 = time.perf_counter(); out = jax.block_until_ready(f(pp, keys, d)); ts.append(time.perf_counter() - t0)
print(json.dumps({"case": name, "products": products, "ms_per_candidate": 1e3 * min(ts) / pop,
                  "times": ts, "val_acc": float(out.val_acc.mean())}), flush=True)
