"""Execute a course notebook with papermill at the smoke scale and return what it recorded."""
from __future__ import annotations

import json
import os
from pathlib import Path

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def notebook_path(prefix: str) -> Path:
    """The notebook whose file name starts with `prefix` (e.g. "01")."""
    found = sorted(NOTEBOOKS.glob(f"{prefix}_*.ipynb"))
    assert len(found) == 1, f"expected one notebook {prefix}_*.ipynb in {NOTEBOOKS}, found {found}"
    return found[0]


def run_notebook(prefix: str, tmp_path: Path, **parameters) -> dict:
    """papermill-execute notebook `prefix` at preset smoke into tmp_path; return its recorded results."""
    import papermill as pm

    results = tmp_path / f"{prefix}_results.json"
    params = {"preset": "smoke", "results_path": str(results), **parameters}
    env_before = os.environ.get("ADAPTERLIB_PRESET")
    pm.execute_notebook(str(notebook_path(prefix)), str(tmp_path / f"{prefix}_out.ipynb"), parameters=params,
                        kernel_name="python3", cwd=str(NOTEBOOKS), progress_bar=False)
    assert env_before == os.environ.get("ADAPTERLIB_PRESET")
    return json.loads(results.read_text())
