"""The documentation stays true and short: README.md's two commands come first, its
training steps (optax, Flax NNX) run and train, its help texts are what the programs
print, and neither the docs nor the code's docstrings speak the lab notebook's
internal language (run letters, section numbers)."""

import ast
import contextlib
import io
import pathlib
import re

import jax.numpy as jnp
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
HELP_COLUMNS = 88  # the width the README's help texts were generated at
README_MAX_BYTES = 12_288
RESULTS_MAX_LINES = 400
# The lab notebook's vocabulary, which means nothing to a reader of the library.
INTERNAL = [
    re.compile(r"\bsearch [A-Z]{1,2}\b"),
    re.compile(r"section [0-9]", re.I),
    re.compile(r"session", re.I),
    re.compile(r"issue [0-9]", re.I),
]


def _block_after(marker: str) -> str:
    """The fenced code block that follows the HTML comment starting with `marker`."""
    text = README.read_text()
    m = re.search(
        rf"<!-- {re.escape(marker)}[^\n]*-->\n```[a-z]*\n(.*?)\n```", text, re.S
    )
    assert m, f"README.md has no code block after '<!-- {marker}'"
    return m.group(1)


def _run_block(marker: str) -> dict:
    namespace: dict = {}
    exec(compile(_block_after(marker), f"README.md ({marker})", "exec"), namespace)
    return namespace


def test_readme_starts_with_the_two_commands():
    text = README.read_text()
    first_block = re.search(r"```bash\n(.*?)\n```", text, re.S)
    assert first_block and text.index("```bash") < 200
    commands = [
        line.split("#")[0].strip() for line in first_block.group(1).splitlines()
    ]
    assert commands == ["make demo", "make test"]


def test_readme_optax_step_trains():
    ns = _run_block("readme-test: optax")
    loss = ns["loss"]
    assert loss.shape == () and bool(jnp.isfinite(loss))
    step, params, opt_state, x, y = (
        ns[k] for k in ("train_step", "params", "opt_state", "x", "y")
    )
    for _ in range(20):
        params, opt_state, new_loss = step(params, opt_state, x, y)
    assert float(new_loss) < float(loss)


def test_readme_nnx_step_trains():
    ns = _run_block("readme-test: nnx")
    loss = ns["loss"]
    assert loss.shape == () and bool(jnp.isfinite(loss))
    step, model, optimizer, x, y = (
        ns[k] for k in ("train_step", "model", "optimizer", "x", "y")
    )
    for _ in range(20):
        new_loss = step(model, optimizer, x, y)
    assert float(new_loss) < float(loss)


@pytest.mark.parametrize(
    "module_name, marker, prog",
    [
        ("arl_jax.commands.meta_search", "help: meta_search", "meta_search.py"),
        ("arl_jax.commands.meta_test", "help: meta_test", "meta_test.py"),
    ],
)
def test_readme_help_matches_the_program(module_name, marker, prog, monkeypatch):
    import importlib

    module = importlib.import_module(module_name)
    # `python -m experiments.X --help` names the program after its file.
    monkeypatch.setattr("sys.argv", [prog])
    monkeypatch.setenv("COLUMNS", str(HELP_COLUMNS))
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exit_info:
        module.main(["--help"])
    assert exit_info.value.code == 0
    # The README shows the synopsis (usage and description); `--help` has the rest.
    synopsis = out.getvalue().split("\noptions:")[0].rstrip("\n")
    assert _block_after(marker) == synopsis, (
        f"README.md's synopsis of {prog} is stale; paste the output of "
        f"`COLUMNS={HELP_COLUMNS} python -m experiments.{prog[:-3]} --help` up to "
        "'options:'"
    )


def test_docs_stay_short():
    assert len(README.read_bytes()) <= README_MAX_BYTES
    results = (ROOT / "docs" / "RESULTS.md").read_text().splitlines()
    assert len(results) <= RESULTS_MAX_LINES


def _docstrings(path: pathlib.Path):
    tree = ast.parse(path.read_text())
    nodes = [tree, *ast.walk(tree)]
    for node in nodes:
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef,
                             ast.AsyncFunctionDef)):  # fmt: skip
            doc = ast.get_docstring(node)
            if doc:
                yield doc


def _internal_names(text: str) -> list[str]:
    return [m.group(0) for p in INTERNAL for m in p.finditer(text)]


def test_internal_names_helper_finds_them():
    assert _internal_names("search G, search AX; see Section 3 of a session, "
                           "Issue 6") == ["search G", "search AX", "Section 3",
                                          "session", "Issue 6"]  # fmt: skip
    assert _internal_names("the search found; research AX; sections; issues") == []


def test_no_lab_notebook_names_in_docs_or_docstrings():
    found = []
    for path in [README, *sorted((ROOT / "docs").glob("*.md"))]:
        found += [f"{path.relative_to(ROOT)}: {n}"
                  for n in _internal_names(path.read_text())]  # fmt: skip
    for folder in ("arl_jax", "experiments"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for doc in _docstrings(path):
                found += [f"{path.relative_to(ROOT)}: {n}"
                          for n in _internal_names(doc)]  # fmt: skip
    assert not found, "lab-notebook names: " + "; ".join(found)
