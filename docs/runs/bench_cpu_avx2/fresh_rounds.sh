#!/usr/bin/env bash
# Fresh processes, alternated twice: the engine on 1 CPU device (groups of 8), the
# engine sharded over 1 and 2 simulated CPU devices, and the hand-written loop.
cd "$(dirname "$0")/../../.."
SPEC='{"name":"mlp","arch":"mlp","dataset":"mnist1d","steps":200,"pops":[64],"products":"float32","quick":false,"pop":64,"repeats":3}'
for r in 1 2; do
  echo "round $r"
  .venv/bin/python -m benchmarks.group_sweep 8 2>&1 | grep chunk
  for n in 1 2; do
    echo "devices $n: $(JAX_PLATFORMS=cpu XLA_FLAGS=--xla_force_host_platform_device_count=$n .venv/bin/python -m benchmarks.bench --devices-worker "$SPEC" 2>/dev/null | tail -1 | cut -c1-200)"
  done
  .venv/bin/python -m benchmarks.handwritten 2>&1 | tail -1
done
