"""What a loss lets the network fit over a run: test accuracy and memorisation.

    python docs/runs/curves/curve.py OUT.json --arch lenet --steps 5000 \
        --noise symmetric:0.8 --beta 1,5
    python docs/runs/curves/curve.py --plot OUT.png A.json B.json ...

The 5,000-step protocol of docs/RESULTS.md sections 4 and 10 (Fashion-MNIST, the
first 10,000 training images, Adam 1e-3 with cosine decay, batch 128), trained with
NCE + β (1 - p_y) (`taylor_nce`, coefficients [1, 1, -β, 0, 0, 0]) for each
`--beta`, or with the losses of `--loss-file`. At a few steps it records the clean
test accuracy and, on the training set, the fraction of the corrupted examples the
network predicts as their noisy label (memorised) or as their true label
(corrected), of the uncorrupted examples it predicts right, and the test accuracy
of each class. A scheduled family (`taylor_nce_sched`) is given the progress of the
run as the meta-test gives it. A record for
section 12, not part of the package. ``--plot`` draws the test accuracy and the
memorised fraction of every run of the JSON files given against the step.
"""

import argparse
import functools
import json

import jax
import jax.numpy as jnp
import numpy as np
import optax

from arl_jax import data, inner, losses, noise

N, BATCH = 10_000, 128


def predict(model, params, x, chunk=2000):
    return np.concatenate([
        np.asarray(jnp.argmax(model.apply(params, x[i:i + chunk]), -1))
        for i in range(0, len(x), chunk)])


def curve(model, x, y, clean, x_test, y_test, loss_fn, steps):
    record = sorted({250, 500, 1000, 1500, 2000, 2500, 3000, 4000, steps})
    # The meta-test's optimiser (Adam, lr 1e-3 decayed by a cosine over the run).
    tx = inner.build_optimizer(inner.InnerConfig(lr=1e-3), steps)
    params = model.init(jax.random.key(0), x[:1])
    opt = tx.init(params)

    @jax.jit
    def step(params, opt, idx, progress):
        xb, yb = x[idx], y[idx]
        grads = jax.grad(
            lambda p: jnp.mean(loss_fn(model.apply(p, xb), yb, progress)))(params)
        updates, opt = tx.update(grads, opt, params)
        return optax.apply_updates(params, updates), opt

    corrupted = np.asarray(y != clean)
    yn, yc = np.asarray(y), np.asarray(clean)
    rng, rows = np.random.default_rng(0), []
    for t in range(1, steps + 1):
        # A scheduled family reads the progress (the meta-test's step / (steps - 1));
        # the others ignore it.
        progress = jnp.float32((t - 1) / (steps - 1))
        params, opt = step(params, opt, rng.integers(0, N, BATCH), progress)
        if t in record:
            pred, test = predict(model, params, x), predict(model, params, x_test)
            def pct(hit):
                return round(100 * float(np.mean(hit)), 2)

            rows.append({
                "step": t, "test_acc": pct(test == y_test),
                "memorised": pct(pred[corrupted] == yn[corrupted]),
                "corrected": pct(pred[corrupted] == yc[corrupted]),
                "clean_fit": pct(pred[~corrupted] == yc[~corrupted]),
                "class_test_acc": [pct(test[y_test == c] == c) for c in range(10)],
            })
            print(rows[-1], flush=True)
    return rows


def plot(png: str, paths: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for path in paths:
        with open(path) as fh:
            rec = json.load(fh)
        for name, rows in rec["runs"].items():
            steps = [r["step"] for r in rows]
            label = f"{rec['arch']} {rec['noise']} {name}"
            for ax, key in zip(axes, ("test_acc", "memorised"), strict=True):
                ax.plot(steps, [r[key] for r in rows], marker="o", label=label)
    axes[0].set_ylabel("clean test accuracy (%)")
    axes[1].set_ylabel("corrupted training labels predicted (%)")
    for ax in axes:
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", help="JSON file written (the PNG with --plot)")
    ap.add_argument("--plot", nargs="+", default=None, metavar="JSON",
                    help="draw these curve files into OUT instead of training")
    ap.add_argument("--arch", default="mlp")
    ap.add_argument("--steps", type=int, default=5000)
    ap.add_argument("--noise", default="symmetric:0.8", help="KIND:RATE")
    ap.add_argument("--beta", default="1,5", help="betas of NCE + beta MAE")
    ap.add_argument("--loss-file", nargs="*", default=[], help="best_loss.json files")
    args = ap.parse_args()
    if args.plot:
        return plot(args.out, args.plot)
    kind, rate = args.noise.split(":")
    ds = data.load("fashion_mnist")
    x = jnp.asarray(ds.x_train[:N], jnp.float32)
    clean = jnp.asarray(ds.y_train[:N])
    x_test, y_test = jnp.asarray(ds.x_test, jnp.float32), np.asarray(ds.y_test)
    last = "fashion_mnist" if kind == "asymmetric" else 10
    y = getattr(noise, kind)(jax.random.key(1), clean, float(rate), last)
    model = inner.build_model(args.arch, 10)
    named = {f"beta{b}": ("taylor_nce", [1.0, 1.0, -float(b), 0.0, 0.0, 0.0])
             for b in args.beta.split(",") if b}
    for path in args.loss_file:
        with open(path) as fh:
            spec = json.load(fh)
        named[path] = (spec["family"], spec["coeffs"])
    out = {"arch": args.arch, "noise": args.noise, "steps": args.steps, "runs": {}}
    for name, (family, coeffs) in named.items():
        print(name, flush=True)
        params = jnp.asarray(coeffs, jnp.float32)
        loss_fn = functools.partial(losses.family_loss, family, params)
        out["runs"][name] = curve(model, x, y, clean, x_test, y_test, loss_fn,
                                  args.steps)
        with open(args.out, "w") as fh:
            json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
