"""Reading the benchmark's results (`benchmarks.bench`): speed targets and markdown.

The targets, per case: the engine's population evaluation (``vmap``) at pop 64
at least 20x faster per candidate than eager PyTorch and 1.5x faster than the
jitted run in a Python loop, and at least 60% of the peak FLOP/s measured in the
same run.
"""

from __future__ import annotations

from typing import Any

TARGETS = {"vs_torch": 20.0, "vs_loop": 1.5, "vs_handwritten": 1.5,
           "peak_fraction": 0.6, "pop": 64}
# The methods' row names: the hand-written loop (`benchmarks.handwritten`), and the
# population split over a CPU device a core in a fresh process, as arl-search runs it
# on a CPU (`parallel.split_cpu`, `bench.bench_split`).
HANDWRITTEN = "hand-written loop"
SPLIT = "vmap, a CPU device a core"


def _find(res: dict, method: str, pop: int | None = None) -> dict | None:
    rows = [r for r in res["results"] if r["method"] == method]
    if pop is not None:
        rows = [r for r in rows if r["pop"] == pop]
    return min(rows, key=lambda r: r["per_candidate_s"]) if rows else None


def check_targets(out: dict[str, Any]) -> dict[str, Any]:
    """The speed targets, per case: the engine at pop 64 as a search runs it (split
    over a CPU device a core where the benchmark measured that, `SPLIT`; else
    vmap) against torch eager and the loops, and its best fraction of the peak
    (``None`` where a method is missing)."""
    checks = {}
    for name, res in out["cases"].items():
        a = _find(res, SPLIT, TARGETS["pop"]) or _find(res, "vmap", TARGETS["pop"])
        b, c = _find(res, "loop"), _find(res, "torch")
        best = max((r["peak_fraction"] for r in res["results"]
                    if r["method"] in ("vmap", SPLIT)), default=None)
        vs_torch = c["per_candidate_s"] / a["per_candidate_s"] if a and c else None
        vs_loop = b["per_candidate_s"] / a["per_candidate_s"] if a and b else None
        h = _find(res, HANDWRITTEN)
        vs_hand = h["per_candidate_s"] / a["per_candidate_s"] if a and h else None
        frac = a["peak_fraction"] if a else None
        # No implementation beats torch by more than peak / torch's FLOP/s.
        bound = out["peak"]["flops"] / c["flops_per_s"] if c else None
        checks[name] = {
            "vs_torch": vs_torch, "vs_torch_met": _ge(vs_torch, TARGETS["vs_torch"]),
            "vs_torch_at_peak": bound,
            "vs_loop_sharded": _sharded_vs_loop(out, name, b),
            "vs_loop": vs_loop, "vs_loop_met": _ge(vs_loop, TARGETS["vs_loop"]),
            "vs_handwritten": vs_hand,
            "vs_handwritten_met": _ge(vs_hand, TARGETS["vs_handwritten"]),
            "peak_fraction_pop64": frac,
            "peak_fraction_pop64_met": _ge(frac, TARGETS["peak_fraction"]),
            "peak_fraction_best": best,
            "peak_fraction_met": _ge(best, TARGETS["peak_fraction"]),
        }
    return checks


def _sharded_vs_loop(out: dict, name: str, loop: dict | None) -> float | None:
    """Loop time over the best per-candidate time of the device-scaling runs (the
    population sharded over simulated CPU devices), for the case they ran on."""
    dev = out.get("devices")
    if not dev or dev["case"] != name or loop is None:
        return None
    rows = [r for r in dev["results"] if "seconds" in r]
    if not rows:
        return None
    best = min(r["seconds"] / r["pop"] for r in rows)
    return loop["per_candidate_s"] / best


def _ge(x: float | None, bound: float) -> bool | None:
    return None if x is None else bool(x >= bound)


def to_markdown(out: dict[str, Any]) -> str:
    """The results as markdown: a table per case, the device scaling, the targets."""
    m = out["machine"]
    peak = out["peak"]["flops"]
    where = ""
    if m.get("backend", "cpu") != "cpu":
        where = f"JAX on {m['accelerator']} ({m['backend']}); "
    if out.get("torch_device"):
        where += f"PyTorch on {out['torch_device']}. "
    highest = ""
    if "peak_highest" in out:
        highest = (f" (default precision; full float32 "
                   f"{out['peak_highest']['flops'] / 1e9:.1f} GFLOP/s)")
    isa = f", flags {' '.join(m['cpu_flags'])}" if m.get("cpu_flags") else ""
    lines = [
        f"Machine: {m['cpu']}{isa}, {m['cores']} cores; jax {m['versions']['jax']}, "
        f"torch {m['versions'].get('torch')}. {where}Peak float32 matmul "
        f"{peak / 1e9:.1f} GFLOP/s{highest}. Load average "
        f"{out['load_start'][0]:.2f} at the start, {out['load_end'][0]:.2f} at "
        "the end.",
        "",
    ]
    for name, res in out["cases"].items():
        c = res["case"]
        f = res["flops"]
        lines += [
            f"### {name}: {c['arch']} on {res['data']}, {c['steps']} steps",
            "",
            f"FLOPs per candidate {f['per_candidate'] / 1e9:.2f} G "
            f"({f.get('source', 'cost analysis')}; cost analysis "
            f"{f.get('cost_analysis_per_candidate', f['per_candidate']) / 1e9:.2f} G, "
            f"dense/conv products alone {f['matmul_per_candidate'] / 1e9:.2f} G).",
            "",
            "| method | pop | s / generation | ms / candidate | candidates / s "
            "| x loop | x torch | GFLOP/s | % of peak | load |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        loop, torch_ = _find(res, "loop"), _find(res, "torch")
        for r in res["results"]:
            xl = loop["per_candidate_s"] / r["per_candidate_s"] if loop else None
            xt = torch_["per_candidate_s"] / r["per_candidate_s"] if torch_ else None
            lines.append(
                f"| {r['method']} | {r['pop']} | {r['seconds']:.3f} | "
                f"{1e3 * r['per_candidate_s']:.1f} | {r['candidates_per_s']:.2f} | "
                f"{_fmt(xl)} | {_fmt(xt)} | {r['flops_per_s'] / 1e9:.1f} | "
                f"{100 * r['peak_fraction']:.0f}% | "
                f"{r['load'][0]:.1f}-{r['load'][1]:.1f} |"
            )
        for s in res["skipped"]:
            lines.append(f"| {s['method']} | - | skipped: {s['reason']} |")
        lines.append("")
    if "devices_skipped" in out:
        lines += [f"Device scaling skipped: {out['devices_skipped']}.", ""]
    if "devices" in out:
        dv = out["devices"]
        lines += [
            f"### Device scaling ({dv['case']}; {dv['note']})",
            "",
            "| devices | pop | s / generation | candidates / s |",
            "|---:|---:|---:|---:|",
        ]
        for r in dv["results"]:
            if "error" in r:
                lines.append(f"| {r['devices']} | {r['pop']} | error | |")
            else:
                lines.append(f"| {r['devices']} | {r['pop']} | {r['seconds']:.3f} "
                             f"| {r['pop'] / r['seconds']:.2f} |")
        lines.append("")
    lines += ["### Speed targets (pop 64)", "", "| case | vmap vs torch (>= 20x) "
              "[at 100% of peak] | vmap vs loop (>= 1.5x) | vmap vs hand-written loop "
              "(>= 1.5x) | sharded over simulated devices vs loop | % of peak at "
              "pop 64 / best pop (>= 60%) |",
              "|---|---|---|---|---|---|"]
    for name, b in out["target_check"].items():
        lines.append(
            f"| {name} | {_fmt(b['vs_torch'])} {_met(b['vs_torch_met'])} "
            f"[{_fmt(b.get('vs_torch_at_peak'))}] | "
            f"{_fmt(b['vs_loop'], 2)} {_met(b['vs_loop_met'])} | "
            f"{_fmt(b.get('vs_handwritten'), 2)} {_met(b.get('vs_handwritten_met'))} | "
            f"{_fmt(b.get('vs_loop_sharded'), 2)} | "
            f"{_pct(b['peak_fraction_pop64'])} {_met(b['peak_fraction_pop64_met'])}"
            f" / {_pct(b['peak_fraction_best'])} {_met(b['peak_fraction_met'])} |"
        )
    return "\n".join(lines) + "\n"


def _fmt(x: float | None, digits: int = 1) -> str:
    return "-" if x is None else f"{x:.{digits}f}x"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def _met(x: bool | None) -> str:
    return "(n/a)" if x is None else ("met" if x else "NOT met")
