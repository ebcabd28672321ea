"""Learn a reusable noise-robust loss with CMA-ES (Gao et al., ICCV 2021).

    python -m experiments.meta_search --pop 64
    python -m experiments.meta_search --pop 8 --generations 2 --datasets synthetic
    python -m experiments.meta_search --resume runs/search     # continue a killed run

Writes into `--out`: config.json, metrics.jsonl (a line a generation), checkpoint.npz
(after every generation), best_loss.json, selection.json (the re-scored candidates),
fitness.png, learned_loss.png, heldout.json.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import hashlib
import json
import os
import shlex
import signal
import sys
import time
from collections.abc import Callable
from importlib import metadata
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from arl_jax import cli, compare, io, losses, parallel, plotting, search, tasks
from arl_jax import data as data_lib

DESCRIPTION = __doc__.split("\n")[0]


def versions() -> dict[str, str]:
    """Versions of the packages a result depends on."""
    out = {"python": sys.version.split()[0]}
    for pkg in ("arl_jax", "jax", "jaxlib", "flax", "optax", "evosax", "numpy"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "unknown"
    return out


def resolve_config(argv: list[str] | None) -> search.SearchConfig:
    """Parse flags; with `--resume DIR` the run's saved config wins."""
    cfg, parser = cli.parse_config(search.SearchConfig, argv, DESCRIPTION)
    if cfg.resume:
        path = os.path.join(cfg.resume, "config.json")
        if not os.path.exists(path):
            parser.error(f"--resume: {path} not found; is {cfg.resume!r} a run folder?")
        saved = io.read_json_dict(path)
        if saved is None:
            parser.error(f"--resume: {path} is unreadable or not a search's config; "
                         "this folder cannot be resumed: choose another --out")
        # How the processes are started is this command's, not the saved run's (and
        # fields of older versions, such as `distributed`, are dropped).
        names = {f.name for f in dataclasses.fields(cfg)}
        saved = {k: v for k, v in saved.items() if k in names}
        # Flags given with --resume: the continuable ones (more generations, the
        # final selection and held-out check) are honoured; any other that differs
        # from the run's own settings is refused, never silently ignored.
        given = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)
                 if f.name not in ("resume", "out", *PROCESS_FLAGS)
                 and getattr(cfg, f.name) != f.default}  # fmt: skip
        clash = cli.config_changes(saved, cfg, [n for n in given
                                                if n not in CONTINUABLE])
        if clash:
            parser.error(f"--resume {cfg.resume}: the run was made with other settings "
                         f"({'; '.join(clash)}); resume without those flags, or start "
                         "a new search in another --out")
        saved.update({k: v for k, v in given.items() if k in CONTINUABLE})
        saved.update({k: getattr(cfg, k) for k in PROCESS_FLAGS},
                     resume=cfg.resume, out=cfg.resume)
        try:
            cfg = search.SearchConfig(**saved)
            cfg.validate()
        except (TypeError, ValueError) as err:
            parser.error(f"--resume: {path}: {err}")
    elif os.path.exists(os.path.join(cfg.out, io.CHECKPOINT)):
        # Rerunning the same command continues the search in --out (after a kill, or
        # with more --generations); other settings would silently continue, or crash
        # in, a search that was run with the old ones.
        try:
            changes = search_changes(cfg.out, cfg)
        except ValueError as err:
            parser.error(str(err))
        if changes:
            parser.error(
                f"--out {cfg.out} holds a search run with other settings "
                f"({'; '.join(changes)}): continue it with --resume {cfg.out}, "
                "or choose another --out"
            )
    return cfg


# Settings that a search in --out may be continued with when they differ: more
# generations, and what happens after the generations (selection, held-out check).
# How many processes run the search does not change what it computes.
PROCESS_FLAGS = ("coordinator", "num_processes", "process_id", "peer_timeout")
CONTINUABLE = ("generations", "select_tasks", "holdout", "holdout_noise",
               "holdout_steps", "out", "resume", *PROCESS_FLAGS)  # fmt: skip


def search_identity(cfg: search.SearchConfig) -> dict:
    """The settings that make a search what it is (all but `CONTINUABLE`): a
    checkpoint records their hash, and resumes only under the same."""
    identity = {k: v for k, v in dataclasses.asdict(cfg).items()
                if k not in CONTINUABLE}
    # Settings at their defaults from before they existed: older checkpoints match.
    if not cfg.recipes:
        del identity["recipes"]
    if not cfg.train_sizes:
        del identity["train_sizes"]
    return identity


def search_changes(run_dir: str, cfg: search.SearchConfig) -> list[str]:
    """`--flag: before -> now` for each setting of `cfg` that differs from the search
    recorded in `run_dir`/config.json, except those in `CONTINUABLE`.

    Raises:
      ValueError: config.json is missing or unreadable (the checkpoint beside it
        cannot be matched to any settings).
    """
    path = os.path.join(run_dir, "config.json")
    before = io.read_json_dict(path)
    if before is None:
        raise ValueError(f"--out {run_dir} holds a checkpoint but no readable "
                         f"{path}, so its settings are unknown: choose another "
                         "--out (or delete the folder)")
    names = [f.name for f in dataclasses.fields(cfg) if f.name not in CONTINUABLE]
    return cli.config_changes(before, cfg, names)


def write_metrics(run_dir: str, history: list[dict]) -> None:
    """metrics.jsonl holds exactly the checkpointed generations (rewritten whole)."""
    text = "".join(json.dumps(r) + "\n" for r in history)
    io.atomic_write_text(os.path.join(run_dir, "metrics.jsonl"), text)


def plot_fitness(history: list[dict], path: str) -> None:
    """Clean-validation accuracy per generation: the fittest candidate's and the
    population's mean (records written before `best_val_acc` existed: -fitness)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gens = [r["generation"] for r in history]
    fig, ax = plt.subplots(figsize=(6, 4))
    best = [r.get("best_val_acc", -r["best_fitness"]) for r in history]
    mean = [r.get("mean_val_acc", -r["mean_fitness"]) for r in history]
    ax.plot(gens, best, "o-", label="fittest candidate")
    ax.plot(gens, mean, "s--", label="population mean")
    ax.set_xlabel("generation")
    ax.set_ylabel("mean clean validation accuracy")
    ax.set_title("Meta-search progress (tasks redrawn every generation)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def heldout_comparison(
    cfg: search.SearchConfig, coeffs: np.ndarray, say: Callable = print
) -> dict[str, dict] | None:
    """Learned loss vs CE and GCE on `cfg.holdout`, which the search never saw."""
    if not cfg.holdout:
        return None
    try:
        clean = data_lib.load(cfg.holdout, seed=cfg.seed)
    except (FileNotFoundError, ValueError, RuntimeError) as err:
        say(f"held-out comparison skipped: {err}")
        return None
    clean = tasks.subsample(clean, 10_000, 2_000, 0, cfg.seed)
    key = jax.random.fold_in(jax.random.key(cfg.seed), 2 * 10**6)
    k_noise, k_train = jax.random.split(key)
    noisy = tasks.noisy_task_data(k_noise, clean, cfg.holdout_noise)
    arch = next(a for a in ("mlp-s", "mlp") if a in tasks.models.ARCHS)
    recipe = tasks.Recipe("adam", cfg.lr, "cosine", cfg.holdout_steps, cfg.batch_size)
    comp = compare.Comparer(recipe)
    specs = [
        compare.LossSpec("learned", cfg.family, tuple(float(c) for c in coeffs)),
        compare.LossSpec("cross_entropy", "cross_entropy"),
        compare.LossSpec("gce", "gce"),
    ]
    keys = jax.random.split(k_train, max(cfg.seeds, 2))
    runs = {s.name: comp.run(s, arch, noisy, keys) for s in specs}
    summary = compare.summarise(runs)
    say(
        f"\nHeld-out: {cfg.holdout}, {cfg.holdout_noise}, {arch}, "
        f"{cfg.holdout_steps} steps, {len(keys)} seeds"
    )
    say(f"{'loss':<16}{'test acc':>10}{'std':>8}")
    for name, s in summary.items():
        say(
            f"{name:<16}{100 * s['test_acc_mean']:>9.2f}%"
            f"{100 * s['test_acc_std']:>7.2f}"
        )
    acc = {name: s["test_acc_mean"] for name, s in summary.items()}
    if acc["learned"] < acc["cross_entropy"]:
        gap = 100 * (acc["cross_entropy"] - acc["learned"])
        say(f"warning: the learned loss is {gap:.2f} points below cross-entropy on "
              f"{cfg.holdout}: it did not transfer there (experiments.ship_loss "
              "refuses it without --force)")
    return {
        "dataset": cfg.holdout,
        "noise": cfg.holdout_noise,
        "arch": arch,
        "steps": cfg.holdout_steps,
        "seeds": len(keys),
        "results": summary,
    }


def main(argv: list[str] | None = None) -> dict:
    """Run (or resume) a search; returns the best-loss record."""
    cfg = resolve_config(argv)
    parallel.split_cpu(cfg.pop)  # before JAX starts: a CPU device a core
    try:
        parallel.initialize_distributed(cfg.coordinator, cfg.num_processes,
                                        cfg.process_id, timeout_s=cfg.peer_timeout)
    except RuntimeError as err:
        sys.exit(f"error: {err}")
    return parallel.run_guarded(run, cfg, argv)


def processes_record(cfg: search.SearchConfig, checkpoint: str) -> dict:
    """What every process of one run must hold alike: the resolved settings (but
    --process-id), the code and package versions, and the checkpoint it resumes."""
    record = {cli.flag_name(k): v for k, v in dataclasses.asdict(cfg).items()
              if k != "process_id"}  # fmt: skip
    record["arl_jax sources"] = parallel.source_hash()
    record.update({f"version of {k}": v for k, v in versions().items()})
    record["checkpoint"] = checkpoint
    return record


def checkpoint_digest(state: Any, history: list[dict]) -> str:
    """`generation N, <hash>` of a loaded checkpoint (its state and history)."""
    h = hashlib.sha256(json.dumps(history, sort_keys=True).encode())
    for leaf in jax.tree.leaves(state):
        h.update(np.asarray(leaf).tobytes())
    return f"generation {len(history)}, {h.hexdigest()[:16]}"


def run(cfg: search.SearchConfig, argv: list[str] | None) -> dict:
    """The search of `main`, once the processes are started."""
    main_proc = parallel.is_main_process()
    say = parallel.log
    run_dir = cfg.out
    command = "python -m experiments.meta_search " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)
    )
    if main_proc:  # one owner a folder: refused before anything is loaded
        try:
            io.claim_folder(run_dir, "meta_search", command)
        except ValueError as err:
            sys.exit(f"error: {err}")
    es, es_params = search.make_strategy(cfg)
    state = search.init_es_state(cfg, es, es_params, jax.random.key(cfg.seed))
    history: list[dict] = []
    run_hash = io.config_hash(search_identity(cfg))
    try:
        saved = io.load_checkpoint(run_dir, state)
    except ValueError as err:
        sys.exit(f"error: {err}")
    if saved is not None:
        state, record = saved
        if record.get("config_hash") != run_hash:
            sys.exit(f"error: {run_dir}/{io.CHECKPOINT} belongs to a search with other "
                     "settings; continue it with its own settings (--resume), or use "
                     "another --out")
        history = record["history"]
        if len(history) > cfg.generations:
            sys.exit(f"error: {run_dir} has {len(history)} generations already; "
                     f"--generations must be at least {len(history)}")
    # Every process must run the same search from the same checkpoint.
    digest = "none" if saved is None else checkpoint_digest(state, history)
    try:
        parallel.check_processes_agree(processes_record(cfg, digest))
    except ValueError as err:
        sys.exit(f"error: {err}")
    if saved is not None:
        say(f"resuming {run_dir} at generation {len(history)}")
    elif cfg.resume:
        say(f"no checkpoint in {run_dir} yet: starting from generation 0")
    if main_proc:
        io.atomic_write_json(
            os.path.join(run_dir, "config.json"), dataclasses.asdict(cfg)
        )
    mesh = parallel.make_mesh()
    try:  # loads the meta-train data: a problem there is said before any compile
        pool = search.TaskPool(cfg, mesh)
    except (FileNotFoundError, ValueError) as err:
        sys.exit(f"error: {err}")
    procs = jax.process_count()
    say(
        f"devices: {len(jax.devices())} x {jax.devices()[0].platform}"
        + (f" over {procs} processes" if procs > 1 else "")
        + f"; pop {cfg.pop}, {cfg.num_params} coefficients ({cfg.family}, order "
        f"{cfg.order}); tasks/gen {cfg.tasks}, seeds {cfg.seeds}"
    )
    t0 = time.time()
    bar = tqdm(
        range(len(history), cfg.generations),
        initial=len(history),
        total=cfg.generations,
        desc="generation",
        unit="gen",
        disable=not main_proc,
    )
    for g in bar:
        state, record = search.run_generation(cfg, es, es_params, state, pool, g)
        record["elapsed_s"] = round(time.time() - t0, 2)
        history.append(record)
        if main_proc:
            io.save_checkpoint(run_dir, parallel.to_host(state),
                               {"config_hash": run_hash, "history": history})
            write_metrics(run_dir, history)
        if os.environ.get("ARL_JAX_TEST_KILL_AFTER") == str(len(history)):
            # Tests: SIGKILL this process right after a generation's checkpoint.
            os.kill(os.getpid(), signal.SIGKILL)
        bar.set_postfix(
            best=f"{record['best_val_acc']:.3f}",
            mean=f"{record['mean_val_acc']:.3f}",
            div=f"{record['diverged_fraction']:.2f}",
        )
        if record["all_diverged"]:
            say(f"warning: generation {g}: every candidate diverged on every task; "
                "the scores say nothing (is --lr too large?)")
    bar.close()
    if history and all(r.get("all_diverged") for r in history):
        say("warning: every candidate of every generation diverged: the loss chosen "
            "below is arbitrary")

    # Pick the final loss: re-score the generation elites and the final mean.
    origins = [("elite", r["generation"]) for r in history]
    origins = (origins + [("es_mean", len(history) - 1)])[-cfg.pop :]
    candidates = np.array(
        [r["best_coeffs"] for r in history] + [np.asarray(state.mean)]
    )[-cfg.pop :]
    if cfg.select_tasks > 0:
        idx, sel_fitness = search.select_final(cfg, pool, candidates)
    else:
        idx, sel_fitness = len(candidates) - 1, np.full(len(candidates), np.nan)
    # Every re-scored candidate, so the final choice can be audited.
    scored = [
        {
            "origin": origin,
            "generation": gen,
            "coeffs": [float(c) for c in cand],
            "fitness": float(fit),
        }
        for (origin, gen), cand, fit in zip(origins, candidates, sel_fitness)
    ]
    coeffs = candidates[idx]
    best = {
        "family": cfg.family,
        "order": cfg.order,
        "coeffs": scored[idx]["coeffs"],
        "fitness": scored[idx]["fitness"],
        "fitness_definition": f"{search.FITNESS_MODES[cfg.fitness]} on "
        f"{cfg.select_tasks} fixed selection tasks",
        "generation": scored[idx]["generation"],
        "origin": scored[idx]["origin"],
        "command": command,
        "seed": cfg.seed,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "versions": versions(),
        "devices": f"{len(jax.devices())} x {jax.devices()[0].device_kind}",
        "search_seconds": round(time.time() - t0, 1),
        "provisional": False,
    }
    selection = {
        "definition": best["fitness_definition"],
        "chosen": idx,
        "candidates": scored,
    }
    held = heldout_comparison(cfg, coeffs, say)
    if main_proc:
        io.atomic_write_json(os.path.join(run_dir, "best_loss.json"), best)
        io.atomic_write_json(os.path.join(run_dir, "selection.json"), selection)
        if held is not None:
            io.atomic_write_json(os.path.join(run_dir, "heldout.json"), held)
        plot_fitness(history, os.path.join(run_dir, "fitness.png"))
        panels = {"cross_entropy": losses.get_loss("cross_entropy"),
                  "gce (q=0.7)": losses.get_loss("gce")}
        # family_loss is per example: a batch term (the prior) is not in the curve.
        batch = losses.FAMILIES[cfg.family].batch_term is not None
        name = "learned (per-example part)" if batch else "learned"
        panels[name] = functools.partial(losses.family_loss, cfg.family,
                                         jnp.asarray(coeffs, jnp.float32))
        plotting.plot_losses(panels, os.path.join(run_dir, "learned_loss.png"))
    say(
        f"\nbest loss ({best['origin']}): {cfg.family} coeffs "
        f"{np.array2string(coeffs, precision=4)}; selection fitness "
        f"{best['fitness']:.4f}; written to {run_dir}/best_loss.json"
    )
    return best


if __name__ == "__main__":
    main()
