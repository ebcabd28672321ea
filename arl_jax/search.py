"""The meta-search: CMA-ES over loss coefficients, scored by noisy-label training.

One generation is ask -> evaluate -> tell (evosax CMA-ES). Evaluate trains every
candidate of the population on the generation's tasks (vmapped over the population and
seeds, sharded over devices) and scores it by clean-validation accuracy. Fitness, which
CMA-ES minimises, is minus the mean clean-validation accuracy over the generation's
tasks and seeds (Gao et al. 2021), or with `--fitness rank` minus the candidate's mean
rank over the tasks (`fitness_from`). A diverged candidate scores accuracy 0.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np
import scipy.stats

from arl_jax import data as data_lib
from arl_jax import inner, losses, models, parallel, tasks
from arl_jax.cli import field as _field

if TYPE_CHECKING:  # evosax computes arrays when imported, which would start JAX's
    # backend before jax.distributed.initialize: it is imported in make_strategy.
    from evosax.algorithms import CMA_ES

_NOISE_SYNTAX = tasks.NOISE_SYNTAX  # the class body's `tasks` is a field
_RECIPE_SYNTAX = tasks.RECIPE_SYNTAX
FITNESS_MODES = {
    "mean": "minus mean clean-validation accuracy",
    "rank": "minus the mean over tasks of the clean-validation accuracy rank in the "
    "population, 0 the worst and 1 the best, so every task weighs the same however "
    "much its accuracies spread",
}


@dataclasses.dataclass(frozen=True)
class SearchConfig:
    """Every setting of a meta-search; `experiments.meta_search` flags mirror it."""

    pop: int = _field(32, "CMA-ES population size (>= 4)")
    generations: int = _field(20, "number of CMA-ES generations")
    family: str = _field(
        "taylor_nce",
        "loss family searched: " + " | ".join(losses.FAMILIES),
    )
    order: int = _field(4, "polynomial order K of the taylor families (>= 1)")
    sigma: float = _field(0.5, "initial CMA-ES step size")
    init: str = _field(
        "", "initial mean, comma-separated coefficients (default: family_init, CE-like)"
    )
    tasks: int = _field(6, "tasks (dataset, arch, noise) drawn per generation")
    seeds: int = _field(1, "inner training seeds per task")
    datasets: str = _field("mnist1d,digits,synthetic", "meta-train datasets")
    archs: str = _field("mlp", "meta-train architectures")
    noise: tuple[str, ...] = _field(
        ("symmetric:0.2,0.4,0.6,0.8", "asymmetric:0.2,0.4"),
        "meta-train noise: " + _NOISE_SYNTAX,
    )
    stratify: bool = _field(
        True,
        "cycle each generation's tasks through the --noise ranges in order, so every "
        "range is scored in every generation that has as many tasks as ranges",
    )
    recipes: tuple[str, ...] = _field(
        (),
        "training recipes, one drawn per task: " + _RECIPE_SYNTAX + " (default: "
        "one, Adam with cosine decay from --lr, --steps, --batch-size)",
    )
    steps: int = _field(400, "inner training steps per run")
    batch_size: int = _field(128, "inner training batch size")
    lr: float = _field(2e-3, "inner Adam learning rate (cosine decay)")
    train_size: int = _field(1000, "training examples per task (0: all)")
    train_sizes: str = _field(
        "", "training-set sizes, one drawn per task, e.g. 250,1000,4000 (default: "
        "--train-size)"
    )
    val_size: int = _field(500, "clean validation examples per task (0: all)")
    fitness: str = _field(
        "mean",
        "how a generation's tasks combine into fitness: "
        + " | ".join(f"{k} ({v})" for k, v in FITNESS_MODES.items()),
    )
    select_tasks: int = _field(
        6, "fixed tasks on which the elites are re-scored to pick the final loss"
    )
    holdout: str = _field(
        "fashion_mnist", "held-out dataset for the final comparison ('' to skip)"
    )
    holdout_noise: str = _field("symmetric:0.6", "noise of the held-out comparison")
    holdout_steps: int = _field(2000, "inner steps of the held-out comparison")
    out: str = _field("runs/search", "run folder (outputs, checkpoints)")
    resume: str = _field("", "continue the killed run in this folder")
    seed: int = _field(0, "seed of the whole search")
    coordinator: str = _field("", parallel.HELP["coordinator"])
    num_processes: int = _field(0, parallel.HELP["num_processes"])
    process_id: int = _field(-1, parallel.HELP["process_id"])
    peer_timeout: int = _field(120, parallel.HELP["peer_timeout"])

    def validate(self) -> None:
        """Refuse bad settings before anything compiles; the message names the flag."""
        if self.pop < 4:
            raise ValueError(f"--pop must be >= 4 (got {self.pop})")
        if self.family not in losses.FAMILIES:
            raise ValueError(
                f"--family must be one of {sorted(losses.FAMILIES)} "
                f"(got {self.family!r})"
            )
        if self.order < 1:
            raise ValueError(f"--order must be >= 1 (got {self.order})")
        for flag in ("generations", "tasks", "seeds", "steps", "batch_size"):
            if getattr(self, flag) < 1:
                raise ValueError(f"--{flag.replace('_', '-')} must be >= 1")
        # Checked in float32, the dtype CMA-ES and the inner runs use them in.
        big = float(np.finfo(np.float32).max) / 1e3
        if not (0 < self.sigma < big):
            raise ValueError(f"--sigma must be a positive float32 number below "
                             f"{big:.0e} (got {self.sigma})")
        if not (0 < self.lr < big):
            raise ValueError(f"--lr must be a positive float32 number (got {self.lr})")
        if self.init:
            try:
                init = [float(v) for v in self.init.split(",")]
            except ValueError:
                raise ValueError(
                    f"--init: not a list of numbers: {self.init!r}"
                ) from None
            if len(init) != self.num_params:
                raise ValueError(
                    f"--init: family {self.family!r} of order {self.order} needs "
                    f"{self.num_params} numbers (got {len(init)})"
                )
            if not all(abs(v) < big for v in init):  # NaN fails too
                raise ValueError(f"--init: every number must be finite and below "
                                 f"{big:.0e} in magnitude (got {self.init!r})")
        parallel.check_distributed_flags(
            self.coordinator, self.num_processes, self.process_id, self.peer_timeout
        )
        if self.fitness not in FITNESS_MODES:
            raise ValueError(
                f"--fitness must be one of {', '.join(FITNESS_MODES)} "
                f"(got {self.fitness!r})"
            )
        if self.select_tasks < 0 or self.train_size < 0 or self.val_size < 0:
            raise ValueError("--select-tasks, --train-size, --val-size must be >= 0")
        names = tasks.split_list(self.datasets)
        if not names:
            raise ValueError("--datasets: give at least one dataset")
        for name in names:
            try:
                data_lib.check_name(name)
            except ValueError as err:
                raise ValueError(f"--datasets: {err}") from None
        archs = tasks.split_list(self.archs)
        if not archs:
            raise ValueError("--archs: give at least one architecture")
        for arch in archs:
            if arch not in models.ARCHS:
                raise ValueError(
                    f"--archs: unknown architecture {arch!r}; "
                    f"valid: {', '.join(models.ARCHS)}"
                )
        for text in self.recipes:
            tasks.parse_recipe(text, "--recipes")
        if self.train_sizes:
            tasks.parse_train_sizes(self.train_sizes)
            default = next(f.default for f in dataclasses.fields(self)
                           if f.name == "train_size")
            if self.train_size != default:
                raise ValueError("--train-size and --train-sizes: give one of them")
        ranges = tasks.parse_noise_ranges(self.noise, "--noise")
        for name in names:
            if not any(tasks.noise_fits(r.kind, name) for r in ranges):
                raise ValueError(
                    f"--noise: no noise kind in {' '.join(self.noise)!r} applies to "
                    f"{name!r} "
                    "(asymmetric noise has no mapping for it)"
                )
        if self.holdout:  # checked now: it is used only after the whole search
            try:
                data_lib.check_name(self.holdout)
            except ValueError as err:
                raise ValueError(f"--holdout: {err}") from None
            ranges = tasks.parse_noise_ranges(self.holdout_noise, "--holdout-noise")
            if len(ranges) != 1 or ranges[0].high > ranges[0].low:
                raise ValueError(f"--holdout-noise: one setting at a fixed rate, e.g. "
                                 f"symmetric:0.6 (got {self.holdout_noise!r})")
            if not tasks.noise_fits(ranges[0].kind, self.holdout):
                raise ValueError(f"--holdout-noise {self.holdout_noise}: "
                                 f"{self.holdout} has no asymmetric mapping; use "
                                 "another kind, or --holdout ''")
            if self.holdout_steps < 1:
                raise ValueError(f"--holdout-steps must be >= 1 (got "
                                 f"{self.holdout_steps}); --holdout '' skips the "
                                 "held-out check")

    @property
    def recipe_list(self) -> tuple[tasks.Recipe, ...]:
        """The recipes tasks draw from: `--recipes`, else the one of the flags."""
        if self.recipes:
            return tuple(tasks.parse_recipe(t) for t in self.recipes)
        return (tasks.Recipe("adam", self.lr, "cosine", self.steps, self.batch_size),)

    @property
    def train_size_list(self) -> tuple[int, ...]:
        """The training-set sizes tasks draw from: `--train-sizes`, else
        `--train-size`."""
        if self.train_sizes:
            return tasks.parse_train_sizes(self.train_sizes)
        return (self.train_size,)

    @property
    def num_params(self) -> int:
        """Length of a candidate's coefficient vector."""
        return losses.family_num_params(self.family, self.order)


def make_strategy(cfg: SearchConfig) -> tuple[CMA_ES, Any]:
    """evosax CMA-ES for `cfg.num_params` coefficients, with `std_init = sigma`."""
    from evosax.algorithms import CMA_ES

    es = CMA_ES(population_size=cfg.pop, solution=jnp.zeros(cfg.num_params))
    params = es.default_params.replace(std_init=jnp.float32(cfg.sigma))
    return es, params


def init_es_state(cfg: SearchConfig, es: CMA_ES, params: Any, key: jax.Array) -> Any:
    """CMA-ES state around `losses.family_init`, with leaves cast to fixed dtypes.

    `es.init` returns weak-typed scalars; casting once keeps the jitted tell from
    compiling a second time in generation two.
    """
    if cfg.init:
        mean = jnp.asarray([float(v) for v in cfg.init.split(",")], jnp.float32)
    else:
        mean = jnp.asarray(losses.family_init(cfg.family, cfg.order), jnp.float32)
    state = es.init(key, mean, params)
    return fix_dtypes(state)


def fix_dtypes(tree: Any) -> Any:
    """Strip weak types: floats become float32 arrays, ints int32 arrays."""

    def fix(x: Any) -> jax.Array:
        x = jnp.asarray(x)
        if jnp.issubdtype(x.dtype, jnp.floating):
            return jnp.asarray(x, jnp.float32)
        if jnp.issubdtype(x.dtype, jnp.integer):
            return jnp.asarray(x, jnp.int32)
        return x

    return jax.tree.map(fix, tree)


class TaskPool:
    """The meta-train pool of `cfg` and the compiled evaluators, cached per pair.

    Datasets are loaded once and cut to fixed sizes, so each (dataset, architecture,
    recipe, training-set size) compiles once and is reused across generations.
    """

    def __init__(self, cfg: SearchConfig, mesh: jax.sharding.Mesh):
        self.cfg = cfg
        self.mesh = mesh
        self.datasets = tasks.split_list(cfg.datasets)
        self.noises = tasks.parse_noise_ranges(cfg.noise)
        archs = tasks.split_list(cfg.archs)
        self.archs_for = {}
        for name in self.datasets:
            clean = self.clean(name)
            fits = tasks.compatible_archs(clean, archs)
            if not fits:
                raise ValueError(
                    f"--archs: none of {archs} accepts dataset {name!r} "
                    f"(input shape {clean.input_shape})"
                )
            batch = max(r.batch_size for r in cfg.recipe_list)
            smallest = min(len(self.clean(name, train_size=n).y_train)
                           for n in cfg.train_size_list)
            if smallest < batch:
                flag = "a --recipes batch size" if cfg.recipes else "--batch-size"
                size_flag = "--train-sizes" if cfg.train_sizes else "--train-size"
                raise ValueError(
                    f"{flag} {batch} is larger than the {smallest} training examples "
                    f"of {name!r}: lower it or raise {size_flag}")
            self.archs_for[name] = fits
        self._evaluators: dict[tuple, Callable] = {}

    def clean(
        self, name: str, standardize: bool = False, train_size: int = 0
    ) -> data_lib.Dataset:
        """The clean dataset `name` with the configured validation size and
        `train_size` training examples (0: `--train-size`). With `--train-sizes` each
        size is the first examples of one shuffled cut of the largest, so every task
        of a dataset is validated on the same examples."""
        c = self.cfg
        first = train_size if c.train_sizes else 0  # else every task takes the cut
        return tasks.load_clean(name, max(c.train_size_list), c.val_size, c.val_size,
                                c.seed, standardize, first)

    def sample(self, rng: np.random.Generator, n: int) -> list[tasks.Task]:
        """Draw `n` tasks from the pool; a drawn training-set size larger than the
        dataset becomes the dataset's size (what the task trains on)."""
        drawn = tasks.sample_tasks(
            rng, n, self.datasets, self.archs_for, self.noises, self.cfg.stratify,
            self.cfg.recipe_list, self.cfg.train_size_list,
        )
        if not self.cfg.train_sizes:
            return drawn
        return [dataclasses.replace(t, train_size=min(
            t.train_size, len(self.clean(t.dataset).y_train))) for t in drawn]

    def evaluator(
        self, dataset: str, arch: str, loss: str, recipe: tasks.Recipe
    ) -> Callable[[jax.Array, jax.Array, inner.Data], inner.Metrics]:
        """The sharded `[pop, seeds]` evaluation for one (dataset, arch, loss,
        recipe)."""
        key = (dataset, arch, loss, recipe)
        if key not in self._evaluators:
            icfg = recipe.inner_config(
                arch=arch, num_classes=self.clean(dataset).num_classes, loss=loss
            )
            self._evaluators[key] = parallel.make_sharded_evaluate(icfg, self.mesh)
        return self._evaluators[key]

    def evaluate(
        self, pop_params: jax.Array, task_list: list[tasks.Task], key: jax.Array,
        loss: str | None = None,
    ) -> dict[str, np.ndarray]:
        """Train every candidate on every task; accuracies `[pop, tasks, seeds]`.

        Task i uses key `fold_in(key, i)` for its noise and its inner seeds, the same
        for every candidate (common random numbers). `loss` is the searched family
        (``None``) or a hand-designed loss, which ignores `pop_params`.
        """
        val, test, div = [], [], []
        for task in task_list:
            k_noise, k_train = jax.random.split(jax.random.fold_in(key, task.index))
            clean = self.clean(task.dataset, task.recipe.standardize, task.train_size)
            noisy = tasks.noisy_task_data(k_noise, clean, task.noise)
            batch = inner.Data.from_dataset(noisy)
            seeds = jax.random.split(k_train, self.cfg.seeds)
            fn = self.evaluator(
                task.dataset, task.arch, loss or self.cfg.family, task.recipe
            )
            # to_host gathers across hosts when the population spans processes.
            m = parallel.to_host(fn(pop_params, seeds, batch))
            val.append(m.val_acc)
            test.append(m.test_acc)
            div.append(m.diverged)
        return {
            "val_acc": np.stack(val, axis=1),
            "test_acc": np.stack(test, axis=1),
            "diverged": np.stack(div, axis=1),
        }

    def score(
        self, pop_params: jax.Array, task_list: list[tasks.Task], key: jax.Array
    ) -> dict[str, Any]:
        """`evaluate` the population; ``archs`` names each task's architecture."""
        res = self.evaluate(pop_params, task_list, key)
        res["archs"] = [t.arch for t in task_list]
        return res


def fitness_from(val_acc: np.ndarray, mode: str = "mean") -> np.ndarray:
    """Fitness `[pop]` (CMA-ES minimises it) from accuracies `[pop, tasks, seeds]`.

    "mean": minus the mean clean-validation accuracy over tasks and seeds. A task
    whose accuracies spread widely over the population (e.g. asymmetric noise on
    digits) then outweighs one where they are close (heavy noise near chance).
    "rank": each task's seed-mean accuracies are ranked within the population (ties
    share their mean rank, scaled to [0, 1], the best 1), and fitness is minus the
    mean rank over tasks: every task weighs the same, whatever its spread.
    """
    if mode == "mean":
        return -val_acc.reshape(val_acc.shape[0], -1).mean(axis=1)
    if mode != "rank":
        raise ValueError(f"unknown fitness mode {mode!r}")
    per_task = val_acc.reshape(val_acc.shape[0], val_acc.shape[1], -1).mean(axis=2)
    ranks = scipy.stats.rankdata(per_task, axis=0) - 1.0  # [pop, tasks], 0 = worst
    return -ranks.mean(axis=1) / max(val_acc.shape[0] - 1, 1)


def generation_keys(cfg: SearchConfig, generation: int) -> tuple[jax.Array, ...]:
    """(ask, eval, tell) keys of `generation`; derived, so a resumed run repeats
    them exactly."""
    root = jax.random.key(cfg.seed)
    return tuple(jax.random.split(jax.random.fold_in(root, generation + 1), 3))


def task_rng(cfg: SearchConfig, generation: int) -> np.random.Generator:
    """Host RNG that draws `generation`'s tasks (a function of seed and generation)."""
    return np.random.default_rng([cfg.seed, generation])


@functools.partial(jax.jit, static_argnums=0)
def _ask(es: CMA_ES, key: jax.Array, state: Any, params: Any) -> tuple:
    return es.ask(key, state, params)


@functools.partial(jax.jit, static_argnums=0)
def _tell(es: CMA_ES, key, pop, fitness, state, params) -> tuple:
    return es.tell(key, pop, fitness, state, params)


def run_generation(
    cfg: SearchConfig,
    es: CMA_ES,
    es_params: Any,
    state: Any,
    pool: TaskPool,
    generation: int,
) -> tuple[Any, dict[str, Any]]:
    """One generation: ask -> evaluate on freshly drawn tasks -> tell.

    Returns the new CMA-ES state and the generation's record (a JSON-able dict).
    """
    k_ask, k_eval, k_tell = generation_keys(cfg, generation)
    population, state = _ask(es, k_ask, state, es_params)  # [pop, P]
    task_list = pool.sample(task_rng(cfg, generation), cfg.tasks)
    res = pool.score(population, task_list, k_eval)
    fitness = fitness_from(res["val_acc"], cfg.fitness)  # [pop]
    state, _ = _tell(es, k_tell, population, jnp.asarray(fitness), state, es_params)
    state = fix_dtypes(state)
    best = int(np.argmin(fitness))
    record = {
        "generation": generation,
        "best_fitness": float(fitness[best]),
        "mean_fitness": float(fitness.mean()),
        "median_fitness": float(np.median(fitness)),
        "best_coeffs": np.asarray(population[best]).tolist(),
        "best_val_acc": float(res["val_acc"][best].mean()),
        "mean_val_acc": float(res["val_acc"].mean()),
        "best_test_acc": float(res["test_acc"][best].mean()),
        "diverged_fraction": float(res["diverged"].mean()),
        # Every candidate diverged on every task: the scores carry no information
        # (a learning rate far too large, say), and the search says so.
        "all_diverged": bool(res["diverged"].all()),
        "es_mean": np.asarray(state.mean).tolist(),
        "es_std": float(state.std),
        "tasks": [task_record(t, cfg) for t in task_list],
        "task_val_acc_best": res["val_acc"][best].mean(axis=-1).tolist(),
    }
    return state, record


def task_record(task: tasks.Task, cfg: SearchConfig) -> dict[str, Any]:
    """A task as metrics.jsonl records it; its recipe's spec and its training-set
    size when the search draws them."""
    out = {k: v for k, v in dataclasses.asdict(task).items()
           if k not in ("recipe", "train_size")}
    if cfg.recipes:
        out["recipe"] = task.recipe.spec()
    if cfg.train_sizes:
        out["train_size"] = task.train_size
    return out


def select_final(
    cfg: SearchConfig, pool: TaskPool, candidates: np.ndarray
) -> tuple[int, np.ndarray]:
    """Re-score `candidates` `[n, P]` on `cfg.select_tasks` fixed tasks; best index.

    Fitness across generations is measured on different random tasks, so the best
    single-generation score is biased towards easy draws; one shared fixed task set
    compares the elites fairly. Candidates are padded to `cfg.pop` to reuse the
    compiled evaluation.
    """
    n = len(candidates)
    padded = np.concatenate([candidates, np.repeat(candidates[-1:], cfg.pop - n, 0)])
    task_list = pool.sample(np.random.default_rng([cfg.seed, 10**6]), cfg.select_tasks)
    key = jax.random.fold_in(jax.random.key(cfg.seed), 10**6)
    res = pool.score(jnp.asarray(padded, jnp.float32), task_list, key)
    # Ranks are taken among the real candidates only, not the padding copies.
    fitness = fitness_from(res["val_acc"][:n], cfg.fitness)
    return int(np.argmin(fitness)), fitness
