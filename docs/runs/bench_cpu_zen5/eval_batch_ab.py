# The benchmark's run with evaluation in passes of EVAL (0: inner.eval_batch's pick),
# one timing in a fresh process; eval_batch_ab.sh alternates them.
#   PYTHONPATH=. python docs/runs/bench_cpu_zen5/eval_batch_ab.py CASE EVAL
import dataclasses
import json
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from arl_jax import inner
from benchmarks import bench

name, ebs = sys.argv[1], int(sys.argv[2])
case = {"mlp": bench.Case("mlp", "mlp", "mnist1d", 200, (64,)),
        "cnn": bench.Case("cnn", "cnn", "fashion_mnist", 50, (8,))}[name]
cfg = dataclasses.replace(bench.inner_config(case), eval_batch_size=ebs)
d, _ = bench.load_case_data(case, False)
pop = case.pops[0]
pp, keys = jnp.asarray(bench.population(pop)), jax.random.key(0)[None]
f = inner.make_evaluate(cfg)
jax.block_until_ready(f(pp, keys, d))
ts = []
for _ in range(2):
    t0 = time.perf_counter()
    out = jax.block_until_ready(f(pp, keys, d))
    ts.append(time.perf_counter() - t0)
acc = np.concatenate([np.asarray(out.val_acc).ravel(), np.asarray(out.test_acc).ravel()])
print(json.dumps({"case": name, "eval_batch": inner.eval_batch(cfg),
                  "ms_per_candidate": round(1e3 * min(ts) / pop, 1),
                  "accuracies_sha": __import__("hashlib").sha1(acc.tobytes()).hexdigest()[:12],
                  "train_loss_sha": __import__("hashlib").sha1(
                      np.asarray(out.train_loss).tobytes()).hexdigest()[:12]}), flush=True)
