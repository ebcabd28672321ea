"""Tests for the throughput benchmark (benchmarks/bench.py, benchmarks/benchmark.py) and
the PyTorch reference run it times (benchmarks/bench_torch.py)."""

import json
import math
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from arl_jax import data, inner, losses, parallel
from arl_jax.models import ArchConfig, build_model
from benchmarks import bench, bench_report, bench_torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COEFFS = losses.family_init("taylor", 4)


def run_cli(out_dir, *extra):
    cmd = [sys.executable, "-m", "benchmarks.benchmark", "--quick", "--out",
           str(out_dir), *extra]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(out_dir / "results.json") as f:
        out = json.load(f)
    with open(out_dir / "results.md") as f:
        md = f.read()
    return out, md


def check_rows(rows):
    for r in rows:
        for k in ("seconds", "per_candidate_s", "candidates_per_s", "flops_per_s",
                  "peak_fraction"):
            assert math.isfinite(r[k]) and r[k] > 0, (r["method"], k, r[k])
        assert r["candidates_per_s"] == pytest.approx(r["pop"] / r["seconds"])


@pytest.mark.slow
def test_quick_benchmark_without_torch(tmp_path):
    out, md = run_cli(tmp_path, "--skip-torch")
    assert out["peak"]["flops"] > 0 and out["machine"]["cores"] >= 1
    assert set(out["cases"]) == {"mlp", "cnn"}
    for name, res in out["cases"].items():
        methods = {r["method"] for r in res["results"]}
        hand = {bench.HANDWRITTEN} if name == "mlp" else set()
        assert methods == {"vmap", "loop"} | hand, name
        check_rows(res["results"])
        assert {s["method"] for s in res["skipped"]} == {
            "torch", "torch_compile", "torch_vmap"}
        f = res["flops"]
        assert 0 < f["train_step"] and 0 < f["evaluate"] < f["per_candidate"]
        # Cost analysis and the analytic count of the products agree to 10%.
        assert f["per_candidate"] == pytest.approx(f["matmul_per_candidate"], rel=0.1)
        assert f"### {name}:" in md
    dev = out["devices"]["results"]
    assert [r["devices"] for r in dev] == [2] and dev[0]["seconds"] > 0
    assert "simulated" in out["devices"]["note"]
    assert set(out["target_check"]) == {"mlp", "cnn"}
    assert "| vmap | 2 |" in md and "### Speed targets" in md
    assert out["command"].startswith("python -m benchmarks.benchmark")


@pytest.mark.slow
def test_quick_benchmark_with_torch(tmp_path):
    pytest.importorskip("torch")
    out, md = run_cli(tmp_path, "--cases", "mlp", "--devices", "")
    res = out["cases"]["mlp"]
    ran = {r["method"] for r in res["results"]}
    skipped = {s["method"] for s in res["skipped"]}
    assert {"vmap", "loop", "torch"} <= ran
    assert ran | skipped == {"vmap", "loop", bench.HANDWRITTEN, "torch",
                             "torch_compile", "torch_vmap"}
    check_rows(res["results"])
    torch_row = next(r for r in res["results"] if r["method"] == "torch")
    assert torch_row["torch"]["flush_denormal"] is True
    assert torch_row["torch"]["threads"] == os.cpu_count()
    assert "| torch | 1 |" in md and "devices" not in out


def test_target_check_on_made_up_numbers():
    def row(method, pop, per_candidate, frac):
        return {"method": method, "pop": pop, "per_candidate_s": per_candidate,
                "seconds": pop * per_candidate, "peak_fraction": frac,
                "flops_per_s": 100 * frac}
    res = {"results": [row("vmap", 64, 1.0, 0.5), row("vmap", 256, 0.9, 0.62),
                       row("loop", 8, 1.6, 0.3), row("torch", 1, 25.0, 0.02),
                       row(bench.HANDWRITTEN, 8, 1.4, 0.35)]}
    out = {"cases": {"mlp": res}, "peak": {"flops": 100.0},
           "devices": {"case": "mlp", "results": [{"pop": 64, "seconds": 32.0}]}}
    b = bench_report.check_targets(out)["mlp"]
    assert b["vs_torch"] == pytest.approx(25.0) and b["vs_torch_met"]
    assert b["vs_torch_at_peak"] == pytest.approx(50.0)
    assert b["vs_loop"] == pytest.approx(1.6) and b["vs_loop_met"]
    assert b["vs_loop_sharded"] == pytest.approx(3.2)
    assert b["vs_handwritten"] == pytest.approx(1.4) and not b["vs_handwritten_met"]
    assert b["peak_fraction_pop64"] == 0.5 and not b["peak_fraction_pop64_met"]
    assert b["peak_fraction_best"] == 0.62 and b["peak_fraction_met"]
    # Where the benchmark timed the engine as a search runs it, the targets read it.
    res["results"].append(row(bench.SPLIT, 64, 0.8, 0.61))
    b = bench_report.check_targets(out)["mlp"]
    assert b["vs_handwritten"] == pytest.approx(1.75) and b["vs_handwritten_met"]
    assert b["peak_fraction_pop64"] == 0.61 and b["peak_fraction_pop64_met"]
    assert b["vs_loop"] == pytest.approx(2.0)


def test_population_is_seeded_and_near_the_series():
    a, b = bench.population(5), bench.population(5)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (5, 5)
    np.testing.assert_allclose(a.mean(0), COEFFS, rtol=0.2, atol=0.05)


def test_forward_macs_closed_form():
    model = build_model("mlp", 10)
    params = jax.eval_shape(model.init, jax.random.key(0), jnp.ones((1, 40)))
    assert bench._forward_macs(params, (40,)) == 40 * 256 + 256 * 256 + 256 * 10
    cnn = build_model("cnn", 10)
    x = jnp.ones((1, 28, 28, 1))
    params = jax.eval_shape(cnn.init, jax.random.key(0), x)
    expected = (28 * 28 * 25 * 16) + (14 * 14 * 25 * 16 * 32) + 7 * 7 * 32 * 128
    assert bench._forward_macs(params, (28, 28, 1)) == expected + 128 * 10


# ---- the torch reference is the same run --------------------------------------

TINY = ArchConfig(kind="mlp", widths=(32, 32))
TINY_CNN = ArchConfig(kind="cnn", channels=(4, 8), kernel=3, widths=(16,))


@pytest.fixture(scope="module")
def mnist1d():
    return inner.Data.from_dataset(data.load("mnist1d", num_samples=600))


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    arrays = []
    for n in (192, 32, 32):
        arrays += [rng.normal(size=(n, 8, 8, 1)).astype(np.float32),
                   rng.integers(0, 10, n).astype(np.int32)]
    return inner.Data(*jax.device_put(arrays))


def jax_step0(cfg, d, key):
    """JAX loss and gradients at the inner run's initial weights and first batch."""
    model = build_model(cfg.arch, cfg.num_classes)
    k_init, k_shuffle, _ = jax.random.split(key, 3)
    params = model.init(k_init, d.x_train[:1])
    idx = inner.batch_indices(k_shuffle, d.x_train.shape[0], cfg.batch_size, 1)
    x, y = d.x_train[idx[0]], d.y_train[idx[0]]
    loss_fn = inner.make_loss(cfg)
    loss, grads = jax.jit(jax.value_and_grad(
        lambda p: loss_fn(jnp.asarray(COEFFS), model.apply(p, x), y)
    ))(params)
    flat = {
        "/".join(k.key for k in path[-2:]): np.asarray(v)
        for path, v in jax.tree_util.tree_flatten_with_path(grads)[0]
    }
    return float(loss), flat


@pytest.mark.parametrize("arch,dataset", [(TINY, "mnist1d"), (TINY_CNN, "images")])
def test_torch_step_equals_jax_step(arch, dataset, request):
    pytest.importorskip("torch")
    d = request.getfixturevalue(dataset)
    cfg = inner.InnerConfig(arch=arch, loss="taylor", steps=3, batch_size=32)
    key = jax.random.key(7)
    loss, grads = jax_step0(cfg, d, key)
    ref = bench_torch.one_step_reference(cfg, d, key, COEFFS)
    assert float(ref["loss"]) == pytest.approx(loss, rel=1e-5)
    assert set(grads) == set(ref) - {"loss"}
    for name, g in grads.items():
        np.testing.assert_allclose(ref[name], g, rtol=1e-4, atol=1e-6, err_msg=name)


def test_torch_run_equals_jax_run(mnist1d):
    pytest.importorskip("torch")
    bench_torch.setup_torch()
    cfg = inner.InnerConfig(arch=TINY, loss="taylor", steps=20, batch_size=32)
    key = jax.random.key(3)
    pop = np.stack([COEFFS, COEFFS * 1.3])
    want = inner.make_evaluate(cfg)(jnp.asarray(pop), key[None], mnist1d)
    run = bench_torch.TorchRun(cfg, mnist1d, key)
    eager = [run.train(c) for c in pop]
    vmapped = run.train_vmap(pop)
    n_val = mnist1d.y_val.shape[0]
    for i in range(2):
        for got in (eager[i], jax.tree.map(lambda a, i=i: a[i], vmapped)):
            assert not got["diverged"]
            np.testing.assert_allclose(got["train_loss"], want.train_loss[i, 0],
                                       rtol=1e-3)
            assert abs(got["val_acc"] - want.val_acc[i, 0]) <= 2.01 / n_val


def test_torch_reference_refuses_what_it_cannot_reproduce():
    with pytest.raises(ValueError, match="torch reference"):
        bench_torch.check_supported(inner.InnerConfig(loss="cross_entropy"))
    with pytest.raises(ValueError, match="torch reference"):
        bench_torch.check_supported(
            inner.InnerConfig(arch="mlp-dropout", loss="taylor"))
    bench_torch.check_supported(inner.InnerConfig(arch="cnn", loss="taylor"))


def test_cosine_learning_rate_matches_optax():
    import optax

    cfg = inner.InnerConfig(loss="taylor", lr=3e-3, steps=50)
    sched = optax.cosine_decay_schedule(cfg.lr, 50)
    for t in (0, 1, 17, 49, 50, 60):
        assert bench_torch.learning_rate(cfg, 50, t) == pytest.approx(
            float(sched(t)), rel=1e-6, abs=1e-12)


@pytest.mark.slow
def test_one_group_ablation_times_the_ungrouped_population():
    case = bench.Case("mlp", "mlp-s", "mnist1d", 3, (4,))
    cfg = bench.inner_config(case)
    d, _ = bench.load_case_data(case, quick=True)
    r = bench.bench_one_group(cfg, d, 4, repeats=1, budget_s=10.0)
    assert r["method"] == "vmap_one_group" and r["pop"] == 4 and r["seconds"] > 0


def test_flops_fall_back_to_the_products_when_cost_analysis_misses_convs():
    # On a GPU the cost analysis left cuDNN's convolutions out (9.2 G counted
    # against 140 G of conv and dense products for the CNN): use the products.
    gpu = bench._flops_record(9.21e9, 140.3e9, 1.0, 2.0)
    assert gpu["per_candidate"] == 140.3e9 and gpu["source"] == "dense/conv products"
    assert gpu["cost_analysis_per_candidate"] == 9.21e9
    cpu = bench._flops_record(12.17e9, 12.0e9, 1.0, 2.0)
    assert cpu["per_candidate"] == 12.17e9 and cpu["source"] == "cost analysis"


def test_markdown_names_the_accelerator_and_the_skipped_scaling():
    row = {"method": "vmap", "pop": 64, "seconds": 0.033, "per_candidate_s": 5e-4,
           "candidates_per_s": 1916.7, "flops_per_s": 2.3e13, "peak_fraction": 0.06,
           "load": [0.9, 2.2]}
    flops = bench._flops_record(12.17e9, 12.25e9, 1.0, 2.0)
    out = {
        "machine": {"cpu": "Xeon", "cores": 16, "backend": "gpu",
                    "accelerator": "NVIDIA H200", "versions": {"jax": "0.11.2",
                                                               "torch": "2.11.0"}},
        "peak": {"flops": 3.6e14}, "peak_highest": {"flops": 4.9e13},
        "torch_device": "cuda", "load_start": [0.3], "load_end": [3.6],
        "devices_skipped": "simulated CPU devices say nothing on gpu; 1 device(s)",
        "cases": {"mlp": {"case": {"arch": "mlp", "steps": 200}, "data": "mnist1d",
                          "flops": flops, "results": [row],
                          "skipped": [{"method": "vmap (pop 4096)",
                                       "reason": "XlaRuntimeError: out of memory"}]}},
    }
    out["target_check"] = bench_report.check_targets(out)
    md = bench_report.to_markdown(out)
    assert "JAX on NVIDIA H200 (gpu); PyTorch on cuda." in md
    assert "full float32 49000.0 GFLOP/s" in md
    assert "Device scaling skipped" in md
    assert "| vmap (pop 4096) | - | skipped: XlaRuntimeError: out of memory |" in md
    assert "dense/conv products" in md


@pytest.mark.slow
def test_a_population_that_fails_is_reported_and_the_rest_still_runs(monkeypatch):
    real = bench.bench_vmap

    def flaky(cfg, d, pop, repeats, budget_s, one_group=False):
        if pop == 3:
            raise RuntimeError("RESOURCE_EXHAUSTED: out of memory")
        return real(cfg, d, pop, repeats, budget_s, one_group)

    monkeypatch.setattr(bench, "bench_vmap", flaky)
    case = bench.Case("mlp", "mlp", "mnist1d", 2, (2, 3))
    out = bench.run_benchmark([case], quick=True, skip_torch=True, loop_candidates=1,
                              devices=(), repeats=1, log=lambda s: None)
    res = out["cases"]["mlp"]
    assert [r["pop"] for r in res["results"] if r["method"] == "vmap"] == [2]
    reason = "RuntimeError: RESOURCE_EXHAUSTED: out of memory"
    assert {"method": "vmap (pop 3)", "reason": reason} in res["skipped"]
    assert out["torch_device"] is None and out["machine"]["backend"] == "cpu"


@pytest.mark.slow
def test_the_split_engine_is_timed_in_a_fresh_process_on_its_devices():
    case = bench.Case("mlp", "mlp", "mnist1d", 2, (16,))
    r = bench.bench_split(case, True, 16, 2, 1)
    assert (r["method"], r["pop"], r["devices"]) == (bench.SPLIT, 16, 2)
    assert r["seconds"] > 0


@pytest.mark.skipif(not bench_torch.available(), reason="torch not installed")
def test_torch_run_takes_a_device(mnist1d):
    cfg = inner.InnerConfig(arch="mlp", num_classes=10, loss="taylor", steps=3)
    setup = bench_torch.setup_torch(device="cpu")
    assert setup["device"] == "cpu" and "tf32" not in setup
    assert bench_torch.default_device() == "cpu"  # JAX runs on the CPU here
    run = bench_torch.TorchRun(cfg, mnist1d, jax.random.key(0), device="cpu")
    assert run.x_train.device.type == "cpu" and run.idx.device.type == "cpu"
    assert next(run.model().parameters()).device.type == "cpu"
    m = run.train(COEFFS)
    assert m["val_acc"].shape == () and not bool(m["diverged"])


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum\n"
                    "flags\t\t: fpu sse avx2 fma avx512f avx512_bf16 amx_tile "
                    "amx_bf16\n\nprocessor\t: 1\nmodel name\t: other\n")
    model, flags = parallel.cpu_model_and_flags(str(info))
    assert model == "Intel(R) Xeon(R) Platinum"
    assert flags == ["avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"]
    assert parallel.cpu_model_and_flags(str(tmp_path / "missing"))[1] == []
    info.write_text("processor\t: 0\ncpu family\t: 26\nmodel\t\t: 2\n"
                    "model name\t: AMD EPYC\nflags\t\t: avx2 fma\n")
    assert parallel.cpu_model_and_flags(str(info)) == (
        "AMD EPYC (family 26, model 2)", ["avx2", "fma"])
    assert set(bench.machine_info()["cpu_flags"]) <= set(parallel.CPU_FLAGS)


def test_handwritten_run_is_the_benchmarked_recipe(mnist1d):
    from benchmarks import handwritten

    # Its loss is the Taylor loss of the engine, written out independently.
    logits = jax.random.normal(jax.random.key(0), (16, 10))
    labels = jnp.arange(16) % 10
    coeffs = jnp.asarray(bench.population(1)[0])
    np.testing.assert_allclose(
        handwritten.taylor(coeffs, logits, labels),
        jnp.mean(losses.taylor_loss(coeffs, logits, labels)), rtol=1e-5)
    cfg = bench.inner_config(bench.Case("mlp", "mlp", "mnist1d", 3, (2,)))
    r = bench.bench_handwritten(cfg, mnist1d, 2, repeats=1, budget_s=10.0)
    assert r["method"] == bench.HANDWRITTEN and r["pop"] == 2 and r["seconds"] > 0
