"""`python -m experiments.report`: the `arl-report` command from a checkout."""
from arl_jax.commands.report import main

if __name__ == "__main__":
    main()
