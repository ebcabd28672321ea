"""Matrix products in float32 against bfloat16 inputs with float32 accumulation, at
the inner MLP's shape (64 candidates' [128, 256] @ [256, 256]) and at 2048 x 2048.

    python -m benchmarks.matmul_dtype [--out FILE.json]
"""

import argparse
import json
import time

import jax
import jax.numpy as jnp

SHAPES = {
    "64 x [128,256]@[256,256]": ((64, 128, 256), (64, 256, 256)),
    "[2048,2048]@[2048,2048]": ((2048, 2048), (2048, 2048)),
}


def gflops(fn, a, b, flops: float, reps: int = 20) -> float:
    """Best-of-one timing of `reps` calls after a compile call."""
    fn(a, b).block_until_ready()
    start = time.perf_counter()
    for _ in range(reps):
        fn(a, b).block_until_ready()
    return flops * reps / (time.perf_counter() - start) / 1e9


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="", help="also write the numbers as JSON")
    args = parser.parse_args(argv)
    f32 = jax.jit(jnp.matmul)
    bf16 = jax.jit(lambda a, b: jnp.matmul(a, b, preferred_element_type=jnp.float32))
    out = {}
    for name, (sa, sb) in SHAPES.items():
        a = jax.random.normal(jax.random.key(0), sa)
        b = jax.random.normal(jax.random.key(1), sb)
        flops = 2.0 * a.size * sb[-1]
        out[name] = {
            "float32 GFLOP/s": round(gflops(f32, a, b, flops), 1),
            "bfloat16 GFLOP/s": round(gflops(bf16, a.astype(jnp.bfloat16),
                                             b.astype(jnp.bfloat16), flops), 1),
        }
    print(json.dumps(out, indent=1))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(out, fh, indent=1)
    return out


if __name__ == "__main__":
    main()
