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


def ship(run_dir: str, dest: str = PRETRAINED) -> dict:
    """Write the run's best loss, with provenance, to `dest`; returns the record."""
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


def main(argv: list[str] | None = None) -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir", help="a finished meta_search run folder")
    parser.add_argument("--dest", default=PRETRAINED, help="file to write")
    args = parser.parse_args(argv)
    try:
        best = ship(args.run_dir, args.dest)
    except (FileNotFoundError, ValueError) as err:
        parser.error(str(err))
    print(f"shipped {best['family']} coeffs {best['coeffs']} to {args.dest}")


if __name__ == "__main__":
    main()
