"""`python -m experiments.plot_losses` from a checkout; installed: a console script."""

from arl_jax.commands.plot_losses import main

if __name__ == "__main__":
    main()
