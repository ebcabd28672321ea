# The second convolution of the CNN alone, pop 8, inside a lax.scan of 20 steps:
# python docs/runs/bench_cpu_zen5/conv2_scan.py > docs/runs/bench_cpu_zen5/conv2_scan.log
import time, jax, jax.numpy as jnp
from arl_jax import models
P, B, S = 8, 128, 20
def t(name, body, init, n=3):
    f = jax.jit(lambda c: jax.lax.scan(lambda c, _: (body(c), None), c, None, length=S)[0])
    jax.block_until_ready(f(init)); ts = []
    for _ in range(n):
        t0 = time.perf_counter(); jax.block_until_ready(f(init)); ts.append(time.perf_counter() - t0)
    print(f"{name}: {1e3*min(ts)/P/S:.2f} ms per candidate-step", flush=True)
h = jax.random.normal(jax.random.key(2), (P, B, 14, 14, 16))
w2 = jax.random.normal(jax.random.key(3), (P, 400, 32)) * 0.05
# carry h; make the output feed back so nothing is hoisted
t("patches (summed back)", lambda h: h + 1e-3 * jax.vmap(lambda x: models._patches(x, (5, 5), (1, 1)))(h)[..., :16], h)
t("patches@w", lambda h: h + 1e-3 * jax.vmap(lambda x, w: models.matmul(models._patches(x, (5, 5), (1, 1)), w))(h, w2)[..., :16], h)
def fb(h):
    g = jax.vmap(jax.grad(lambda x, w: jnp.sum(jnp.tanh(models.matmul(models._patches(x, (5, 5), (1, 1)), w))), (0, 1)))(h, w2)
    return h + 1e-3 * g[0]
t("conv2 fwd+bwd", fb, h)
t("elementwise only", lambda h: jnp.tanh(h) * 0.99, h)
