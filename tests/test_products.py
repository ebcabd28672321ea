"""bfloat16 products as a setting: where the CPU has them, and how the flags of the
search, the meta-test and the report carry the setting."""

import json

import pytest

from arl_jax import parallel, search
from arl_jax.commands import meta_search, meta_test
from arl_jax.commands import report as report_cmd


def _cpuinfo(tmp_path, flags):
    path = tmp_path / "cpuinfo"
    path.write_text(f"model name\t: Some CPU\nflags\t\t: fpu {' '.join(flags)}\n")
    return str(path)


@pytest.mark.parametrize("flags,native", [
    (["avx2", "fma"], False),
    (["avx2", "avx512f", "avx512_bf16"], True),
    (["avx2", "amx_tile", "amx_bf16"], True),
])
def test_native_bfloat16_reads_the_cpu_flags(tmp_path, monkeypatch, capsys, flags,
                                             native):
    info = _cpuinfo(tmp_path, flags)
    real = parallel.cpu_model_and_flags
    monkeypatch.setattr(parallel, "cpu_model_and_flags", lambda: real(info))
    monkeypatch.setattr(parallel.jax, "default_backend", lambda: "cpu")
    assert parallel.native_bfloat16() is native
    parallel.warn_if_emulated("bfloat16")
    parallel.warn_if_emulated("float32")
    said = capsys.readouterr().out
    assert ("no native bfloat16" in said) is (not native)
    assert said.count("\n") == (0 if native else 1)


def test_search_products_reach_the_inner_runs_and_the_identity(monkeypatch, tmp_path):
    built = []
    monkeypatch.setattr(search.parallel, "make_sharded_evaluate",
                        lambda icfg, mesh: built.append(icfg) or (lambda *a: None))
    argv = ["--datasets", "synthetic", "--archs", "mlp-s", "--holdout", "",
            "--out", str(tmp_path / "s")]
    cfg = meta_search.resolve_config([*argv, "--products", "bfloat16"])
    search.TaskPool(cfg, mesh=None).evaluator(
        "synthetic", "mlp-s", "taylor_nce", cfg.recipe_list[0])
    assert built[0].products == "bfloat16"
    # float32 is what every search ran before the setting existed: same checkpoint
    # identity; bfloat16 is another search.
    plain = meta_search.resolve_config(argv)
    assert "products" not in meta_search.search_identity(plain)
    assert meta_search.search_identity(cfg) == {
        **meta_search.search_identity(plain), "products": "bfloat16"}


@pytest.mark.parametrize("main", [meta_search.main, meta_test.main])
def test_unknown_products_are_refused_naming_the_flag(main, capsys, tmp_path):
    with pytest.raises(SystemExit):
        main(["--products", "float16", "--out", str(tmp_path / "x")])
    assert "--products must be one of float32, bfloat16" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_meta_test_records_products_and_the_grid_labels_them(tmp_path, capsys):
    out = tmp_path / "mt"
    meta_test.main(["--dataset", "digits", "--noise", "symmetric:0.4", "--archs",
                    "mlp-s", "--losses", "cross_entropy", "--seeds", "1", "--steps",
                    "20", "--batch-size", "64", "--products", "bfloat16",
                    "--train-size", "500", "--out", str(out)])
    assert json.loads((out / "config.json").read_text())["products"] == "bfloat16"
    _, cells = report_cmd.load_grid([str(out)])
    assert cells[0]["label"].endswith(", train ≤ 500, bfloat16")
    # A rerun into the folder in float32 would mix rows of two settings: refused.
    with pytest.raises(SystemExit):
        meta_test.main(["--dataset", "digits", "--noise", "symmetric:0.4",
                        "--archs", "mlp-s", "--losses", "gce", "--seeds", "1",
                        "--steps", "20", "--batch-size", "64", "--train-size", "500",
                        "--out", str(out)])
    assert "--products: bfloat16 -> float32" in capsys.readouterr().err
