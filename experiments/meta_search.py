"""`python -m experiments.meta_search` from a checkout; installed: a console script."""

from arl_jax.commands.meta_search import main

if __name__ == "__main__":
    main()
