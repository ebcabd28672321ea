"""arl_jax: learning noise-robust loss functions (ARL) in JAX."""

__version__ = "0.1.0"
