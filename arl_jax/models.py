"""Flax modules for the architectures the search randomises over.

Every model maps a batch of examples ``x [B, *input_shape]`` to logits
``[B, num_classes]`` (float32) and is built from a small frozen `ArchConfig`:

- ``mlp``: flatten, then ``len(widths)`` Dense-ReLU(-Dropout) layers, then Dense.
- ``cnn``: LeNet-style 2D net, conv-ReLU-maxpool per entry of ``channels``, then
  the ``widths`` dense head; needs ``(H, W, C)`` input with ``H, W >= 8``.
- ``cnn1d``: the same on sequences (MNIST-1D); ``(L,)`` input is read as ``(L, 1)``.
- ``resnet``: a small pre-activation-free ResNet (He et al. 2016, CIFAR variant):
  a 3x3 stem, one stage of ``blocks`` basic blocks per entry of ``channels`` (stride
  2 from the second stage), global average pooling, Dense. ``channels=(16, 32, 64)``
  with one block a stage is ResNet-8.

Normalisation: the ResNet uses GroupNorm (Wu & He 2018), not BatchNorm. BatchNorm
keeps running statistics, a mutable ``batch_stats`` collection that would have to be
threaded through the pure inner loop's ``lax.scan`` carry with a train/eval switch,
and its batch statistics couple the examples of a batch; GroupNorm is stateless, so
``params`` is the whole model state and one candidate's run stays one pure function.

Convolutions: XLA:CPU runs the backward pass of a convolution 10-15x slower inside
a while loop (the inner run's ``lax.scan``) than outside one (jax-ml/jax#12868: in a
loop body layout assignment leaves the transposed kernel in an "01oi" layout that
misses the fast Eigen path; measured here, LeNet's 2nd conv input gradient 390 ms in
a scan against 9 ms alone). `Conv` therefore computes the same convolution as
patches @ kernel (im2col: strided slices, a concatenation and one matmul), whose
gradients are matmuls and pads only; it is the default on CPU (``conv="auto"``).
Elsewhere (GPU, TPU) "auto" uses ``lax.conv_general_dilated`` (cuDNN). Both share
``nn.Conv``'s parameters and initialisation, so they are interchangeable. Max
pooling is a reshape and a max for the same reason (no ``select_and_scatter``).

Products: every Dense layer and patch convolution multiplies through `matmul`, whose
backward pass computes the weight gradient as one product already in the weight's
``[in, out]`` layout. JAX's own transpose rule computes it as ``g^T x`` (``[out,
in]``) and transposes; XLA folds that transpose away for one network but not for a
population under ``vmap``, where Adam's update, its moments and the divergence
guard then all read the gradient through a transposing copy (docs/PERFORMANCE.md).

Dropout: call ``model.apply(params, x, train=True, rngs={"dropout": key})`` to train
and ``train=False`` (the default, no rng needed) to evaluate.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

KINDS = ("mlp", "cnn", "cnn1d", "resnet")
NORMS = ("none", "group", "layer")
CONVS = ("auto", "patches", "xla")


@dataclasses.dataclass(frozen=True)
class ArchConfig:
    """A network architecture; frozen and hashable, so it can key a compile cache.

    Attributes:
      kind: one of ``KINDS``.
      widths: hidden Dense widths: the MLP's layers, or a CNN's dense head.
      channels: conv channels, one entry per conv layer (cnn, cnn1d) or per stage
        (resnet); unused by ``mlp``.
      kernel: conv kernel size (square for 2D).
      dropout: dropout rate after every hidden Dense layer (0 disables it).
      norm: ``"none"``, ``"group"`` or ``"layer"``; applied after each conv (resnet
        always normalises; ``"none"`` there means GroupNorm is replaced by identity).
      blocks: basic blocks per ResNet stage.
      conv: convolution algorithm: "patches" (im2col + matmul), "xla"
        (``lax.conv_general_dilated``) or "auto" (patches on CPU, xla elsewhere).
    """

    kind: str = "mlp"
    widths: tuple[int, ...] = (256, 256)
    channels: tuple[int, ...] = ()
    kernel: int = 3
    dropout: float = 0.0
    norm: str = "none"
    blocks: int = 1
    conv: str = "auto"

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(
                f"ArchConfig.kind must be one of {KINDS}, got {self.kind!r}"
            )
        if self.norm not in NORMS:
            raise ValueError(
                f"ArchConfig.norm must be one of {NORMS}, got {self.norm!r}"
            )
        if self.conv not in CONVS:
            raise ValueError(
                f"ArchConfig.conv must be one of {CONVS}, got {self.conv!r}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(
                f"ArchConfig.dropout must be in [0, 1), got {self.dropout}"
            )
        if any(int(w) < 1 for w in (*self.widths, *self.channels)):
            raise ValueError("ArchConfig widths and channels must be positive")
        if self.kind != "mlp" and not self.channels:
            raise ValueError(f"ArchConfig(kind={self.kind!r}) needs channels")
        # Lists from a command line or JSON become tuples, so the config stays hashable.
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))

    def __repr__(self) -> str:
        """The kind, the layer sizes and the fields that differ from the defaults,
        e.g. ``ArchConfig(kind='cnn', widths=(128,), channels=(16, 32), kernel=5)``."""
        parts = [f"kind={self.kind!r}", f"widths={self.widths!r}"]
        for f in dataclasses.fields(self)[2:]:
            value = getattr(self, f.name)
            if value != f.default or (f.name == "channels" and self.kind != "mlp"):
                parts.append(f"{f.name}={value!r}")
        return f"ArchConfig({', '.join(parts)})"


def mlp(depth: int, width: int, dropout: float = 0.0) -> ArchConfig:
    """An MLP with ``depth`` hidden layers of ``width`` units (the search's MLP space:
    depth 1-4, width 32-1024)."""
    if not (1 <= depth <= 4 and 32 <= width <= 1024):
        raise ValueError(
            f"mlp depth must be 1-4 and width 32-1024, got {depth}, {width}"
        )
    return ArchConfig(kind="mlp", widths=(width,) * depth, dropout=dropout)


ARCHS: dict[str, ArchConfig] = {
    "mlp": ArchConfig(kind="mlp", widths=(256, 256)),
    "mlp-s": ArchConfig(kind="mlp", widths=(128,)),
    "mlp-m": ArchConfig(kind="mlp", widths=(512, 256)),
    "mlp-l": ArchConfig(kind="mlp", widths=(1024, 512, 256)),
    "mlp-dropout": ArchConfig(kind="mlp", widths=(256, 256), dropout=0.2),
    "cnn": ArchConfig(kind="cnn", channels=(16, 32), kernel=5, widths=(128,)),
    # LeNet-5's sizes (6 and 16 channels, 120-84 head), with ReLU and max-pooling.
    "lenet": ArchConfig(kind="cnn", channels=(6, 16), kernel=5, widths=(120, 84)),
    "cnn1d": ArchConfig(kind="cnn1d", channels=(32, 64), kernel=5, widths=(128,)),
    "resnet": ArchConfig(kind="resnet", channels=(16, 32, 64), widths=(), norm="group"),
}


def get_arch(arch: str | ArchConfig) -> ArchConfig:
    """Resolve a name from `ARCHS` (or pass an `ArchConfig` through)."""
    if isinstance(arch, ArchConfig):
        return arch
    if arch not in ARCHS:
        raise ValueError(f"unknown architecture {arch!r}; choose from {sorted(ARCHS)}")
    return ARCHS[arch]


def _norm(kind: str, channels: int) -> nn.Module | None:
    if kind == "group":
        return nn.GroupNorm(num_groups=math.gcd(8, channels))
    if kind == "layer":
        return nn.LayerNorm()
    return None


@jax.custom_vjp
def matmul(x: jax.Array, w: jax.Array) -> jax.Array:
    """``x [..., i] @ w [i, o] -> [..., o]``, differentiated by hand (reverse mode
    only) so the weight gradient comes out as ``[i, o]`` directly.

    Values and gradients equal ``x @ w``'s; only the layout of the products that
    compute them differs (see the module docstring).
    """
    return jax.lax.dot_general(x, w, (((x.ndim - 1,), (0,)), ((), ())))


def _matmul_fwd(x: jax.Array, w: jax.Array):
    return matmul(x, w), (x, w)


def _matmul_bwd(res, g: jax.Array):
    x, w = res
    dx = jax.lax.dot_general(g, w, (((g.ndim - 1,), (1,)), ((), ())))  # [..., i]
    lead = tuple(range(x.ndim - 1))  # batch (and spatial) axes
    if w.shape[1] < min(w.shape[0], 64):
        # A narrow output (e.g. the 10 logits): [o, i] rows are long enough for the
        # vector units, [i, o] rows are not (4x slower); transposing o * i is cheap.
        return dx, jax.lax.dot_general(g, x, ((lead, lead), ((), ()))).T
    dw = jax.lax.dot_general(x, g, ((lead, lead), ((), ())))  # [i, o], no transpose
    return dx, dw


matmul.defvjp(_matmul_fwd, _matmul_bwd)


def _dense_dot_general(lhs, rhs, dimension_numbers, precision=None, **kwargs):
    """``nn.Dense``'s ``dot_general`` hook: `matmul` for its plain ``x @ kernel``."""
    plain = (((lhs.ndim - 1,), (0,)), ((), ()))
    if dimension_numbers == plain and precision is None and not kwargs:
        return matmul(lhs, rhs)
    return jax.lax.dot_general(lhs, rhs, dimension_numbers, precision, **kwargs)


def _patches(x: jax.Array, kernel: tuple[int, ...], strides: tuple[int, ...]):
    """im2col with SAME padding: ``x [B, *S, C] -> [B, *S_out, prod(kernel) * C]``,
    ``S_out = ceil(S / strides)``; the last axis is ordered (kernel offset, C) like
    a flattened ``[*kernel, C, features]`` kernel."""
    pads, outs = [], []
    for n, k, st in zip(x.shape[1:-1], kernel, strides, strict=True):
        out = -(-n // st)
        total = max((out - 1) * st + k - n, 0)
        pads.append((total // 2, total - total // 2))
        outs.append(out)
    xp = jnp.pad(x, [(0, 0), *pads, (0, 0)])
    cols = []
    for offset in np.ndindex(*kernel):
        ends = zip(offset, outs, strides, strict=True)
        stop = [o + (n - 1) * st + 1 for o, n, st in ends]
        start, limit = (0, *offset, 0), (x.shape[0], *stop, x.shape[-1])
        cols.append(jax.lax.slice(xp, start, limit, (1, *strides, 1)))
    return jnp.concatenate(cols, axis=-1)


class Conv(nn.Module):
    """``nn.Conv(features, kernel_size, strides, padding="SAME")`` with the same
    parameters, computed as patches @ kernel (``impl="patches"``) or by XLA."""

    features: int
    kernel_size: tuple[int, ...]
    strides: tuple[int, ...] | None = None
    impl: str = "patches"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        k = tuple(self.kernel_size)
        strides = tuple(self.strides or (1,) * len(k))
        shape = (*k, x.shape[-1], self.features)
        kernel = self.param("kernel", nn.initializers.lecun_normal(), shape)
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,))
        if self.impl == "xla":
            dims = ("NHWC", "HWIO", "NHWC") if len(k) == 2 else ("NHC", "HIO", "NHC")
            y = jax.lax.conv_general_dilated(
                x, kernel, strides, "SAME", dimension_numbers=dims
            )
        else:
            y = matmul(_patches(x, k, strides), kernel.reshape(-1, self.features))
        return y + bias  # [B, *S_out, features]


def max_pool2(x: jax.Array) -> jax.Array:
    """2 x 2 (or 2 in 1D) max pooling, stride 2, VALID: ``[B, *S, C] -> [B, *S//2, C]``.

    A reshape and a max, equal to ``nn.max_pool(x, window, strides=window)``."""
    b, *spatial, c = x.shape
    x = x[(slice(None), *(slice(0, n // 2 * 2) for n in spatial))]
    split = [d for n in spatial for d in (n // 2, 2)]
    return x.reshape(b, *split, c).max(axis=tuple(range(2, 2 * len(spatial) + 1, 2)))


class _DenseHead(nn.Module):
    """Dense-ReLU(-Dropout) layers of ``widths``, then the class logits."""

    widths: Sequence[int]
    num_classes: int
    dropout: float

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        for w in self.widths:
            x = nn.relu(nn.Dense(w, dot_general=_dense_dot_general)(x))  # [B, w]
            if self.dropout > 0:
                x = nn.Dropout(self.dropout, deterministic=not train)(x)
        return nn.Dense(self.num_classes, dot_general=_dense_dot_general)(x)  # [B, C]


class MLP(nn.Module):
    """Flatten, hidden layers, logits."""

    cfg: ArchConfig
    num_classes: int

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        x = x.reshape(x.shape[0], -1)  # [B, D]
        return _DenseHead(self.cfg.widths, self.num_classes, self.cfg.dropout)(x, train)


class CNN(nn.Module):
    """LeNet-style conv-ReLU-maxpool stack (2D for ``cnn``, 1D for ``cnn1d``)."""

    cfg: ArchConfig
    num_classes: int

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        spatial = 1 if self.cfg.kind == "cnn1d" else 2
        if x.ndim == spatial + 1:  # no channel axis: [B, L] -> [B, L, 1]
            x = x[..., None]
        k = (self.cfg.kernel,) * spatial
        for c in self.cfg.channels:
            x = Conv(c, k, impl=self.cfg.conv)(x)  # [B, *S, c]
            norm = _norm(self.cfg.norm, c)
            x = nn.relu(norm(x) if norm is not None else x)
            x = max_pool2(x)  # [B, *S // 2, c]
        x = x.reshape(x.shape[0], -1)  # [B, prod(S) * c]
        return _DenseHead(self.cfg.widths, self.num_classes, self.cfg.dropout)(x, train)


class _BasicBlock(nn.Module):
    """Two 3x3 convs with a residual connection (He et al. 2016, fig. 2)."""

    channels: int
    stride: int
    norm: str
    impl: str

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        def norm(y):
            n = _norm(self.norm, self.channels)
            return n(y) if n is not None else y

        s, c, impl = (self.stride, self.stride), self.channels, self.impl
        y = nn.relu(norm(Conv(c, (3, 3), s, impl=impl)(x)))
        y = norm(Conv(c, (3, 3), impl=impl)(y))
        if x.shape[-1] != c or self.stride != 1:
            x = norm(Conv(c, (1, 1), s, impl=impl)(x))  # projection shortcut
        return nn.relu(x + y)  # [B, H / stride, W / stride, channels]


class ResNet(nn.Module):
    """Small CIFAR-style ResNet; ``channels=(16, 32, 64)``, 1 block each: ResNet-8."""

    cfg: ArchConfig
    num_classes: int

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        if x.ndim == 3:  # [B, H, W] -> [B, H, W, 1]
            x = x[..., None]
        c0 = self.cfg.channels[0]
        x = Conv(c0, (3, 3), impl=self.cfg.conv)(x)  # [B, H, W, c0]
        n = _norm(self.cfg.norm, c0)
        x = nn.relu(n(x) if n is not None else x)
        for i, c in enumerate(self.cfg.channels):
            for j in range(self.cfg.blocks):
                stride = 2 if (i > 0 and j == 0) else 1
                x = _BasicBlock(c, stride, self.cfg.norm, self.cfg.conv)(x)
        x = jnp.mean(x, axis=(1, 2))  # global average pool: [B, c_last]
        return _DenseHead(self.cfg.widths, self.num_classes, self.cfg.dropout)(x, train)


_MODULES = {"mlp": MLP, "cnn": CNN, "cnn1d": CNN, "resnet": ResNet}


def build_model(arch: str | ArchConfig, num_classes: int) -> nn.Module:
    """The Flax module for ``arch`` (a name in `ARCHS` or an `ArchConfig`).

    Args:
      arch: architecture name or config.
      num_classes: number of output logits.

    Returns:
      A module whose ``apply(params, x [B, *input_shape], train=False)`` returns
      logits ``[B, num_classes]``.
    """
    cfg = get_arch(arch)
    if cfg.conv == "auto":
        conv = "patches" if jax.default_backend() == "cpu" else "xla"
        cfg = dataclasses.replace(cfg, conv=conv)
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    return _MODULES[cfg.kind](cfg=cfg, num_classes=num_classes)


def arch_supports(arch: str | ArchConfig, input_shape: Sequence[int]) -> bool:
    """Whether ``arch`` can take examples of ``input_shape`` (per example, no batch).

    ``mlp`` takes anything; ``cnn`` and ``resnet`` need ``(H, W, C)`` with
    ``H, W >= 8``; ``cnn1d`` needs ``(L,)`` with ``L >= 8``.
    """
    cfg, shape = get_arch(arch), tuple(input_shape)
    if cfg.kind == "mlp":
        return len(shape) >= 1
    if cfg.kind in ("cnn", "resnet"):
        return len(shape) == 3 and min(shape[:2]) >= 8
    return len(shape) == 1 and shape[0] >= 8  # cnn1d


def param_count(
    arch: str | ArchConfig, input_shape: Sequence[int], num_classes: int
) -> int:
    """Number of parameters of ``arch`` on ``input_shape`` (computed abstractly)."""
    model = build_model(arch, num_classes)
    x = jax.ShapeDtypeStruct((1, *input_shape), jnp.float32)
    params = jax.eval_shape(model.init, jax.random.key(0), x)
    return sum(math.prod(p.shape) for p in jax.tree.leaves(params))
