"""Draw the loss-function figure (loss against p_y, one panel a loss).

    python -m experiments.plot_losses --out docs/losses.png
"""

from __future__ import annotations

import argparse

from arl_jax import plotting


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and write the PNG."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/losses.png", help="PNG to write")
    parser.add_argument(
        "--losses",
        default=",".join(plotting.DEFAULT_LOSSES),
        help="comma-separated names from arl_jax.losses.LOSSES",
    )
    parser.add_argument("--num-classes", type=int, default=10)
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.losses.split(",") if name.strip()]
    path = plotting.plot_losses(names, args.out, num_classes=args.num_classes)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
