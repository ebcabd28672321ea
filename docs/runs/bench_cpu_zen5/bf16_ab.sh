#!/usr/bin/env bash
# float32 against bfloat16 products (the `--products` setting, removed after this run;
# run from a checkout of commit c759652, which has it): fresh processes alternated,
# one CPU device, the benchmark's MLP at pop 64 and CNN at pop 8, best of 2 timed
# calls each. Output: bf16_ab.log.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
export XLA_FLAGS=--xla_force_host_platform_device_count=1 PYTHONPATH=.
for i in 1 2 3; do for p in float32 bfloat16; do python "$HERE/bf16_ab_one.py" mlp $p; done; done
for p in float32 bfloat16; do python "$HERE/bf16_ab_one.py" cnn $p; done
