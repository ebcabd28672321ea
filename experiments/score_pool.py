"""`python -m experiments.score_pool` from a checkout; installed: a console script."""

from arl_jax.commands.score_pool import main

if __name__ == "__main__":
    main()
