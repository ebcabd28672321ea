"""Pop 64 of the benchmark's MLP run trained in groups of each size given
(``POP``, ``REP`` from the environment; default 64 and 2 timed calls).

    python -m benchmarks.group_sweep 4,8,16
"""
# ruff: noqa: E401, E701, E702, E501
import os
import sys
import time

import jax
import jax.numpy as jnp

from arl_jax import inner
from benchmarks import bench

case = bench.Case("mlp", "mlp", "mnist1d", 200, (64,))
cfg = bench.inner_config(case)
d, _ = bench.load_case_data(case, False)
pop = int(os.environ.get("POP", 64))
pp = jnp.asarray(bench.population(pop)); keys = jax.random.key(0)[None]
print("default chunk", inner.default_pop_chunk(cfg, d.x_train.shape[1:]), inner.candidate_bytes(cfg, d.x_train.shape[1:]))
for c in [int(v) for v in sys.argv[1].split(",")]:
    f = jax.jit(inner.batch_inner_train(inner.make_inner_train(cfg), c))
    t0 = time.perf_counter(); jax.block_until_ready(f(pp, keys, d)); first = time.perf_counter() - t0
    ts = []
    for _ in range(int(os.environ.get("REP", 2))):
        t0 = time.perf_counter(); jax.block_until_ready(f(pp, keys, d)); ts.append(time.perf_counter() - t0)
    print(f"chunk {c}: {1e3*min(ts)/pop:.1f} ms/cand  times {[round(t,2) for t in ts]} first {first:.1f}", flush=True)
