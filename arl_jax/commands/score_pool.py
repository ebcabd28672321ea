"""Score named losses on a search's meta-train tasks: what does the pool reward?

    python -m experiments.score_pool --out runs/pool_default
    python -m experiments.score_pool --train-size 1000 --out runs/pool_train1000

A search can only find what its fitness rewards. This trains a few fixed losses,
the shipped ARL, `--loss-file` results of searches and the hand-designed losses that
are members of the searched family (for ``taylor_nce``: ``nce_rce`` is ``[1, 1,
-log(1e4), 0, ...]``, ``nce_mae`` is ``[1, 1, -1, 0, ...]``, ``mae`` is ``[0, 1, -1,
0, ...]``; ``ce_taylor`` is the search's cross-entropy-like start) or any other loss
of `arl_jax.losses.LOSSES` (``gce``, ``sce``, ...: trained by name) on `--draws`
generations' worth of tasks drawn exactly as the search draws them (every search flag
applies: `--datasets`, `--train-size`, `--steps`, ...), and reports each loss's
fitness, the search's objective. If the pool ranks losses unlike the held-out data
does, more search on that pool cannot close the gap.

    python -m experiments.score_pool --elites runs/search --draws 8 --out runs/pool

``--elites RUN`` adds every generation's elite and the final CMA-ES mean of a
finished search (its metrics.jsonl): the candidates its final selection chose from,
so one can see whether the pool can tell them apart at all.

Writes into `--out`: scores.json (every task's clean-validation accuracy per loss)
and scores.md (a table by dataset and noise, with the mean: the fitness, and each
loss's difference from the first one, paired by task, with its standard error).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import shlex
import sys

import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from arl_jax import baselines, cli, compare, io, losses, parallel, search

DESCRIPTION = __doc__.split("\n")[0]
# Task draws of this script use generation numbers the search never reaches.
DRAW_OFFSET = 10**5


def family_members(family: str, order: int) -> dict[str, np.ndarray]:
    """Named losses that are exact members of `family`: the search's start
    ("ce_taylor", the Taylor expansion of CE, not CE itself) and, for the families
    with an NCE weight (those that contain "taylor_nce"), MAE, NCE+MAE and NCE+RCE
    at their published defaults."""
    out = {"ce_taylor": losses.family_init(family, order)}
    rce = math.log(baselines.RCE_CLAMP)  # RCE = -log(1e-4) (1 - p_y)
    pad = [0.0] * (order - 1)  # theta_2.. theta_K
    # a NCE + theta_1 (p_y - 1) as taylor_nce [a, c, theta_1, ...], written in
    # `family` (losses.embed_coeffs: e.g. a prior weight 0).
    named = {"mae": [0.0, 1.0, -1.0, *pad], "nce_mae": [1.0, 1.0, -1.0, *pad],
             "nce_rce": [1.0, 1.0, rce, *pad]}
    try:
        named = {k: losses.embed_coeffs("taylor_nce", v, family)
                 for k, v in named.items()}
    except ValueError:  # a family without an NCE weight
        return out
    out.update({k: np.asarray(v, np.float32) for k, v in named.items()})
    return out


def run_elites(run: str) -> dict[str, np.ndarray]:
    """Every generation's elite (``elite gN``) and the final CMA-ES mean
    (``es_mean``) of the finished search in folder `run`, from its metrics.jsonl."""
    path = os.path.join(run, "metrics.jsonl")
    if not os.path.exists(path):
        raise ValueError(f"--elites {run}: no metrics.jsonl; is it a search's folder?")
    with open(path) as f:
        history = [json.loads(line) for line in f if line.strip()]
    if not history:
        raise ValueError(f"--elites {run}: metrics.jsonl is empty")
    out = {
        f"elite g{r['generation']}": np.asarray(r["best_coeffs"], np.float32)
        for r in history
    }
    out["es_mean"] = np.asarray(history[-1]["es_mean"], np.float32)
    return out


def candidates(
    cfg: search.SearchConfig,
    names: list[str],
    loss_files: list[str],
    elites: str = "",
) -> dict[str, np.ndarray | None]:
    """Coefficients of the losses to score, all of `cfg.family` and order, in the
    order given (`names`, then `loss_files`, then the `elites` of a run folder);
    ``None`` for a name of `losses.LOSSES` that is no member of the family (the
    shipped "arl" included, when it cannot be written in this family and order),
    which is trained by name."""
    members = family_members(cfg.family, cfg.order)
    n = losses.family_num_params(cfg.family, cfg.order)
    out: dict[str, np.ndarray | None] = {}

    def add(spec: compare.LossSpec, what: str) -> None:
        # Shipped and searched losses are read as the meta-test reads them; one of a
        # smaller polynomial family is written in this one (the same function).
        if spec.loss != cfg.family:
            try:
                params = losses.embed_coeffs(spec.loss, spec.params, cfg.family)
                spec = dataclasses.replace(spec, loss=cfg.family, params=tuple(params))
            except ValueError:
                pass
        if spec.loss != cfg.family or len(spec.params) != n:
            raise ValueError(
                f"{what} is {spec.loss} with {len(spec.params)} coefficients; "
                f"--family {cfg.family} --order {cfg.order} needs {n}"
            )
        out[spec.name] = np.asarray(spec.params, np.float32)

    for name in names:
        if name == "arl":
            shipped = compare.arl_spec("arl")
            try:
                add(shipped, "the shipped loss")
            except ValueError:  # not a member of this family: trained by name
                out[name] = None
        elif name in members:
            out[name] = members[name]
        elif name in losses.LOSSES:
            out[name] = None
        else:
            raise ValueError(
                f"--losses: {name!r} is neither a member of family {cfg.family!r} "
                f"({['arl', *members]}) nor a loss of arl_jax.losses "
                f"({sorted(losses.LOSSES)}); pass a search's result with --loss-file"
            )
    for path in loss_files:
        if not os.path.exists(path):
            raise ValueError(f"--loss-file {path}: not found")
        add(
            compare.arl_spec(compare.loss_file_label(path), path), f"--loss-file {path}"
        )
    if elites:
        for name, coeffs in run_elites(elites).items():
            add(compare.LossSpec(name, cfg.family, tuple(coeffs.tolist())),
                f"--elites {elites} ({name})")
    if not out:
        raise ValueError("nothing to score: give --losses or --loss-file")
    return out


def score(
    cfg: search.SearchConfig, cands: dict[str, np.ndarray | None], draws: int
) -> list[dict]:
    """Every candidate on `draws` generations of tasks: one row per task. The
    family's members train as one population; a loss given by name (coefficients
    ``None``) trains on the same tasks, noisy labels and seeds."""
    pool = search.TaskPool(cfg, parallel.make_mesh())
    family = [n for n in cands if cands[n] is not None]
    by_name = [n for n in cands if cands[n] is None]
    names = family + by_name
    pop = jnp.asarray(np.stack([cands[n] for n in family])) if family else None
    rows = []
    for g in tqdm(range(draws), desc="task draws", unit="draw"):
        gen = DRAW_OFFSET + g
        task_list = pool.sample(search.task_rng(cfg, gen), cfg.tasks)
        k_eval = search.generation_keys(cfg, gen)[1]
        parts = [pool.evaluate(pop, task_list, k_eval)] if family else []
        # A loss by name ignores the parameters: one dummy row, the same tasks,
        # noisy labels and seeds (TaskPool.evaluate_named went with --fitness margin).
        unused = jnp.zeros((1, 1), jnp.float32)
        parts += [pool.evaluate(unused, task_list, k_eval, loss=n) for n in by_name]
        res = {k: np.concatenate([p[k] for p in parts])
               for k in ("val_acc", "diverged")}
        val = res["val_acc"].mean(axis=-1)  # [pop, tasks]
        for j, t in enumerate(task_list):
            rows.append(
                {
                    "draw": g,
                    **search.task_record(t, cfg),
                    "val_acc": {n: float(val[i, j]) for i, n in enumerate(names)},
                    "diverged": {
                        n: bool(res["diverged"][i, j].any())
                        for i, n in enumerate(names)
                    },
                }
            )
    return rows


def summarise(rows: list[dict], names: list[str]) -> dict:
    """Mean accuracy per (dataset, noise) and overall (minus the fitness)."""
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(f"{r['dataset']} {r['noise']}", []).append(r)
    table = {
        g: {n: float(np.mean([r["val_acc"][n] for r in rs])) for n in names}
        for g, rs in sorted(groups.items())
    }
    mean = {n: float(np.mean([r["val_acc"][n] for r in rows])) for n in names}
    return {
        "by_task": table,
        "mean": mean,
        "ranking": sorted(names, key=lambda n: -mean[n]),
        "paired_reference": names[0],
        "paired": {n: paired(rows, n, names[0]) for n in names},
    }


def paired(rows: list[dict], name: str, ref: str) -> dict[str, float]:
    """Mean over tasks of ``name``'s accuracy minus ``ref``'s on the same task, and
    its standard error (NaN with fewer than two tasks)."""
    d = np.array([r["val_acc"][name] - r["val_acc"][ref] for r in rows], np.float64)
    se = float(d.std(ddof=1) / math.sqrt(len(d))) if len(d) > 1 else float("nan")
    return {"diff": float(d.mean()), "se": se}


def to_markdown(summary: dict, names: list[str], n_rows: int) -> str:
    """Accuracy (%) by dataset and noise; the best of each row in bold."""

    def line(label: str, vals: dict) -> str:
        # Compared as printed: equal accuracies summed in another order differ in
        # the last bits, and a tie should be marked on both sides.
        texts = {n: f"{100 * vals[n]:.2f}" for n in names}
        best = max(texts.values(), key=float)
        cells = [f"**{t}**" if t == best else t for t in texts.values()]
        return f"| {label} | " + " | ".join(cells) + " |"

    out = [
        f"Clean-validation accuracy (%), mean over the {n_rows} tasks drawn.",
        "",
        "| task | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    out += [line(g, v) for g, v in summary["by_task"].items()]
    out.append(line("**mean (= -fitness)**", summary["mean"]))
    if "paired" in summary:
        ref = summary["paired_reference"]
        cells = [
            "-" if n == ref else
            f"{100 * summary['paired'][n]['diff']:+.2f} ± "
            f"{100 * summary['paired'][n]['se']:.2f}"
            for n in names
        ]
        out.append(f"| **vs {ref}, paired by task (± s.e.)** | " + " | ".join(cells)
                   + " |")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=DESCRIPTION)
    cli.add_dataclass_args(parser, search.SearchConfig)
    parser.add_argument(
        "--losses",
        nargs="+",
        default=["arl", "ce_taylor", "mae", "nce_mae", "nce_rce"],
        help="losses to score (default: %(default)s)",
    )
    parser.add_argument(
        "--loss-file",
        nargs="+",
        default=[],
        help="best_loss.json files of searches to score as well",
    )
    parser.add_argument(
        "--elites",
        default="",
        help="a finished search's folder: score its generation elites and final "
        "CMA-ES mean as well",
    )
    parser.add_argument(
        "--draws",
        type=int,
        default=3,
        help="generations' worth of tasks to draw (default: 3)",
    )
    args = parser.parse_args(argv)
    cfg = cli.config_from_args(search.SearchConfig, args)
    try:
        cfg.validate()
        if args.draws < 1:
            raise ValueError(f"--draws must be >= 1, got {args.draws}")
        cands = candidates(cfg, args.losses, args.loss_file, args.elites)
        io.claim_folder(cfg.out, "score_pool", shlex.join(
            ["python", "-m", "experiments.score_pool",
             *(sys.argv[1:] if argv is None else argv)]))
    except ValueError as err:
        parser.error(str(err))
    names = list(cands)
    rows = score(cfg, cands, args.draws)
    summary = summarise(rows, names)
    out = {
        "command": "python -m experiments.score_pool "
        + shlex.join(sys.argv[1:] if argv is None else argv),
        "config": dataclasses.asdict(cfg),
        "coeffs": {n: None if cands[n] is None else cands[n].tolist() for n in names},
        "trained_by_name": [n for n in names if cands[n] is None],
        **summary,
        "rows": rows,
    }
    os.makedirs(cfg.out, exist_ok=True)
    io.atomic_write_json(os.path.join(cfg.out, "scores.json"), out)
    md = to_markdown(summary, names, len(rows))
    io.atomic_write_text(os.path.join(cfg.out, "scores.md"), md)
    print(md)
    return out


if __name__ == "__main__":
    main()
