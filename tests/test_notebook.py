"""examples/quickstart.ipynb runs in a real Jupyter kernel (nbclient, ipykernel), so it
cannot rot: training with a widget progress bar, evaluation, an inline figure, a video."""

import base64
import io
import re
from pathlib import Path

import nbclient
import nbformat
import numpy as np
from PIL import Image

NOTEBOOK = Path(__file__).parent.parent / "examples" / "quickstart.ipynb"


def test_the_quickstart_notebook_runs_and_shows_its_outputs(tmp_path):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not c.get("outputs") for c in notebook.cells if c.cell_type == "code")  # clean
    client = nbclient.NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": tmp_path}}
    )
    client.execute()  # raises CellExecutionError on any cell's error
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    data = {kind for o in outputs for kind in o.get("data", {})}
    assert "application/vnd.jupyter.widget-view+json" in data  # tqdm.auto: a widget here
    text = "".join(o.get("text", "") for o in outputs)
    final, best = (float(m) for m in re.findall(r"model: mean return (-?[\d.]+)", text))
    # The best model evaluated on fresh episodes is solved; the final one (the preset's run,
    # whose exact trajectory depends on the CPU's float rounding) has clearly learnt.
    assert best >= 475 and final >= 195, text
    (png,) = [o["data"]["image/png"] for o in outputs if "image/png" in o.get("data", {})]
    pixels = np.asarray(Image.open(io.BytesIO(base64.b64decode(png))).convert("L"))
    assert pixels.shape[1] >= 800 and pixels.std() > 10  # a drawn figure, not a blank one
    (html,) = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert "<video" in html and "base64" in html
    assert len(list(tmp_path.glob("runs/quickstart-*/evaluations.csv"))) == 1
