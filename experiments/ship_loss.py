"""`python -m experiments.ship_loss` from a checkout; installed: a console script."""

from arl_jax.commands.ship_loss import main

if __name__ == "__main__":
    main()
