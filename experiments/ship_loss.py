"""Ship a search's result as the package's pretrained ARL coefficients.

    python -m experiments.ship_loss runs/demo

Copies `RUN_DIR/best_loss.json` (with the held-out comparison, if any) into
`arl_jax/pretrained/arl.json`, which `arl_jax.losses.arl_loss` uses by default.
A polynomial family's coefficients are shipped in normal form
(`arl_jax.losses.normalise_coeffs`: centred at p_y = 1, on cross-entropy's scale);
the search's own are kept as `search_coeffs`, with the factor divided out as
`scale`.
"""

from __future__ import annotations

import argparse
import json
import os

from arl_jax import cli, losses

PRETRAINED = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    "arl_jax",
    "pretrained",
    "arl.json",
)


def ship(run_dir: str, dest: str = PRETRAINED, force: bool = False) -> dict:
    """Write the run's best loss, with provenance, to `dest`; returns the record.

    Refuses (ValueError), unless `force`: a loss that lost to cross-entropy in the
    search's own held-out comparison (it did not transfer), and a scheduled family
    (`losses.SCHEDULED_FAMILIES`), which `arl_loss(logits, labels)` cannot evaluate
    without the training progress.
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
    if best["family"] in losses.POLYNOMIAL_FAMILIES:
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
    cli.atomic_write_json(dest, best)
    return best


def _refusal(best: dict) -> str:
    """Why `best` should not become the default loss ('' if nothing is wrong)."""
    results = best.get("heldout", {}).get("results", {})
    learned, ce = results.get("learned"), results.get("cross_entropy")
    if learned and ce and learned["test_acc_mean"] < ce["test_acc_mean"]:
        held = best["heldout"]
        return (f"on the held-out {held['dataset']} ({held['noise']}) the learned loss "
                f"scored {100 * learned['test_acc_mean']:.2f}%, below cross-entropy's "
                f"{100 * ce['test_acc_mean']:.2f}%: it did not transfer")
    if best["family"] in losses.SCHEDULED_FAMILIES:
        return (f"family {best['family']} changes over training, so the default "
                "arl_loss(logits, labels) could not be called without progress=")
    return ""


def main(argv: list[str] | None = None) -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir", help="a finished meta_search run folder")
    parser.add_argument("--dest", default=PRETRAINED, help="file to write")
    parser.add_argument("--force", action="store_true",
                        help="ship a loss that lost to cross-entropy on the held-out "
                        "data, or a scheduled one")
    args = parser.parse_args(argv)
    try:
        best = ship(args.run_dir, args.dest, args.force)
    except (FileNotFoundError, ValueError) as err:
        parser.error(str(err))
    print(f"shipped {best['family']} coeffs {best['coeffs']} to {args.dest}")


if __name__ == "__main__":
    main()
