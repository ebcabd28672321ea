"""How hard clean and how much lost to noise: fontdigits_mild with a share of its
images laid over by another class's (a probe for the next pool's data, RESULTS
section 20; no rule, no loss is chosen by it).

    PYTHONPATH=. python docs/runs/fontdigits_blend/probe.py \
        BLEND LOW HIGH OUT [mlp|lenet]

Runs `meta_test` with cross-entropy and NCE+MAE at symmetric 0.6 and 0.8 (and the
clean rows; 10,000 images, 5,000 steps, one seed, `--seed 1` as the earlier
probe) on `fontdigits_mild`'s images after `data.make_fontdigits(blend=BLEND,
blend_weight=(LOW, HIGH))`. It is read against Fashion-MNIST's clean accuracy and the
share of it each loss keeps under noise (docs/runs/fontdigits_warps/NOTE.md).
"""

import sys

from docs.runs.fontdigits_warps import probe  # the same meta_test call


def main() -> None:
    if len(sys.argv) not in (5, 6):
        sys.exit("usage: probe.py BLEND LOW HIGH OUT_DIR [mlp|lenet]")
    blend, weight = float(sys.argv[1]), (float(sys.argv[2]), float(sys.argv[3]))
    out, arch = sys.argv[4], (sys.argv[5] if len(sys.argv) > 5 else "mlp")
    probe.run("fontdigits_mild", arch, out, blend=blend, blend_weight=weight)


if __name__ == "__main__":
    main()
