"""Ship a search's result as a loss file (by default the checkout's shipped loss).

    python -m experiments.ship_loss runs/demo --dest my_loss.json
    arl-ship runs/demo --dest my_loss.json          # the installed command

Copies `RUN_DIR/best_loss.json` (with the held-out comparison, if any) into `--dest`.
Without `--dest` it writes `arl_jax/pretrained/arl.json` of the checkout it runs
from, which `arl_jax.losses.arl_loss` uses by default; from an installed package it
never writes into site-packages: give `--dest` and use the file with
`arl_loss(..., loss_file=PATH)`, `load_loss(PATH)` or $ARL_JAX_LOSS_FILE.
A polynomial family's coefficients are shipped in normal form
(`arl_jax.losses.normalise_coeffs`: centred at p_y = 1, on cross-entropy's scale);
the search's own are kept as `search_coeffs`, with the factor divided out as
`scale`.

    python -m experiments.ship_loss runs/shipped --keep-coeffs

is how the shipped loss is made (`make shipped-loss`): the search's loss with the
coefficients exactly as the meta-test tables measured them (`--keep-coeffs`: not
put in normal form, which would change them by a factor that Adam hardly sees but
other optimisers do). `--prior-weight W` adds W times the class-prior penalty to a
"taylor_nce" loss ("taylor_nce_prior"). It also took a `--note`; the whole
command is kept in the file as `ship_command`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import sys

from arl_jax import io, losses


def checkout_pretrained() -> str | None:
    """``arl_jax/pretrained/arl.json`` of the source checkout this package runs
    from, or None when it runs from an installed copy (site-packages)."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    root = os.path.dirname(package)
    if "site-packages" in package.split(os.sep) or not os.path.exists(
        os.path.join(root, "setup.cfg")
    ):
        return None
    return os.path.join(package, "pretrained", "arl.json")


def ship(
    run_dir: str, dest: str, force: bool = False,
    prior_weight: float | None = None, keep_coeffs: bool = False,
    note: str | None = None, ship_command: str | None = None,
) -> dict:  # fmt: skip
    """Write the run's best loss, with provenance, to `dest`; returns the record.

    Refuses (ValueError), unless `force`, a loss that lost to cross-entropy in the
    search's own held-out comparison (it did not transfer).

    Args:
      run_dir: a finished meta_search folder (its `best_loss.json`).
      dest: the file to write.
      force: ship what would be refused.
      prior_weight: add this weight of `losses.class_prior_penalty` (finite, >= 0):
        the run's family becomes the family that extends it with the penalty
        ("taylor_nce" -> "taylor_nce_prior"); the search's family is kept as
        `search_family` and the weight as `prior_weight`.
      keep_coeffs: ship the coefficients as found (and as `meta_test --loss-file`
        measures them) instead of in normal form.
      note: free text kept as `note`.
      ship_command: the command line that shipped it, kept as `ship_command`.
    """
    path = os.path.join(run_dir, "best_loss.json")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} not found: has the search in {run_dir} ended?")
    with open(path) as fh:
        best = json.load(fh)
    for key in ("family", "coeffs", "fitness", "command", "seed"):
        if key not in best:
            raise ValueError(f"{path} lacks {key!r}; not a meta_search result")
    held_path = os.path.join(run_dir, "heldout.json")
    if os.path.exists(held_path):
        with open(held_path) as fh:
            best["heldout"] = json.load(fh)
    if not force:
        refusal = _refusal(best)
        if refusal:
            raise ValueError(f"{run_dir}: {refusal}; --force ships it anyway")
    if prior_weight is not None:
        best = _with_prior(best, prior_weight)
    if note:
        best["note"] = note
    if ship_command:
        best["ship_command"] = ship_command
    losses.read_loss_file(best)  # a known family and its number of coefficients
    if losses.FAMILIES[best["family"]].polynomial and not keep_coeffs:
        coeffs, scale = losses.normalise_coeffs(best["family"], best["coeffs"])
        best["search_coeffs"], best["scale"] = best["coeffs"], scale
        best["coeffs"] = coeffs
        best["normal_form"] = (
            "coeffs = the search's, polynomial re-centred at p_y = 1 and every weight "
            "divided by scale, so the loss falls by ln 10 from a uniform to a perfect "
            "prediction over 10 classes (arl_jax.losses.normalise_coeffs)"
        )
    best["provisional"] = False
    best["run_dir"] = os.path.normpath(run_dir)
    io.atomic_write_json(dest, best)
    return best


def _with_prior(best: dict, weight: float) -> dict:
    """`best` written in its prior family with penalty weight `weight`."""
    weight = float(weight)
    if not math.isfinite(weight) or weight < 0:
        raise ValueError(f"--prior-weight must be finite and >= 0, got {weight}")
    prior = {name: f.base for name, f in losses.FAMILIES.items() if f.extra}
    into = [name for name, base in prior.items() if base == best["family"]]
    if not into:
        raise ValueError(
            f"family {best['family']!r} has no class-prior form; --prior-weight needs "
            f"one of {sorted(prior.values())}"
        )
    coeffs = losses.embed_coeffs(best["family"], best["coeffs"], into[0])
    coeffs[-1] = weight
    return {**best, "search_family": best["family"], "family": into[0],
            "coeffs": coeffs, "prior_weight": weight}


def _refusal(best: dict) -> str:
    """Why `best` should not become the default loss ('' if nothing is wrong)."""
    results = best.get("heldout", {}).get("results", {})
    learned, ce = results.get("learned"), results.get("cross_entropy")
    if learned and ce and learned["test_acc_mean"] < ce["test_acc_mean"]:
        held = best["heldout"]
        return (f"on the held-out {held['dataset']} ({held['noise']}) the learned loss "
                f"scored {100 * learned['test_acc_mean']:.2f}%, below cross-entropy's "
                f"{100 * ce['test_acc_mean']:.2f}%: it did not transfer")
    return ""


def command_line(argv: list[str] | None) -> str:
    """This command line, as `python -m experiments.ship_loss ...` (quoted)."""
    args = sys.argv[1:] if argv is None else argv
    return shlex.join(["python", "-m", "experiments.ship_loss", *args])


def build_parser() -> argparse.ArgumentParser:
    """The command line's flags."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir", help="a finished meta_search run folder")
    parser.add_argument("--dest", default=None,
                        help="file to write (default: the checkout's "
                        "arl_jax/pretrained/arl.json; required when installed)")
    parser.add_argument("--force", action="store_true",
                        help="ship a loss that lost to cross-entropy on the held-out "
                        "data")
    parser.add_argument("--prior-weight", type=float, default=None,
                        help="add this weight of the class-prior penalty "
                        "(taylor_nce -> taylor_nce_prior)")
    parser.add_argument("--keep-coeffs", action="store_true",
                        help="ship the coefficients as found, not in normal form")
    parser.add_argument("--note", default=None, help="free text kept in the file")
    return parser


def main(argv: list[str] | None = None) -> None:
    """Command line."""
    parser = build_parser()
    args = parser.parse_args(argv)
    dest = args.dest or checkout_pretrained()
    if dest is None:
        parser.error("--dest is required: this arl_jax is an installed copy, and "
                     "shipping never writes into site-packages")
    if os.path.isdir(dest):
        parser.error(f"--dest {dest} is a folder; give a file path, e.g. "
                     f"{os.path.join(dest, 'arl.json')}")
    try:
        best = ship(args.run_dir, dest, args.force, args.prior_weight,
                    args.keep_coeffs, args.note, command_line(argv))
    except (FileNotFoundError, ValueError) as err:
        parser.error(str(err))
    print(f"shipped {best['family']} coeffs {best['coeffs']} to {dest}")


if __name__ == "__main__":
    main()
