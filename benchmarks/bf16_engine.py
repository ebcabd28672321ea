"""The benchmark's MLP run at pop 64 (groups of 8) with every float32 product of the
run in bfloat16 inputs and float32 accumulation, against the same run in float32: a
measurement of what bfloat16 products would give the engine, made by patching
``jax.lax.dot_general`` in this process, not a feature of the library.

    python -m benchmarks.bf16_engine          # float32
    python -m benchmarks.bf16_engine --bf16   # bfloat16 products
"""

import argparse
import time

import jax
import jax.numpy as jnp


def use_bf16_products() -> None:
    """Route every float32 x float32 `dot_general` through bfloat16 inputs."""
    real = jax.lax.dot_general

    def dot_general(lhs, rhs, dimension_numbers, precision=None,
                    preferred_element_type=None, **kwargs):
        if lhs.dtype == jnp.float32 and rhs.dtype == jnp.float32:
            return real(lhs.astype(jnp.bfloat16), rhs.astype(jnp.bfloat16),
                        dimension_numbers, precision,
                        preferred_element_type=jnp.float32, **kwargs)
        return real(lhs, rhs, dimension_numbers, precision,
                    preferred_element_type=preferred_element_type, **kwargs)

    jax.lax.dot_general = dot_general


def main(argv=None) -> tuple[float, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bf16", action="store_true", help="bfloat16 products")
    args = parser.parse_args(argv)
    if args.bf16:
        use_bf16_products()
    from arl_jax import inner
    from benchmarks import bench

    case = bench.Case("mlp", "mlp", "mnist1d", 200, (64,))
    data, _ = bench.load_case_data(case, False)
    pop = jnp.asarray(bench.population(64))
    keys = jax.random.key(0)[None]
    run = jax.jit(inner.batch_inner_train(
        inner.make_inner_train(bench.inner_config(case)), 8))
    metrics = jax.block_until_ready(run(pop, keys, data))
    times = []
    for _ in range(2):
        start = time.perf_counter()
        metrics = jax.block_until_ready(run(pop, keys, data))
        times.append(time.perf_counter() - start)
    ms, acc = 1e3 * min(times) / 64, float(metrics.val_acc.mean())
    print(f"{'bfloat16' if args.bf16 else 'float32'} products: {ms:.1f} ms a "
          f"candidate, mean validation accuracy {100 * acc:.2f}%")
    return ms, acc


if __name__ == "__main__":
    main()
