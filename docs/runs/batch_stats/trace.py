"""How `batch_fit` and `batch_confidence` move over a training run.

    python docs/runs/batch_stats/trace.py docs/runs/batch_stats/trace.json

The 2,000-step MLP protocol of docs/RESULTS.md section 2 (Fashion-MNIST, 10,000
training images, Adam 1e-3 with cosine decay, batch 128) trained with the shipped
loss on clean labels and at symmetric 0.6 and 0.8; both statistics of the training
batch are recorded at a few steps. A record for section 3, not part of the package.
"""

import json
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax

from arl_jax import data, inner, losses, noise

STEPS, N, BATCH = 2000, 10_000, 128
RECORD = (0, 10, 50, 100, 200, 500, 1000, 1500, 1999)


def trace(model, x, y):
    tx = optax.adam(optax.cosine_decay_schedule(1e-3, STEPS))
    params = model.init(jax.random.key(0), x[:1])
    opt = tx.init(params)

    @jax.jit
    def step(params, opt, idx):
        xb, yb = x[idx], y[idx]

        def objective(p):
            logits = model.apply(p, xb)
            return jnp.mean(losses.arl_loss(logits, yb)), logits

        (_, logits), grads = jax.value_and_grad(objective, has_aux=True)(params)
        updates, opt = tx.update(grads, opt, params)
        stats = losses.batch_fit(logits, yb), losses.batch_confidence(logits, yb)
        return optax.apply_updates(params, updates), opt, stats

    rng, rows = np.random.default_rng(0), []
    for t in range(STEPS):
        params, opt, (fit, conf) = step(params, opt, rng.integers(0, N, BATCH))
        if t in RECORD:
            rows.append({"step": t, "batch_fit": round(float(fit), 3),
                         "batch_confidence": round(float(conf), 3)})
    return rows


def main(path: str) -> None:
    ds = data.load("fashion_mnist")
    x = jnp.asarray(ds.x_train[:N].reshape(N, -1), jnp.float32)
    clean = jnp.asarray(ds.y_train[:N])
    model = inner.build_model("mlp", 10)
    out = {}
    for rate in (0.0, 0.6, 0.8):
        y = clean if rate == 0 else noise.symmetric(jax.random.key(1), clean, rate, 10)
        out[f"symmetric:{rate}"] = trace(model, x, y)
        print(rate, out[f"symmetric:{rate}"], flush=True)
    with open(path, "w") as fh:
        json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main(sys.argv[1])
