"""`python -m experiments.meta_test` from a checkout; installed: a console script."""

from arl_jax.commands.meta_test import main

if __name__ == "__main__":
    main()
