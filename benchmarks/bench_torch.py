"""A PyTorch reference of one inner run, for the throughput benchmark.

`TorchRun` trains the same network as `arl_jax.inner.make_inner_train` does: the
same initial weights (copied from the Flax initialisation drawn with the same key,
so lecun-normal kernels and zero biases), the same batch order (the JAX run's
`inner.batch_indices`), Adam with optax's hyper-parameters (b1 0.9, b2 0.999,
eps 1e-8), the same learning-rate schedule, the same Taylor loss and the same
divergence guard (a step whose loss is non-finite or above ``max_loss`` in
magnitude, or whose gradient norm is non-finite, is skipped and marks the run
diverged). It is the "one candidate at a time" style of the original ARL and
TaylorGLO code, written as a PyTorch user would: ``nn.Module`` layers and
``torch.optim.Adam``.

Three ways to run it:
- `TorchRun.train`: eager PyTorch (``compiled=False``) or the same step under
  ``torch.compile`` (``compiled=True``);
- `TorchRun.train_vmap`: a whole population at once with ``torch.func.vmap`` of
  ``grad_and_value(functional_call(...))`` over stacked parameters and a
  vectorised Adam.

torch is an optional dependency (the ``bench`` extra, ``torch==2.13.0``, the CPU
build); this module imports it lazily, so ``import benchmarks.bench_torch`` works
without it and `available` says whether it is there.
"""

from __future__ import annotations

import importlib.util
import math
import os
from typing import Any

import jax
import numpy as np

from arl_jax import inner
from arl_jax.models import build_model, get_arch

ADAM_B1, ADAM_B2, ADAM_EPS = 0.9, 0.999, 1e-8  # optax.adam's defaults


def available() -> bool:
    """Whether torch can be imported."""
    return importlib.util.find_spec("torch") is not None


def setup_torch(threads: int | None = None, device: str = "cpu") -> dict[str, Any]:
    """Flush denormals and use every core (a fair CPU baseline); return the set-up.

    Without flushing, the polynomial loss's backward pass hits denormal floats and
    eager PyTorch runs about 9x slower (docs/PERFORMANCE.md). On a CUDA ``device``
    float32 matrix products and convolutions may use TensorFloat-32, as XLA's
    default precision does on the same card, so both sides run the same arithmetic.
    """
    import torch

    flushed = torch.set_flush_denormal(True)
    torch.set_num_threads(threads or os.cpu_count() or 1)
    out = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "flush_denormal": bool(flushed),
        "device": device,
    }
    if device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        out["gpu"] = torch.cuda.get_device_name(torch.device(device))
        out["tf32"] = True
    return out


def default_device() -> str:
    """``"cuda"`` where JAX runs on a GPU and torch sees one, else ``"cpu"``: the
    PyTorch rows run on the same kind of device as the JAX rows."""
    import torch

    if jax.default_backend() == "gpu" and torch.cuda.is_available():
        return "cuda"
    return "cpu"


def check_supported(cfg: inner.InnerConfig) -> None:
    """Raise unless ``cfg`` is a setting the torch reference reproduces exactly."""
    arch = get_arch(cfg.arch)
    problems = []
    if arch.kind not in ("mlp", "cnn") or arch.norm != "none" or arch.dropout > 0:
        problems.append(f"arch {arch!r} (mlp or cnn, no norm, no dropout)")
    if cfg.loss != "taylor":
        problems.append(f"loss {cfg.loss!r} (taylor)")
    if cfg.optimizer != "adam" or cfg.weight_decay or cfg.grad_clip:
        problems.append("optimizer (adam, no weight decay, no clipping)")
    if cfg.schedule not in ("constant", "cosine"):
        problems.append(f"schedule {cfg.schedule!r} (constant or cosine)")
    if problems:
        raise ValueError("torch reference does not support: " + "; ".join(problems))


def learning_rate(cfg: inner.InnerConfig, steps: int, count: int) -> float:
    """optax's ``constant_schedule`` / ``cosine_decay_schedule(lr, steps)`` at
    ``count`` updates applied so far."""
    if cfg.schedule == "constant":
        return cfg.lr
    frac = min(count, steps) / steps
    return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * frac))


def taylor_loss(coeffs: Any, logits: Any, labels: Any) -> Any:
    """`arl_jax.losses.taylor_loss` in torch: ``sum_k theta_k (p_y - c)^k`` per
    example (Horner), ``coeffs = [c, theta_1..theta_K]``; float32."""
    import torch

    log_p = torch.log_softmax(logits.float(), dim=-1)
    log_py = log_p.gather(-1, labels[..., None])[..., 0]
    d = torch.exp(log_py) - coeffs[0]
    acc = torch.zeros_like(d)
    for k in range(coeffs.shape[0] - 1, 0, -1):
        acc = acc * d + coeffs[k]
    return acc * d


def _torch_model(arch: Any, flax_params: dict, input_shape: tuple[int, ...]) -> Any:
    """An ``nn.Module`` equal to the Flax model, holding copies of ``flax_params``.

    Dense kernels ``[in, out]`` become ``Linear`` weights ``[out, in]``; conv
    kernels ``[kh, kw, in, out]`` become ``Conv2d`` weights ``[out, in, kh, kw]``.
    The CNN works in NCHW and flattens in NHWC order, like the Flax model.
    """
    import torch
    from torch import nn

    p = jax.tree.map(np.asarray, flax_params)["params"]

    def linear(leaf):
        layer = nn.Linear(*leaf["kernel"].shape)
        layer.weight.data = torch.tensor(leaf["kernel"].T.copy())
        layer.bias.data = torch.tensor(leaf["bias"].copy())
        return layer

    def conv(leaf):
        kh, kw, cin, cout = leaf["kernel"].shape
        layer = nn.Conv2d(cin, cout, (kh, kw), padding=(kh // 2, kw // 2))
        layer.weight.data = torch.tensor(leaf["kernel"].transpose(3, 2, 0, 1).copy())
        layer.bias.data = torch.tensor(leaf["bias"].copy())
        return layer

    class ToNCHW(nn.Module):
        def forward(self, x):
            x = x[..., None] if x.ndim == 3 else x  # [B, H, W] -> [B, H, W, 1]
            return x.permute(0, 3, 1, 2)

    class FlattenNHWC(nn.Module):
        def forward(self, x):
            return x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)

    head = p["_DenseHead_0"]
    dense = [linear(head[f"Dense_{i}"]) for i in range(len(head))]
    layers: list[Any] = []
    if arch.kind == "mlp":
        layers.append(nn.Flatten())
    else:
        if len(input_shape) != 3 or any(k % 2 == 0 for k in (arch.kernel,)):
            raise ValueError("torch CNN reference needs (H, W, C) input, odd kernel")
        layers.append(ToNCHW())
        for i in range(len(arch.channels)):
            layers += [conv(p[f"Conv_{i}"]), nn.ReLU(), nn.MaxPool2d(2)]
        layers.append(FlattenNHWC())
    for layer in dense[:-1]:
        layers += [layer, nn.ReLU()]
    layers.append(dense[-1])
    return nn.Sequential(*layers)


class TorchRun:
    """The inner run of ``cfg`` on ``data`` with ``key``, in PyTorch.

    The initial weights and the batch order are those `inner.make_inner_train`
    draws from ``key`` (the same key split), so a candidate's torch run and JAX
    run start from the same point and see the same batches.
    """

    def __init__(
        self,
        cfg: inner.InnerConfig,
        data: inner.Data,
        key: jax.Array,
        device: str = "cpu",
    ):
        import torch

        check_supported(cfg)
        self.cfg = cfg
        self.device = torch.device(device)
        self.arch = get_arch(cfg.arch)
        n = data.x_train.shape[0]
        self.steps = cfg.num_steps(n)
        self.last = min(self.steps, n // cfg.batch_size)
        k_init, k_shuffle, _ = jax.random.split(key, 3)  # as in inner_train
        model = build_model(cfg.arch, cfg.num_classes)
        self.flax_params = model.init(k_init, data.x_train[:1])
        idx = inner.batch_indices(k_shuffle, n, cfg.batch_size, self.steps)
        idx = torch.from_numpy(np.asarray(idx, np.int64))  # [steps, B]
        self.idx = idx.to(self.device)
        self.input_shape = tuple(data.x_train.shape[1:])

        def t(a, dtype):
            return torch.from_numpy(np.array(a, dtype=dtype)).to(self.device)

        self.x_train = t(data.x_train, np.float32)
        self.y_train = t(data.y_train, np.int64)
        self.x_val, self.y_val = t(data.x_val, np.float32), t(data.y_val, np.int64)
        self.x_test, self.y_test = t(data.x_test, np.float32), t(data.y_test, np.int64)

    def model(self) -> Any:
        """A fresh ``nn.Module`` holding the initial weights."""
        model = _torch_model(self.arch, self.flax_params, self.input_shape)
        return model.to(self.device)

    def batch(self, t: int) -> tuple[Any, Any]:
        """Step ``t``'s training batch ``(x [B, ...], y [B])``."""
        i = self.idx[t]
        return self.x_train[i], self.y_train[i]

    def _metrics(self, predict, step_losses, diverged) -> dict[str, Any]:
        import torch

        with torch.no_grad():
            val = (predict(self.x_val).argmax(-1) == self.y_val).float().mean()
            test = (predict(self.x_test).argmax(-1) == self.y_test).float().mean()
        losses = torch.stack(step_losses[-self.last :]) if step_losses else None
        zero = torch.tensor(0.0, device=self.device)
        train_loss = losses.mean() if losses is not None else zero
        diverged = torch.as_tensor(diverged, device=self.device)
        return {
            "val_acc": torch.where(diverged, 0.0, val).cpu().numpy(),
            "test_acc": torch.where(diverged, 0.0, test).cpu().numpy(),
            "train_loss": torch.where(diverged, torch.inf, train_loss).cpu().numpy(),
            "diverged": diverged.cpu().numpy(),
        }

    def train(self, coeffs: Any, compiled: bool = False) -> dict[str, Any]:
        """Train one candidate (``coeffs [P]``); return the `inner.Metrics` fields
        as numpy scalars. ``compiled`` runs the forward and backward pass under
        ``torch.compile`` (the optimiser stays eager)."""
        import torch

        coeffs = torch.as_tensor(np.asarray(coeffs, np.float32), device=self.device)
        model = self.model()
        params = list(model.parameters())
        opt = torch.optim.Adam(
            params, lr=self.cfg.lr, betas=(ADAM_B1, ADAM_B2), eps=ADAM_EPS
        )

        def loss_fn(x, y, c):
            return taylor_loss(c, model(x), y).mean()

        if compiled:
            loss_fn = torch.compile(loss_fn, dynamic=False)
        step_losses, diverged, count = [], False, 0
        for t in range(self.steps):
            x, y = self.batch(t)
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(x, y, coeffs)
            loss.backward()
            gnorm = torch.linalg.vector_norm(
                torch.stack([torch.linalg.vector_norm(p.grad) for p in params])
            )
            loss_val = float(loss.detach())
            ok = math.isfinite(loss_val) and abs(loss_val) <= self.cfg.max_loss
            ok = ok and math.isfinite(float(gnorm)) and not diverged
            if ok:
                for group in opt.param_groups:
                    group["lr"] = learning_rate(self.cfg, self.steps, count)
                opt.step()
                count += 1
            diverged = diverged or not ok
            step_losses.append(loss.detach())
        model.eval()
        return self._metrics(model, step_losses, diverged)

    def train_vmap(self, pop_coeffs: Any) -> dict[str, Any]:
        """Train a population (``pop_coeffs [pop, P]``) at once: ``torch.func.vmap``
        of ``grad_and_value`` over stacked parameters, Adam vectorised by hand,
        one divergence flag per candidate. Returns the metrics with leaves [pop]."""
        import torch
        from torch.func import functional_call, grad_and_value, vmap

        dev = self.device
        coeffs = torch.as_tensor(np.asarray(pop_coeffs, np.float32), device=dev)
        pop = coeffs.shape[0]
        model = self.model()
        names = [n for n, _ in model.named_parameters()]
        params = {
            n: p.detach().expand(pop, *p.shape).clone()
            for n, p in model.named_parameters()
        }  # each [pop, ...]
        mu = {n: torch.zeros_like(p) for n, p in params.items()}
        nu = {n: torch.zeros_like(p) for n, p in params.items()}

        def loss_of(p, c, x, y):
            return taylor_loss(c, functional_call(model, p, (x,)), y).mean()

        grad_fn = vmap(grad_and_value(loss_of), in_dims=(0, 0, None, None))
        count = torch.zeros(pop, device=dev)  # updates applied so far, per candidate
        diverged = torch.zeros(pop, dtype=torch.bool, device=dev)
        step_losses = []
        for t in range(self.steps):
            x, y = self.batch(t)
            grads, loss = grad_fn(params, coeffs, x, y)  # leaves [pop, ...], [pop]
            sq = sum(g.flatten(1).pow(2).sum(1) for g in grads.values())
            ok = torch.isfinite(loss) & (loss.abs() <= self.cfg.max_loss)
            ok = ok & torch.isfinite(sq.sqrt()) & ~diverged  # [pop]
            c1 = count + 1
            if self.cfg.schedule == "constant":
                lr = torch.full((pop,), self.cfg.lr, device=dev)
            else:  # cosine_decay_schedule at each candidate's own count
                frac = count.clamp(max=self.steps) / self.steps
                lr = self.cfg.lr * 0.5 * (1 + torch.cos(math.pi * frac))
            scale = lr / (1 - ADAM_B1**c1)  # [pop]
            corr2 = (1 - ADAM_B2**c1).sqrt()
            for n in names:
                g = grads[n]
                shape = (pop,) + (1,) * (g.ndim - 1)
                okb = ok.view(shape)
                m = torch.where(okb, ADAM_B1 * mu[n] + (1 - ADAM_B1) * g, mu[n])
                v = torch.where(okb, ADAM_B2 * nu[n] + (1 - ADAM_B2) * g * g, nu[n])
                denom = v.sqrt() / corr2.view(shape) + ADAM_EPS
                new = params[n] - scale.view(shape) * m / denom
                params[n] = torch.where(okb, new, params[n])
                mu[n], nu[n] = m, v
            count = count + ok.float()
            diverged = diverged | ~ok
            step_losses.append(loss.detach())

        out = {"val_acc": [], "test_acc": [], "train_loss": [], "diverged": []}
        for i in range(pop):
            p_i = {n: params[n][i] for n in names}
            losses_i = [s[i] for s in step_losses]

            def predict(x, p_i=p_i):
                return functional_call(model, p_i, (x,))

            m = self._metrics(predict, losses_i, bool(diverged[i]))
            for k in out:
                out[k].append(m[k])
        return {k: np.stack(v) for k, v in out.items()}


def one_step_reference(
    cfg: inner.InnerConfig, data: inner.Data, key: jax.Array, coeffs: Any
) -> dict[str, np.ndarray]:
    """Loss and gradients of step 0 in torch, as numpy arrays in Flax's layout
    (``loss``, and ``"<module>/<param>"`` keys such as ``"Dense_1/kernel"``), to
    compare with the JAX run on the same weights and batch."""
    import torch

    run = TorchRun(cfg, data, key)
    model = run.model()
    x, y = run.batch(0)
    c = torch.as_tensor(np.asarray(coeffs, np.float32))
    loss = taylor_loss(c, model(x), y).mean()
    loss.backward()
    out = {"loss": loss.detach().numpy()}
    convs = [m for m in model if isinstance(m, torch.nn.Conv2d)]
    dense = [m for m in model if isinstance(m, torch.nn.Linear)]
    for i, m in enumerate(convs):
        out[f"Conv_{i}/kernel"] = m.weight.grad.numpy().transpose(2, 3, 1, 0)
        out[f"Conv_{i}/bias"] = m.bias.grad.numpy()
    for i, m in enumerate(dense):
        out[f"Dense_{i}/kernel"] = m.weight.grad.numpy().T
        out[f"Dense_{i}/bias"] = m.bias.grad.numpy()
    return out
