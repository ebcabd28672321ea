"""Throughput of the inner run: candidate evaluations per second.

One fixed inner run (a network trained from scratch with the Taylor loss of order
4, Adam, ``steps`` steps, then evaluated on val and test) is timed five ways:

- ``vmap`` (a): the engine, ``inner.make_evaluate(cfg)``: one jitted call trains
  the whole population (``jit(vmap)``); every candidate gets the same key, so the
  same initialisation and batch order (common random numbers).
- ``loop`` (b): ``jax.jit(inner.make_inner_train(cfg))`` called once per candidate
  from Python, same key.
- ``torch`` (c): eager PyTorch, `bench_torch.TorchRun.train`: the same weights,
  batches, optimiser, schedule, loss and divergence guard.
- ``torch_compile`` (d): (c) with the forward and backward pass under
  ``torch.compile``; ``torch_vmap`` (d): ``torch.func.vmap`` over the population.

Achieved FLOP/s: the FLOPs of one candidate's run are ``steps`` x the FLOPs of one
compiled training step plus those of the compiled evaluation, each from XLA's
``compiled.cost_analysis()["flops"]`` (the cost analysis of the whole run counts a
``while`` body once, not once per iteration, so it cannot be used directly). The
peak is the best float32 matrix product (``jit(a @ b)``, n = 2048 and 4096)
measured in the same process. Device scaling runs `parallel.make_sharded_evaluate`
in subprocesses with ``--xla_force_host_platform_device_count=N``: on a CPU these
are simulated devices sharing the same cores.

`run_benchmark` returns a JSON-able dict; `bench_report.to_markdown` renders it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from arl_jax import data as data_lib
from arl_jax import inner, losses, models, parallel
from benchmarks import bench_torch
from benchmarks.bench_report import HANDWRITTEN, SPLIT, TARGETS, check_targets

TAYLOR_ORDER = 4
# The CNN's val and test sets are cut to this size: evaluating 16,000 Fashion-MNIST
# images costs as much as 700 training steps and would swamp the training measured.
CNN_EVAL_EXAMPLES = 2000


@dataclasses.dataclass(frozen=True)
class Case:
    """One benchmarked inner run: an architecture on a dataset's input shape."""

    name: str
    arch: str
    dataset: str  # "mnist1d" or "fashion_mnist"
    steps: int
    pops: tuple[int, ...]


def load_case_data(case: Case, quick: bool) -> tuple[inner.Data, str]:
    """The arrays of ``case`` on the device and a description of them.

    MNIST-1D is generated locally; Fashion-MNIST is read when it is installed
    (val and test cut to `CNN_EVAL_EXAMPLES`) and otherwise replaced by Gaussian
    images of the same shape (speed does not depend on the pixel values). ``quick``
    uses small generated sets and 8x8 images.
    """
    if case.dataset == "mnist1d":
        n = 400 if quick else 5000
        ds = data_lib.load("mnist1d", num_samples=n)
        return inner.Data.from_dataset(ds), f"mnist1d (generated, {n} samples)"
    if not quick:
        try:
            ds = data_lib.load("fashion_mnist")
            n = CNN_EVAL_EXAMPLES
            ds = dataclasses.replace(
                ds, x_val=ds.x_val[:n], y_val=ds.y_val[:n],
                x_test=ds.x_test[:n], y_test=ds.y_test[:n],
            )
            note = f"fashion_mnist (real; val and test cut to {n} examples each)"
            return inner.Data.from_dataset(ds), note
        except Exception as err:  # not installed: same shapes, random values
            note = f"random 28x28x1 images (fashion_mnist unavailable: {err})"
    else:
        note = "random 28x28x1 images (quick)"
    rng = np.random.default_rng(0)
    n = CNN_EVAL_EXAMPLES
    sizes = (256, 64, 64) if quick else (54000, n, n)
    side = 8 if quick else 28  # quick: the smallest images the CNN takes
    note = note.replace("28x28x1", f"{side}x{side}x1")
    arrays = []
    for n in sizes:
        arrays += [
            rng.normal(size=(n, side, side, 1)).astype(np.float32),
            rng.integers(0, 10, n).astype(np.int32),
        ]
    return inner.Data(*jax.device_put(arrays)), note


def inner_config(case: Case) -> inner.InnerConfig:
    """The benchmarked recipe: ``case.arch``, Taylor loss of order 4, Adam 2e-3 with
    cosine decay, batch 128, ``case.steps`` steps."""
    return inner.InnerConfig(
        arch=case.arch, num_classes=10, loss="taylor", steps=case.steps
    )


def population(pop: int, seed: int = 0) -> np.ndarray:
    """``[pop, 5]`` Taylor coefficients: the -log p series plus 5% noise, as
    CMA-ES would sample around its starting mean."""
    mean = losses.family_init("taylor", TAYLOR_ORDER)
    noise = np.random.default_rng(seed).normal(size=(pop, mean.shape[0]))
    return (mean * (1 + 0.05 * noise)).astype(np.float32)


def timed(
    fn: Callable[[], Any], repeats: int, budget_s: float = 60.0
) -> dict[str, Any]:
    """Call ``fn`` once to compile and warm up, then up to ``repeats`` more times
    (fewer once ``budget_s`` is spent); ``best_s`` is the fastest timed call."""
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    first = time.perf_counter() - t0
    times: list[float] = []
    spent = 0.0
    while len(times) < repeats and (not times or spent < budget_s):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
        spent += times[-1]
    best = min(times)
    return {
        "best_s": best,
        "times_s": times,
        "first_s": first,
        "compile_s": max(first - best, 0.0),
        "load": [load0, os.getloadavg()[0]],
    }


def peak_flops(
    sizes: Sequence[int] = (2048, 4096), repeats: int = 5, precision: str | None = None
) -> dict:
    """Best float32 FLOP/s of ``jit(a @ b)`` on ``n x n`` matrices (2 n^3 FLOPs).

    ``precision`` None is XLA's default, the precision the inner runs use (on a
    recent NVIDIA GPU that is TensorFloat-32); ``"highest"`` asks for full float32.
    """
    out = {}
    for n in sizes:
        a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
        b = jax.random.normal(jax.random.key(1), (n, n), jnp.float32)
        mm = jax.jit(lambda a, b: jnp.matmul(a, b, precision=precision))
        t = timed(lambda mm=mm, a=a, b=b: mm(a, b), repeats)
        out[str(n)] = 2 * n**3 / t["best_s"]
    return {"flops": max(out.values()), "by_size": out, "precision": precision}


def _cost_flops(compiled: Any) -> float:
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list | tuple) else cost
    return float(cost["flops"])


def run_flops(cfg: inner.InnerConfig, d: inner.Data) -> dict[str, float]:
    """FLOPs of one candidate's inner run from XLA's cost analysis.

    ``train_step``: one compiled step (forward, backward, Adam); ``evaluate``: one
    forward pass over val and test; ``per_candidate = steps * train_step +
    evaluate``. ``matmul_per_candidate`` counts the dense and conv products alone
    (forward 2 * MACs, backward twice that) as an analytic cross-check.
    """
    model = models.build_model(cfg.arch, cfg.num_classes)
    loss_fn = inner.make_loss(cfg)
    n = d.x_train.shape[0]
    steps = cfg.num_steps(n)
    tx = inner.build_optimizer(cfg, steps)
    key = jax.random.key(0)
    params = model.init(key, d.x_train[:1])
    coeffs = jnp.asarray(losses.family_init("taylor", TAYLOR_ORDER))
    shape = d.x_train.shape[1:]
    xb = jax.ShapeDtypeStruct((cfg.batch_size, *shape), jnp.float32)
    yb = jax.ShapeDtypeStruct((cfg.batch_size,), jnp.int32)

    def step(params, opt_state, x, y):
        def objective(p):
            logits = model.apply(p, x, train=True, rngs={"dropout": key})
            return loss_fn(coeffs, logits, y)

        loss, grads = jax.value_and_grad(objective)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    step_c = jax.jit(step).lower(params, tx.init(params), xb, yb).compile()
    n_eval = d.x_val.shape[0] + d.x_test.shape[0]
    xe = jax.ShapeDtypeStruct((n_eval, *shape), jnp.float32)
    eval_c = jax.jit(model.apply).lower(params, xe).compile()
    f_step, f_eval = _cost_flops(step_c), _cost_flops(eval_c)
    fwd_macs = _forward_macs(params, shape)  # per example
    matmul = 2 * fwd_macs * (3 * cfg.batch_size * steps + n_eval)
    return _flops_record(steps * f_step + f_eval, float(matmul), f_step, f_eval)


def _flops_record(counted: float, matmul: float, f_step: float, f_eval: float) -> dict:
    """``per_candidate`` is the cost analysis's count unless it is below the dense
    and conv products alone: on a GPU XLA hands convolutions to cuDNN as custom
    calls, which its cost analysis does not count, so there the analytic count is
    used (``source`` says which)."""
    use_matmul = matmul > counted
    return {
        "train_step": f_step,
        "evaluate": f_eval,
        "cost_analysis_per_candidate": counted,
        "per_candidate": matmul if use_matmul else counted,
        "matmul_per_candidate": matmul,
        "source": "dense/conv products" if use_matmul else "cost analysis",
    }


def _forward_macs(params: Any, input_shape: Sequence[int]) -> int:
    """Multiply-adds of one example's forward pass through the dense and conv
    layers (SAME convs, each followed by a 2x pooling, as in `models.CNN`)."""
    spatial = list(input_shape[:-1]) if len(input_shape) > 1 else []
    macs = 0
    p = params["params"]
    for name in sorted(k for k in p if k.startswith("Conv_")):
        k = p[name]["kernel"].shape
        macs += math.prod(spatial) * math.prod(k)
        spatial = [s // 2 for s in spatial]
    for _, layer in sorted(p.get("_DenseHead_0", {}).items()):
        macs += math.prod(layer["kernel"].shape)
    return macs


def bench_vmap(
    cfg, d, pop: int, repeats: int, budget_s: float, one_group: bool = False
) -> dict[str, Any]:
    """(a): one call of ``inner.make_evaluate(cfg)`` on ``pop`` candidates; with
    `one_group`, the ablation without cache-sized groups (the whole population in
    one vmap, what `inner.make_evaluate` does on accelerators)."""
    if one_group:
        evaluate = jax.jit(inner.batch_inner_train(inner.make_inner_train(cfg), None))
    else:
        evaluate = inner.make_evaluate(cfg)
    pop_params = jnp.asarray(population(pop))
    keys = jax.random.key(0)[None]  # one seed, shared by every candidate
    t = timed(lambda: evaluate(pop_params, keys, d), repeats, budget_s)
    method = "vmap_one_group" if one_group else "vmap"
    return {"method": method, "pop": pop, "seconds": t["best_s"], **t}


def bench_one_group(cfg, d, pop: int, repeats: int, budget_s: float) -> dict:
    """`bench_vmap` without cache-sized groups."""
    return bench_vmap(cfg, d, pop, repeats, budget_s, one_group=True)


def bench_loop(cfg, d, n: int, repeats: int, budget_s: float) -> dict[str, Any]:
    """(b): ``n`` candidates through the jitted single run, one call each."""
    single = jax.jit(inner.make_inner_train(cfg))
    pop_params = jnp.asarray(population(n))
    key = jax.random.key(0)
    t = timed(lambda: [single(p, key, d) for p in pop_params], repeats, budget_s)
    return {"method": "loop", "pop": n, "seconds": t["best_s"], **t}


def bench_handwritten(cfg, d, n: int, repeats: int, budget_s: float) -> dict:
    """The MLP run written by hand apart from the engine (`benchmarks.handwritten`),
    jitted and called once per candidate for ``n`` candidates: the yardstick a JAX
    user would write. Only for the MLP recipe (``cfg.arch == "mlp"``)."""
    from benchmarks import handwritten

    x_eval = jnp.concatenate([d.x_val, d.x_test])
    y_eval = jnp.concatenate([d.y_val, d.y_test])
    run = handwritten.make_run(d.x_train, d.y_train, x_eval, y_eval,
                               cfg.num_steps(d.x_train.shape[0]))
    rows = [jnp.asarray(c) for c in population(n)]
    key = jax.random.key(0)
    t = timed(lambda: [run(c, key) for c in rows], repeats, budget_s)
    return {"method": HANDWRITTEN, "pop": n, "seconds": t["best_s"], **t}


def bench_torch_runs(
    cfg, d, n: int, pops: Sequence[int], quick: bool, device: str = "cpu"
) -> tuple[list[dict], list[dict]]:
    """(c) eager, (d) torch.compile and torch.func.vmap on ``device`` ("cpu" or
    "cuda"). Returns (results, skipped) where ``skipped`` holds ``{"method",
    "reason"}`` for what failed."""
    results, skipped = [], []
    if not bench_torch.available():
        reason = "torch is not installed (pip install -e '.[bench]')"
        for m in ("torch", "torch_compile", "torch_vmap"):
            skipped.append({"method": m, "reason": reason})
        return results, skipped
    setup = bench_torch.setup_torch(device=device)
    run = bench_torch.TorchRun(cfg, d, jax.random.key(0), device=device)
    coeffs = population(max(n, 2))

    def per_candidate(method, compiled, count):
        times, load0 = [], os.getloadavg()[0]
        for c in coeffs[:count]:
            t0 = time.perf_counter()
            run.train(c, compiled=compiled)
            times.append(time.perf_counter() - t0)
        best = min(times[1:]) if compiled else min(times)
        return {
            "method": method, "pop": 1, "seconds": best, "best_s": best,
            "times_s": times, "first_s": times[0],
            "compile_s": max(times[0] - best, 0.0) if compiled else 0.0,
            "load": [load0, os.getloadavg()[0]], "torch": setup,
        }

    results.append(per_candidate("torch", False, n))
    try:
        results.append(per_candidate("torch_compile", True, max(n, 2)))
    except Exception as err:  # inductor needs a C++ compiler, etc.
        skipped.append({"method": "torch_compile", "reason": _short(err)})
    for pop in pops:
        try:
            load0, t0 = os.getloadavg()[0], time.perf_counter()
            run.train_vmap(population(pop))
            sec = time.perf_counter() - t0
            results.append({
                "method": "torch_vmap", "pop": pop, "seconds": sec, "best_s": sec,
                "times_s": [sec], "first_s": sec, "compile_s": 0.0,
                "load": [load0, os.getloadavg()[0]], "torch": setup,
            })
        except Exception as err:
            skipped.append({"method": "torch_vmap", "reason": _short(err)})
            break
    return results, skipped


def _short(err: BaseException) -> str:
    return f"{type(err).__name__}: {str(err).strip().splitlines()[0][:300]}"


def bench_devices(
    case: Case, quick: bool, pop: int, devices: Sequence[int], repeats: int
) -> list[dict[str, Any]]:
    """One generation of ``pop`` candidates sharded over N simulated CPU devices
    (``--xla_force_host_platform_device_count=N``, one subprocess each)."""
    out = []
    for n in devices:
        flags = [
            f for f in os.environ.get("XLA_FLAGS", "").split()
            if not f.startswith("--xla_force_host_platform_device_count")
        ]
        env = dict(os.environ, JAX_PLATFORMS="cpu")
        flags.append(f"--xla_force_host_platform_device_count={n}")
        env["XLA_FLAGS"] = " ".join(flags)
        spec = json.dumps({**dataclasses.asdict(case), "quick": quick, "pop": pop,
                           "repeats": repeats})
        cmd = [sys.executable, "-m", "benchmarks.bench", "--devices-worker", spec]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            out.append({"devices": n, "pop": pop, "error": proc.stderr[-500:]})
            continue
        out.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return out


def bench_split(case: Case, quick: bool, pop: int, n: int, repeats: int) -> dict | None:
    """The engine as `arl-search` runs it on a CPU: ``pop`` candidates split over
    ``n`` CPU devices, one a core (`parallel.split_cpu`), in a fresh process."""
    r = bench_devices(case, quick, pop, [n], repeats)[0]
    if "error" in r:
        return None
    return {"method": SPLIT, "pop": pop, "devices": n, "seconds": r["seconds"],
            **{k: v for k, v in r.items() if k not in ("devices", "pop", "seconds")}}


def _devices_worker(spec: dict[str, Any]) -> dict[str, Any]:
    quick, pop, repeats = spec.pop("quick"), spec.pop("pop"), spec.pop("repeats")
    case = Case(**{**spec, "pops": tuple(spec["pops"])})
    cfg = inner_config(case)
    d, _ = load_case_data(case, quick)
    mesh = parallel.make_mesh()
    evaluate = parallel.make_sharded_evaluate(cfg, mesh)
    d = parallel.replicate(d, mesh)
    pop_params = jnp.asarray(population(pop))
    keys = jax.random.key(0)[None]
    t = timed(lambda: evaluate(pop_params, keys, d), repeats)
    return {"devices": jax.device_count(), "pop": pop, "seconds": t["best_s"], **t}


def machine_info() -> dict[str, Any]:
    """CPU model, instruction-set flags (`parallel.CPU_FLAGS`), core count, JAX's
    backend and accelerator, platform and package versions."""
    model, flags = parallel.cpu_model_and_flags()
    versions = {"python": platform.python_version(), "jax": jax.__version__,
                "numpy": np.__version__}
    for mod in ("jaxlib", "flax", "optax", "torch"):
        try:
            versions[mod] = __import__(mod).__version__
        except ImportError:
            versions[mod] = None
    return {
        "cpu": model, "cpu_flags": flags, "cores": os.cpu_count(),
        "platform": platform.platform(),
        "backend": jax.default_backend(),
        "accelerator": jax.devices()[0].device_kind,
        "jax_devices": [str(x) for x in jax.devices()],
        "xla_flags": os.environ.get("XLA_FLAGS", ""), "versions": versions,
    }


def run_benchmark(
    cases: Sequence[Case],
    *,
    quick: bool = False,
    skip_torch: bool = False,
    loop_candidates: int = 8,
    torch_candidates: int = 2,
    torch_vmap_pops: Sequence[int] = (8, 64),
    devices: Sequence[int] = (1, 2, 4),
    device_pop: int = 64,
    repeats: int = 3,
    budget_s: float = 60.0,
    torch_device: str = "auto",
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Measure every method on every case; return the results as a dict.

    ``torch_device`` "auto" runs the PyTorch rows on CUDA where JAX runs on a GPU
    (`bench_torch.default_device`). On an accelerator the simulated-device scaling
    is skipped (it simulates CPU devices) and the peak is also measured at full
    float32 precision (``peak_highest``), next to the default precision's peak.
    """
    out: dict[str, Any] = {"machine": machine_info(), "quick": quick,
                           "targets": TARGETS}
    on_cpu = jax.default_backend() == "cpu"
    out["load_start"] = list(os.getloadavg())
    log(f"{out['machine']['accelerator']}; load {out['load_start']}; peak matmul ...")
    sizes = (256, 512) if quick else ((2048, 4096) if on_cpu else (4096, 8192))
    out["peak"] = peak_flops(sizes, max(repeats, 3))
    peak = out["peak"]["flops"]
    log(f"peak {peak / 1e9:.1f} GFLOP/s")
    if not on_cpu:
        out["peak_highest"] = peak_flops(sizes, max(repeats, 3), "highest")
        log(f"peak at full float32 {out['peak_highest']['flops'] / 1e9:.1f} GFLOP/s")
    if skip_torch:
        torch_device = None
    elif torch_device == "auto":
        available = bench_torch.available()
        torch_device = bench_torch.default_device() if available else "cpu"
    out["torch_device"] = torch_device
    out["cases"] = {}
    for case in cases:
        cfg = inner_config(case)
        d, note = load_case_data(case, quick)
        flops = run_flops(cfg, d)
        resolved = dataclasses.replace(cfg, eval_batch_size=inner.eval_batch(cfg))
        res: dict[str, Any] = {
            "case": dataclasses.asdict(case), "data": note,
            "config": {k: str(v) for k, v in dataclasses.asdict(resolved).items()},
            "flops": flops, "results": [], "skipped": [],
        }
        out["cases"][case.name] = res
        for pop in case.pops:
            try:
                r = bench_vmap(cfg, d, pop, repeats, budget_s)
            except Exception as err:  # e.g. out of device memory at a large pop
                res["skipped"].append({"method": f"vmap (pop {pop})",
                                       "reason": _short(err)})
                log(f"{case.name} vmap pop {pop} failed: {_short(err)}")
                continue
            res["results"].append(r)
            log(f"{case.name} vmap pop {pop}: {r['seconds']:.3f} s")
        group = inner.default_pop_chunk(cfg, d.x_train.shape[1:])
        if TARGETS["pop"] in case.pops and group and group < TARGETS["pop"]:
            r = bench_one_group(cfg, d, TARGETS["pop"], repeats, budget_s)
            res["results"].append(r)
            log(f"{case.name} vmap_one_group pop {r['pop']}: {r['seconds']:.3f} s")
        n_split = parallel.cpu_device_count(TARGETS["pop"])
        if on_cpu and TARGETS["pop"] in case.pops and n_split >= 2:
            r = bench_split(case, quick, TARGETS["pop"], n_split, repeats)
            if r is not None:
                res["results"].append(r)
                log(f"{case.name} {SPLIT} ({n_split}) pop {r['pop']}: "
                    f"{r['seconds']:.3f} s")
        r = bench_loop(cfg, d, loop_candidates, repeats, budget_s)
        res["results"].append(r)
        log(f"{case.name} loop x{loop_candidates}: {r['seconds']:.3f} s")
        if cfg.arch == "mlp":
            r = bench_handwritten(cfg, d, loop_candidates, repeats, budget_s)
            res["results"].append(r)
            log(f"{case.name} {HANDWRITTEN} x{loop_candidates}: {r['seconds']:.3f} s")
        if skip_torch:
            for m in ("torch", "torch_compile", "torch_vmap"):
                res["skipped"].append({"method": m, "reason": "--skip-torch"})
        else:
            pops = [p for p in torch_vmap_pops if p <= max(case.pops)]
            rs, sk = bench_torch_runs(
                cfg, d, torch_candidates, pops, quick, torch_device
            )
            res["results"] += rs
            res["skipped"] += sk
            for r in rs:
                log(f"{case.name} {r['method']} pop {r['pop']}: {r['seconds']:.3f} s")
            for s in sk:
                log(f"{case.name} {s['method']} skipped: {s['reason']}")
        for r in res["results"]:
            r["per_candidate_s"] = r["seconds"] / r["pop"]
            r["candidates_per_s"] = r["pop"] / r["seconds"]
            r["flops_per_s"] = flops["per_candidate"] * r["candidates_per_s"]
            r["peak_fraction"] = r["flops_per_s"] / peak
    if devices and not on_cpu:
        log("device scaling skipped: it simulates CPU devices")
        out["devices_skipped"] = (
            f"simulated CPU devices say nothing on {jax.default_backend()}; "
            f"{jax.device_count()} device(s) here"
        )
    elif devices:
        first = cases[0]
        log(f"device scaling ({first.name}, pop {device_pop}) ...")
        out["devices"] = {
            "case": first.name,
            "note": "simulated CPU devices (--xla_force_host_platform_device_count)"
            f" sharing the same {os.cpu_count()} cores",
            "results": bench_devices(first, quick, device_pop, devices, repeats),
        }
    out["load_end"] = list(os.getloadavg())
    out["target_check"] = check_targets(out)
    return out


if __name__ == "__main__" and sys.argv[1:2] == ["--devices-worker"]:
    print(json.dumps(_devices_worker(json.loads(sys.argv[2]))))
