"""README.md stays true: its two commands come first, its training-step example runs,
and its command-line reference is what the programs print for `--help`."""

import contextlib
import io
import pathlib
import re

import jax.numpy as jnp
import pytest

from experiments import meta_search, meta_test

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
HELP_COLUMNS = 88  # the width the README's help texts were generated at


def _block_after(marker: str) -> str:
    """The fenced code block that follows the HTML comment starting with `marker`."""
    text = README.read_text()
    m = re.search(
        rf"<!-- {re.escape(marker)}[^\n]*-->\n```[a-z]*\n(.*?)\n```", text, re.S
    )
    assert m, f"README.md has no code block after '<!-- {marker}'"
    return m.group(1)


def test_readme_starts_with_the_two_commands():
    text = README.read_text()
    first_block = re.search(r"```bash\n(.*?)\n```", text, re.S)
    assert first_block and text.index("```bash") < 200
    commands = [
        line.split("#")[0].strip() for line in first_block.group(1).splitlines()
    ]
    assert commands == ["make demo", "make test"]


def test_readme_example_runs():
    namespace: dict = {}
    exec(compile(_block_after("readme-test"), "README.md", "exec"), namespace)
    loss = namespace["loss"]
    assert loss.shape == () and bool(jnp.isfinite(loss))
    step, params, opt_state = (
        namespace[k] for k in ("train_step", "params", "opt_state")
    )
    x, y = namespace["x"], namespace["y"]
    for _ in range(20):
        params, opt_state, new_loss = step(params, opt_state, x, y)
    assert float(new_loss) < float(loss)  # the step trains


@pytest.mark.parametrize(
    "module, marker, prog",
    [
        (meta_search, "help: meta_search", "meta_search.py"),
        (meta_test, "help: meta_test", "meta_test.py"),
    ],
)
def test_readme_help_matches_the_program(module, marker, prog, monkeypatch):
    # `python -m experiments.X --help` names the program after its file.
    monkeypatch.setattr("sys.argv", [prog])
    monkeypatch.setenv("COLUMNS", str(HELP_COLUMNS))
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exit_info:
        module.main(["--help"])
    assert exit_info.value.code == 0
    assert _block_after(marker) == out.getvalue().rstrip("\n"), (
        f"README.md's help text of {prog} is stale; paste the output of "
        f"`COLUMNS={HELP_COLUMNS} python -m experiments.{prog[:-3]} --help`"
    )
