"""Meta-test: the learned loss against every hand-designed loss on held-out data.

    python -m experiments.meta_test --dataset fashion_mnist \
        --noise symmetric:0.2,0.4,0.6,0.8 asymmetric:0.2,0.4 \
        --archs mlp,cnn --losses all --seeds 3

Every loss (the shipped ARL, any --loss-file from a search, and each baseline at its
published defaults) trains through the same engine, seeds vmapped. Writes into --out:
runs.csv (a row per run, appended as runs finish: an interrupted run keeps what it
finished and a rerun skips it), results.md (tables), accuracy_vs_noise.png,
summary.json and config.json. Clean-label rows are always included.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from typing import Any

import jax
import numpy as np
from tqdm import tqdm

from arl_jax import cli, compare, io, losses, models, parallel, report, tasks
from arl_jax import data as data_lib
from arl_jax import noise as noise_lib
from arl_jax.cli import field as _field

DESCRIPTION = __doc__.split("\n")[0]


@dataclasses.dataclass(frozen=True)
class MetaTestConfig:
    """Settings of a meta-test run; the flags mirror the fields."""

    dataset: str = _field("fashion_mnist", "dataset (never used in meta-training)")
    noise: tuple[str, ...] = _field(
        ("symmetric:0.2,0.4,0.6,0.8", "asymmetric:0.2,0.4"),
        "noise settings, " + tasks.NOISE_SYNTAX + " (fixed rates only; clean rows "
        "are always added)",
    )
    archs: tuple[str, ...] = _field(
        ("mlp", "cnn"), "architectures (mlp cnn or mlp,cnn)"
    )
    losses: tuple[str, ...] = _field(
        ("all",), "loss names, 'all', or 'none' (only the --loss-file losses)"
    )
    loss_file: tuple[str, ...] = _field((), "best_loss.json files of searches to add")
    seeds: int = _field(3, "training seeds per setting (vmapped)")
    steps: int = _field(2000, "training steps per run")
    batch_size: int = _field(128, "batch size")
    lr: float = _field(1e-3, "peak learning rate")
    schedule: str = _field("cosine", "learning-rate schedule: cosine (decay to 0) or "
                           "constant")
    optimizer: str = _field("adam", "adam or sgd (momentum 0.9)")
    standardize: bool = _field(False, "shift and scale the inputs by the training "
                               "set's mean and standard deviation")
    train_size: int = _field(0, "cap on training examples (0: all)")
    out: str = _field("runs/meta_test", "output folder")
    seed: int = _field(0, "seed (data split, noise, initialisation)")
    coordinator: str = _field("", parallel.HELP["coordinator"])
    num_processes: int = _field(0, parallel.HELP["num_processes"])
    process_id: int = _field(-1, parallel.HELP["process_id"])
    peer_timeout: int = _field(120, parallel.HELP["peer_timeout"])

    def __post_init__(self) -> None:
        # `--archs mlp,cnn` and `--archs mlp cnn` mean the same (so do the losses);
        # --noise keeps its commas, which separate the rates of one kind.
        for name in ("archs", "losses"):
            items = tuple(x for v in getattr(self, name) for x in v.split(",") if x)
            object.__setattr__(self, name, items)

    def validate(self) -> None:
        """Refuse bad settings before anything is trained; messages name the flag."""
        try:
            data_lib.check_name(self.dataset)
        except ValueError as err:
            raise ValueError(f"--dataset: {err}") from None
        for arch in self.archs:
            if arch not in models.ARCHS:
                raise ValueError(
                    f"--archs: unknown {arch!r}; valid: {', '.join(models.ARCHS)}"
                )
        if not self.losses:
            raise ValueError("--losses: empty; give loss names, all, or none")
        for name in self.losses:
            if name not in ("all", "none") and name not in losses.LOSSES:
                raise ValueError(
                    f"--losses: unknown {name!r}; "
                    f"valid: all, none, {', '.join(losses.LOSSES)}"
                )
        if "none" in self.losses:
            if len(self.losses) > 1:
                raise ValueError("--losses: none cannot be given with other names")
            if not self.loss_file:
                raise ValueError("--losses none runs only the --loss-file losses; "
                                 "give at least one --loss-file")
        for path in self.loss_file:
            if not os.path.exists(path):
                raise ValueError(f"--loss-file: {path} not found")
        noise_settings(self.noise)
        if self.optimizer not in tasks.RECIPE_OPTIMIZERS:
            raise ValueError(f"--optimizer: {self.optimizer!r}; valid: adam, sgd")
        if self.schedule not in tasks.RECIPE_SCHEDULES:
            raise ValueError(f"--schedule: {self.schedule!r}; valid: constant, cosine")
        if not 0 < self.lr < 1e30:  # finite in float32
            raise ValueError(f"--lr must be a positive finite number; got {self.lr}")
        if self.train_size < 0:
            raise ValueError(f"--train-size must be >= 0 (0: all); got "
                             f"{self.train_size}")
        for flag, items in (("--losses", self.losses), ("--archs", self.archs)):
            twice = sorted({x for x in items if items.count(x) > 1})
            if twice:
                raise ValueError(f"{flag}: {', '.join(twice)} given twice; list each "
                                 "once")
        labels = [compare.loss_file_label(p) for p in self.loss_file]
        twice = sorted({x for x in labels if labels.count(x) > 1})
        if twice:
            raise ValueError(f"--loss-file: {', '.join(twice)} given twice")
        for path in self.loss_file:
            try:
                losses.read_loss_file(path)
            except ValueError as err:
                raise ValueError(f"--loss-file: {err}") from None
        for flag in ("seeds", "steps", "batch_size"):
            if getattr(self, flag) < 1:
                raise ValueError(f"--{flag.replace('_', '-')} must be >= 1")
        parallel.check_distributed_flags(
            self.coordinator, self.num_processes, self.process_id, self.peer_timeout
        )


def noise_settings(items: tuple[str, ...]) -> list[tuple[str, float, str]]:
    """The noisy settings of `--noise` (`tasks.parse_noise_ranges`) as ``(kind,
    rate, spec)``, each at a fixed rate: ``symmetric:0.2,0.4`` -> [("symmetric", 0.2,
    "symmetric:0.2"), ("symmetric", 0.4, "symmetric:0.4")]; ``labels:NAME`` (a
    dataset's own noisy labels) has rate NaN until measured. Clean ("none") is left
    out, since its rows are always added. A range, or a setting twice, is refused."""
    out = []
    for r in tasks.parse_noise_ranges(items, "--noise"):
        if r.high > r.low:
            raise ValueError(
                f"--noise: {r.kind}:{r.low:g}-{r.high:g} is a range; a meta-test "
                f"trains at fixed rates: list them, e.g. {r.kind}:{r.low:g},{r.high:g}"
            )
        if r.kind == "labels":
            out.append(("labels", float("nan"), f"labels:{r.key}"))
        elif r.kind != "none":
            out.append((r.kind, r.low, f"{r.kind}:{r.low:g}"))
    specs = [s for _, _, s in out]
    twice = sorted({s for s in specs if specs.count(s) > 1})
    if twice:
        raise ValueError(f"--noise: {', '.join(twice)} given twice; list each once")
    return out


def loss_specs(cfg: MetaTestConfig) -> list[compare.LossSpec]:
    """ARL (shipped), searched losses, then the baselines."""
    specs = [compare.arl_spec("arl")]
    for path in cfg.loss_file:
        specs.append(compare.arl_spec(compare.loss_file_label(path), path))
    names = [n for n in losses.LOSSES if n != "arl"]
    if "all" not in cfg.losses:  # `none`: no baseline, no shipped loss
        names = [n for n in cfg.losses if n not in ("arl", "none")]
        if "arl" not in cfg.losses:
            specs = specs[1:]
    return specs + compare.baseline_specs(names)


RECIPE = report.RECIPE


def recipe_changes(out: str, rows: list[dict], cfg: MetaTestConfig) -> list[str]:
    """`--flag: before -> now` for each RECIPE field that differs from the run that
    wrote `out`'s rows ([] if there are none, or no config.json to compare with)."""
    path = os.path.join(out, "config.json")
    if not rows:
        return []
    saved = io.read_json_dict(path)
    if saved is None:
        raise ValueError(f"{out} has rows but no readable {path}: their recipe is "
                         "unknown, so new rows cannot join them; use another --out")
    return cli.config_changes(saved, cfg, RECIPE)


def learned_coeffs_in(out: str, rows: list[dict], specs) -> dict:
    """The family and coefficients behind each learned loss's rows in `out`.

    Rows already in runs.csv are skipped on a rerun, by loss name. If `arl` (or an
    `arl[RUN]`) now means other coefficients than when its rows were written (the
    shipped loss changed), reusing them would mix two losses under one name: that is
    an error, naming the rows to rename or drop. Returns the record for config.json:
    the earlier one updated with this run's learned losses.
    """
    path = os.path.join(out, "config.json")
    before = {}
    if os.path.exists(path):
        with open(path) as fh:
            before = json.load(fh).get("learned_losses", {})
    have = {r["loss"] for r in rows}
    now = dict(before)
    for spec in specs:
        if spec.loss not in losses.FAMILIES:
            continue
        entry = {"family": spec.loss, "coeffs": list(spec.params)}
        old = before.get(spec.name)
        if spec.name in have and old is not None and old != entry:
            raise ValueError(
                f"{spec.name!r} in {out}/runs.csv was run with {old['family']} "
                f"coeffs {old['coeffs']}, not the current {entry['coeffs']}: rename "
                f"those rows or remove them (or use another --out)"
            )
        now[spec.name] = entry
    return now


def main(argv: list[str] | None = None) -> list[dict]:
    """Run the grid; returns every row (finished earlier or now).

    On N processes (--coordinator) the runs of the grid are dealt out in turn, each
    process trains its runs on its own devices, and process 0 writes every row."""
    cfg, parser = cli.parse_config(MetaTestConfig, argv, DESCRIPTION)
    try:
        parallel.initialize_distributed(cfg.coordinator, cfg.num_processes,
                                        cfg.process_id, timeout_s=cfg.peer_timeout)
    except RuntimeError as err:
        sys.exit(f"error: {err}")
    return parallel.run_guarded(run, cfg, parser, argv)


def run(cfg: MetaTestConfig, parser: Any, argv: list[str] | None) -> list[dict]:
    """The meta-test of `main`, once the processes are started."""
    main_proc, say = parallel.is_main_process(), parallel.log
    args = sys.argv[1:] if argv is None else argv
    command = "python -m experiments.meta_test " + " ".join(args)
    csv_path = os.path.join(cfg.out, "runs.csv")
    old_rows, changes = [], []
    try:  # one owner a folder, before anything is read or trained
        if main_proc:
            io.claim_folder(cfg.out, "meta_test", command)
            old_rows = report.read_rows(csv_path)
            changes = recipe_changes(cfg.out, old_rows, cfg)
        specs = loss_specs(cfg)
    except ValueError as err:
        parser.error(str(err))
    if changes:
        parser.error(
            f"{cfg.out} holds rows of another recipe ({'; '.join(changes)}); "
            "rerun with the same settings to extend it, or use another --out"
        )
    try:
        recorded = learned_coeffs_in(cfg.out, old_rows, specs)
    except ValueError as err:
        parser.error(str(err))
    config = {k: list(v) if isinstance(v, tuple) else v
              for k, v in dataclasses.asdict(cfg).items()}  # fmt: skip
    config["learned_losses"] = recorded
    # learned_losses reads --out, which only process 0 needs to see.
    record = {cli.flag_name(k): v for k, v in config.items()
              if k not in ("process_id", "learned_losses")}  # fmt: skip
    record["arl_jax sources"] = parallel.source_hash()
    try:
        parallel.check_processes_agree(record)
    except ValueError as err:
        sys.exit(f"error: {err}")
    if main_proc:
        io.atomic_write_json(os.path.join(cfg.out, "config.json"), config)
    try:
        clean = data_lib.load(cfg.dataset, seed=cfg.seed)
    except (FileNotFoundError, ValueError, RuntimeError) as err:
        parser.error(f"--dataset {cfg.dataset}: {err}")
    clean = tasks.subsample(clean, cfg.train_size, 0, 0, cfg.seed)
    if cfg.standardize:
        clean = data_lib.standardize(clean)
    if len(clean.y_train) < cfg.batch_size:
        parser.error(f"--batch-size {cfg.batch_size} is larger than the "
                     f"{len(clean.y_train)} training examples of {cfg.dataset}: lower "
                     "it or raise --train-size")
    archs = [a for a in cfg.archs if models.arch_supports(a, clean.input_shape)]
    if not archs:
        parser.error(f"--archs: none of {', '.join(cfg.archs)} accepts "
                     f"{cfg.dataset}'s input {clean.input_shape}")
    for a in set(cfg.archs) - set(archs):
        say(f"skipping --archs {a}: it does not accept input {clean.input_shape}")
    settings = [("none", 0.0, "none")] + noise_settings(cfg.noise)
    for kind, _, spec in settings:  # before any training: every setting applies
        if kind == "labels" and spec[len("labels:"):] not in clean.noisy_labels:
            have = ", ".join(clean.noisy_labels) or "none"
            parser.error(f"--noise {spec}: {cfg.dataset} has no such noisy labels "
                         f"(it has: {have})")
        if kind == "asymmetric" and not tasks.noise_fits(kind, cfg.dataset):
            parser.error(f"--noise {spec}: {cfg.dataset} has no asymmetric mapping; "
                         "use symmetric, pairflip, instance or nearest noise")
    done = {(r["arch"], r["noise"], r["loss"]) for r in old_rows}
    writer = report.RowWriter(csv_path) if main_proc else None
    recipe = tasks.Recipe(cfg.optimizer, cfg.lr, cfg.schedule, cfg.steps,
                          cfg.batch_size, cfg.standardize)
    comp = compare.Comparer(recipe)
    root = jax.random.key(cfg.seed)
    todo = [(a, i, sp) for a in archs for i in range(len(settings)) for sp in specs]
    todo = [t for t in todo if (t[0], settings[t[1]][2], t[2].name) not in done]
    procs, me = jax.process_count(), jax.process_index()
    if procs > 1:  # process 0's list (it alone reads runs.csv), dealt out in turns
        by_key = {(a, i, sp.name): (a, i, sp) for a, i, sp in todo}
        keys = [[a, i, sp.name] for a, i, sp in todo]
        chosen = json.loads(parallel.allgather_text(json.dumps(keys))[0])
        todo = [by_key[tuple(k)] for k in chosen]
    bar = tqdm(total=len(todo), desc="meta-test", unit="run", disable=not main_proc)
    for turn in range(0, len(todo), procs):
        mine = todo[turn + me : turn + me + 1]
        rows = [r for arch, i, spec in mine for r in train_rows(
            cfg, comp, clean, root, settings, arch, i, spec)]  # fmt: skip
        if procs > 1:  # every process's rows of this turn, in process order
            every = parallel.allgather_text(json.dumps(rows))
            rows = [r for text in every for r in json.loads(text)]
        if writer is not None:
            writer.write(rows)
        bar.update(min(procs, len(todo) - turn))
    bar.close()
    if writer is None:
        return []
    writer.close()
    rows = report.read_rows(csv_path)
    reference = learned_reference(rows)
    summary = summarise(rows, reference)
    tables = report.markdown_tables(rows)
    if reference:
        paired = report.paired_tables(rows, reference)
        tables += ("\n" + paired) if paired else ""
    opt = "SGD (momentum 0.9)" if cfg.optimizer == "sgd" else "Adam"
    header = (
        f"# Meta-test on {cfg.dataset}\n\n"
        f"Command: `{command}`\n\n"
        f"Devices: {len(jax.devices())} x {jax.devices()[0].device_kind}; "
        f"{cfg.steps} steps, batch {cfg.batch_size}, {opt} lr {cfg.lr} "
        f"({cfg.schedule}){', standardised inputs' if cfg.standardize else ''}, "
        f"{cfg.seeds} seed{'s' if cfg.seeds > 1 else ''}.\n\n"
    )
    io.atomic_write_text(os.path.join(cfg.out, "results.md"), header + tables)
    report.plot_accuracy_vs_noise(rows, os.path.join(cfg.out, "accuracy_vs_noise.png"))
    io.atomic_write_json(os.path.join(cfg.out, "summary.json"), summary)
    say(tables)
    return rows


def train_rows(cfg: MetaTestConfig, comp: compare.Comparer, clean: Any, root: Any,
               settings: list, arch: str, i: int, spec: compare.LossSpec
               ) -> list[dict]:
    """One run of the grid: `spec` on `arch` at noise setting `i`; a row a seed."""
    kind, rate, noise = settings[i]
    # Same noisy labels and the same seeds for every loss of a setting.
    k_noise, k_train = jax.random.split(jax.random.fold_in(root, i))
    noisy = tasks.noisy_task_data(k_noise, clean, noise)
    if kind == "labels":  # the rate the dataset's own labels realise
        rate = noise_lib.realised_rate(clean.y_train, noisy.y_train)
    keys = jax.random.split(k_train, cfg.seeds)
    t0 = time.time()
    res = comp.run(spec, arch, noisy, keys)
    secs = (time.time() - t0) / cfg.seeds
    return [
        {
            "dataset": cfg.dataset,
            "arch": arch,
            "noise": noise,
            "kind": kind,
            "rate": float(rate),
            "loss": spec.name,
            "seed": s,
            "val_acc": float(res["val_acc"][s]),
            "test_acc": float(res["test_acc"][s]),
            "train_loss": float(res["train_loss"][s]),
            "diverged": bool(res["diverged"][s]),
            "seconds": round(secs, 3),
        }  # fmt: skip
        for s in range(cfg.seeds)
    ]


def learned_reference(rows: list[dict]) -> str | None:
    """The learned loss the others are compared with: the shipped `arl` if it ran,
    else the first `arl[...]` row's loss (None if no learned loss ran)."""
    names = dict.fromkeys(r["loss"] for r in rows)
    learned = [n for n in names if report.is_learned(n)]
    return "arl" if "arl" in learned else (learned[0] if learned else None)


def summarise(rows: list[dict], ref: str | None = None) -> dict:
    """Per architecture: each loss's mean test accuracy over the noisy settings, the
    losses ranked by it, and every loss minus the learned loss `ref` (default:
    `learned_reference`) seed by seed (`report.paired_differences`)."""
    agg = report.aggregate(rows)
    ref = ref or learned_reference(rows)
    paired = report.paired_differences(rows, ref) if ref else {}
    out = {}
    for arch in sorted({r["arch"] for r in rows}):
        noisy = sorted({r["noise"] for r in rows if r["arch"] == arch} - {"none"})
        names = sorted({r["loss"] for r in rows if r["arch"] == arch})
        means = {
            n: float(
                np.mean([agg[(arch, z, n)][0] for z in noisy if (arch, z, n) in agg])
            )
            for n in names
        }
        entry = {"reference": ref, "mean_over_noisy": means,
                 "ranking": sorted(means, key=means.get, reverse=True)}
        if arch in paired:
            entry["paired_minus_reference"] = paired[arch]
        out[arch] = entry
    return out


if __name__ == "__main__":
    main()
