"""The quickstart notebook runs top to bottom (nbclient) in its small mode.

The kernel is this interpreter (the project's .venv when run through `make test`):
the test writes a kernelspec whose argv names `sys.executable` into a temporary
folder on JUPYTER_PATH, so a `python3` kernelspec installed elsewhere cannot be
picked up instead. The kernel inherits this process's environment: the notebook is
run on one CPU device (what most users have) and on four simulated devices.
"""

import json
import pathlib
import re
import sys

import nbformat
import pytest
from ipykernel.kernelspec import make_ipkernel_cmd
from nbclient import NotebookClient

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "arl_quickstart.ipynb"
KERNEL = "arl-jax-test"


def _install_kernelspec(folder: pathlib.Path) -> None:
    spec_dir = folder / "kernels" / KERNEL
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": make_ipkernel_cmd(executable=sys.executable),
        "display_name": f"arl_jax test ({sys.executable})",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))


def _text(cell) -> str:
    """Everything a code cell printed or returned as text."""
    parts = []
    for out in cell.get("outputs", []):
        if out.output_type == "stream":
            parts.append(out.text)
        elif out.output_type in ("execute_result", "display_data"):
            parts.append(out.get("data", {}).get("text/plain", ""))
    return "".join(parts)


def test_committed_notebook_has_no_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.execution_count is None and not cell.outputs


def test_committed_notebook_has_a_colab_badge_and_no_fixed_accelerator():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert "colab.research.google.com/assets/colab-badge.svg" in nb.cells[0].source
    assert "accelerator" not in nb.metadata
    assert "REPO_URL = " in nb.cells[1].source


@pytest.mark.slow
@pytest.mark.parametrize("devices", [1, 4])
def test_notebook_runs_in_small_mode(tmp_path, monkeypatch, devices):
    _install_kernelspec(tmp_path / "jupyter")
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    flags = "" if devices == 1 else f"--xla_force_host_platform_device_count={devices}"
    monkeypatch.setenv("XLA_FLAGS", flags)
    monkeypatch.setenv("ARL_SMALL", "1")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        nb,
        kernel_name=KERNEL,
        timeout=600,
        startup_timeout=120,
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    # Runs in notebooks/; its plots go to notebooks/runs/ (git-ignored).
    client.execute()  # raises CellExecutionError on the first failing cell

    code = [c for c in nb.cells if c.cell_type == "code"]
    for cell in code:
        assert not [o for o in cell.outputs if o.output_type == "error"]
    text = "\n".join(_text(c) for c in code)
    assert f"small mode: True; python: {sys.executable}" in text
    assert "nothing to do" in text  # local run: the install cell installs nothing
    assert text.count("final clean test accuracy") == 2  # cross-entropy and ARL
    assert "generation 2: best val acc" in text  # three generations in small mode
    # The population axis is sharded: spec=P('pop',) (PartitionSpec in older jax).
    assert re.search(r"spec=(P|PartitionSpec)\('pop',?\)", text)
    assert f"{devices} device(s) in 1 process(es)" in text
    assert "no accelerator: running on the CPU" in text
    assert f"{devices} shards on {devices} device(s)" in text
    images = sum("image/png" in o.get("data", {}) for c in code for o in c.outputs)
    assert images >= 4  # loss panels, accuracy curves, fitness, learned loss
