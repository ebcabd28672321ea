"""How `batch_fit` and `batch_confidence` move over a training run.

    python docs/runs/batch_stats/trace.py docs/runs/batch_stats/trace.json
    python docs/runs/batch_stats/trace.py OUT.json --arch lenet --steps 5000 \
        --loss nce_mae --rates 0.6,0.8

The MLP protocol of docs/RESULTS.md section 2 (Fashion-MNIST, 10,000 training
images, Adam 1e-3 with cosine decay, batch 128; 2,000 steps) trained with the
shipped loss (or another of `arl_jax.losses.LOSSES`, `--loss`) on clean labels and at
symmetric 0.6 and 0.8 (`--rates`); both statistics of the training batch are
recorded at a few steps. A record for sections 3 and 12, not part of the package.
"""

import argparse
import json

import jax
import jax.numpy as jnp
import numpy as np
import optax

from arl_jax import data, inner, losses, noise

N, BATCH = 10_000, 128


def trace(model, x, y, loss_fn, steps):
    record = {0, 10, 50, 100, 200, 500, 1000, 1500, 2000, 3000, 4000, steps - 1}
    tx = optax.adam(optax.cosine_decay_schedule(1e-3, steps))
    params = model.init(jax.random.key(0), x[:1])
    opt = tx.init(params)

    @jax.jit
    def step(params, opt, idx):
        xb, yb = x[idx], y[idx]

        def objective(p):
            logits = model.apply(p, xb)
            return jnp.mean(loss_fn(logits, yb)), logits

        (_, logits), grads = jax.value_and_grad(objective, has_aux=True)(params)
        updates, opt = tx.update(grads, opt, params)
        stats = losses.batch_fit(logits, yb), losses.batch_confidence(logits, yb)
        return optax.apply_updates(params, updates), opt, stats

    rng, rows = np.random.default_rng(0), []
    for t in range(steps):
        params, opt, (fit, conf) = step(params, opt, rng.integers(0, N, BATCH))
        if t in record:
            rows.append({"step": t, "batch_fit": round(float(fit), 3),
                         "batch_confidence": round(float(conf), 3)})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", help="JSON file written")
    ap.add_argument("--arch", default="mlp")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--loss", default="arl", help="a name in losses.LOSSES")
    ap.add_argument("--rates", default="0.0,0.6,0.8", help="symmetric noise rates")
    args = ap.parse_args()
    loss_fn = losses.get_loss(args.loss)
    ds = data.load("fashion_mnist")
    x = jnp.asarray(ds.x_train[:N], jnp.float32)
    clean = jnp.asarray(ds.y_train[:N])
    model = inner.build_model(args.arch, 10)
    out = {}
    for rate in map(float, args.rates.split(",")):
        y = clean if rate == 0 else noise.symmetric(jax.random.key(1), clean, rate, 10)
        out[f"symmetric:{rate}"] = trace(model, x, y, loss_fn, args.steps)
        print(rate, out[f"symmetric:{rate}"], flush=True)
    with open(args.out, "w") as fh:
        json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
