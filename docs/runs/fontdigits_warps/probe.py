"""How much a network loses to heavy noise on fontdigits as its warps shrink (a
probe for the next pool, RESULTS section 18; no rule, no loss is chosen by it).

    PYTHONPATH=. python docs/runs/fontdigits_warps/probe.py half runs/warps_half
    PYTHONPATH=. python docs/runs/fontdigits_warps/probe.py none runs/warps_none
    PYTHONPATH=. python docs/runs/fontdigits_warps/probe.py half runs/wh_lenet lenet

Runs `meta_test` on fontdigits (the MLP, or the architecture given third; 10,000
images, 5,000 steps, `--seed 1` as the protocol pool) with cross-entropy and
NCE+MAE at symmetric 0.6 and 0.8, after scaling `data.make_fontdigits`'s warps:
"half" halves rotation, shear, shift, elastic displacement and the zoom's spread;
"none" removes them (the stroke weight still varies). "full" is the dataset as
shipped.
"""

import functools
import sys

from arl_jax import data
from experiments import meta_test

LEVELS = {
    "full": {},
    "half": dict(data.FONTDIGITS_MILD_WARPS),  # the dataset fontdigits_mild
    "none": dict(max_rotation=0.0, scale=(1.0, 1.0), max_shear=0.0, max_shift=0.0,
                 elastic=0.0),  # fmt: skip
}


def run(dataset: str, arch: str, out: str, **make_kwargs) -> None:
    """The probe: `meta_test` on `dataset` after `data.make_fontdigits` is given
    `make_kwargs` (also used by ../fontdigits_blend/probe.py)."""
    # A fresh process, so no fontdigits arrays are cached before the patch.
    data.make_fontdigits = functools.partial(data.make_fontdigits, **make_kwargs)
    meta_test.main(["--dataset", dataset, "--archs", arch,
                    "--losses", "cross_entropy", "nce_mae",
                    "--noise", "symmetric:0.6,0.8", "--seeds", "1",
                    "--steps", "5000", "--train-size", "10000", "--seed", "1",
                    "--out", out])  # fmt: skip


def main() -> None:
    if len(sys.argv) not in (3, 4) or sys.argv[1] not in LEVELS:
        sys.exit(f"usage: probe.py {{{','.join(LEVELS)}}} OUT_DIR [mlp|lenet]")
    level, out = sys.argv[1], sys.argv[2]
    arch = sys.argv[3] if len(sys.argv) > 3 else "mlp"
    run("fontdigits", arch, out, **LEVELS[level])


if __name__ == "__main__":
    main()
