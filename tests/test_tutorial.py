"""The tutorial notebook (docs/tutorial.ipynb) runs from top to bottom and shows the rich
displays of Trajectory, VerificationReport, Regime, PhaseDiagram and Report."""

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
kernelspec = pytest.importorskip("jupyter_client.kernelspec")

NOTEBOOK = Path(__file__).resolve().parents[1] / "docs" / "tutorial.ipynb"


def kernel_available(name="python3"):
    try:
        return name in kernelspec.find_kernel_specs() or bool(
            kernelspec.KernelSpecManager().get_kernel_spec(name))
    except Exception:
        return False


def test_the_committed_notebook_has_no_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, cell.source[:60]


@pytest.mark.skipif(not kernel_available(), reason="no python3 Jupyter kernel (ipykernel)")
def test_tutorial_notebook_runs_and_displays(tmp_path):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    shown = {}
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        last = cell.source.strip().splitlines()[-1]
        for out in cell.outputs:
            assert out.output_type != "error", (cell.source, out)
            shown.setdefault(last, set()).update(out.get("data", {}))
    # the rich displays of every result type
    assert {"text/html", "text/markdown"} <= shown["traj"]                 # Trajectory
    assert "text/markdown" in shown["ed.verify(model, t)"]                  # VerificationReport
    assert "text/markdown" in shown["ed.classify(model)"]                   # Regime
    assert "text/markdown" in shown["pd"]                                   # PhaseDiagram
    assert "image/png" in shown["fig = pd.plot()"]                          # its figure
    assert "text/markdown" in shown["rep"]                                  # Report
    assert "text/markdown" in shown["ed.cite(model)"]
    verify_md = next(o for c in nb.cells if c.cell_type == "code"
                     and c.source.strip().endswith("ed.verify(model, t)")
                     for o in c.outputs if "data" in o)["data"]["text/markdown"]
    assert "✗" not in verify_md and "✓" in verify_md
