"""The course's widgets in a real browser: JupyterLab on 127.0.0.1, headless Chromium driven by Playwright.

A temporary folder gets a copy of notebook 01 and a cut of notebook 03 (its setup cells, the cell that
loads notebook 03's size study and the study-explorer cells); JupyterLab serves it with a token on a free port,
with ADAPTERLIB_PRESET=smoke in the kernels' environment. Chromium opens each notebook, runs every cell
from JupyterLab's Run menu, then moves the explorers' sliders with the keyboard and checks that the
table rendered in the page changes.

Needs Chromium (Debian: `apt-get install -y chromium`; or set CHROMIUM_PATH) and the `playwright`
package (the dev extra). Playwright's own browser download is not used. Skipped when either is missing.
"""
from __future__ import annotations

import copy
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
TIMEOUT_MS = 120_000  # one notebook's "Run All" on a busy 2-core machine


def _chromium() -> str | None:
    for candidate in (os.environ.get("CHROMIUM_PATH"), "chromium", "chromium-browser", "google-chrome"):
        if candidate and (found := shutil.which(candidate)):
            return found
    return None


CHROMIUM = _chromium()
sync_api = pytest.importorskip("playwright.sync_api",
                               reason="the playwright package is not installed (pip install -e '.[dev]')")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium browser on PATH (apt-get install -y chromium, "
                                                         "or set CHROMIUM_PATH)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _notebook_03_study() -> str:
    """The stored size study notebook 03 reads (its `study` parameter)."""
    import re

    nb = nbformat.read(NOTEBOOKS / "03_adapter_size_vs_parameters.ipynb", 4)
    params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    return re.search(r'^study = "([^"]+)"', params.source, re.M).group(1)


def _study_cut(dest: Path) -> None:
    """Notebook 03 reduced to what its study explorer needs: nothing is trained."""
    nb = nbformat.read(NOTEBOOKS / "03_adapter_size_vs_parameters.ipynb", 4)
    params = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    keep = [c for c in nb.cells[: params + 2] if c.cell_type == "code"]  # imports, parameters, preset
    keep += [c for c in nb.cells[params + 2:] if c.cell_type == "code"
             and ("load_study(study)" in c.source or "study_explorer" in c.source)]
    assert sum("StudyExplorer(" in c.source for c in keep) == 1, "notebook 03 has no study-explorer cell"
    cut = copy.deepcopy(nb)
    cut.cells = [copy.deepcopy(c) for c in keep]
    for c in cut.cells:
        c.outputs, c.execution_count = [], None
    cut.metadata.pop("widgets", None)
    nbformat.write(cut, dest)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab serving a temp copy of the notebooks; yields (base url, token)."""
    root = tmp_path_factory.mktemp("lab")
    shutil.copy(NOTEBOOKS / "01_adapter_anatomy.ipynb", root)
    _study_cut(root / "study_explorer.ipynb")
    settings = root / ".settings"  # user settings: every cell rendered (no windowing), no news pop-up
    for plugin, values in {"notebook-extension/tracker": {"windowingMode": "none"},
                           "apputils-extension/notification": {"fetchNews": "false"}}.items():
        path = settings / f"@jupyterlab/{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "ADAPTERLIB_PRESET": "smoke", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "OMP_NUM_THREADS": "1", "JUPYTER_RUNTIME_DIR": str(root / ".runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(settings), "JUPYTERLAB_WORKSPACES_DIR": str(root / ".workspaces")}
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
           f"--LabApp.workspaces_dir={root / '.workspaces'}", "--LabApp.news_url=None",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--LabApp.extension_manager=readonly"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # CI and containers run as root
        cmd.append("--allow-root")
    log = open(root / "jupyter.log", "w")
    server = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"

    def api(path, method="GET"):
        req = urllib.request.Request(f"{base}{path}", method=method, headers={"Authorization": f"token {token}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read() or b"null")

    try:
        for _ in range(120):
            if server.poll() is not None:
                pytest.fail(f"JupyterLab exited: {(root / 'jupyter.log').read_text()[-2000:]}")
            try:
                api("/api/status")
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail(f"JupyterLab did not answer: {(root / 'jupyter.log').read_text()[-2000:]}")
        yield base, token
    finally:
        try:
            for kernel in api("/api/kernels"):
                api(f"/api/kernels/{kernel['id']}", method="DELETE")
        except OSError:
            pass
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        yield chromium
        chromium.close()


def _run_all(browser, lab, notebook: str, shots: Path):
    """Open `notebook` in JupyterLab and run every cell from the Run menu; returns the page."""
    base, token = lab
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(TIMEOUT_MS)
    try:
        # a workspace of its own, reset: the page shows this notebook only, whatever an earlier page left open
        page.goto(f"{base}/lab/workspaces/{Path(notebook).stem}/tree/{notebook}?reset&token={token}")
        page.locator(".jp-Notebook .jp-Cell").first.wait_for()
        started = page.locator(".jp-Notebook .jp-CodeCell .jp-InputPrompt", has_text=re.compile(r"\[(\*|\d+)\]"))
        for attempt in range(3):  # "Run All" before the kernel is connected does nothing: try again
            page.locator("#jp-main-statusbar", has_text="Idle").wait_for()  # kernel started
            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
            page.locator('.lm-Menu-item[data-command="runmenu:run-all"]').click()
            try:
                started.first.wait_for(timeout=15_000)
                break
            except sync_api.TimeoutError:
                if attempt == 2:
                    raise
    except Exception:
        page.screenshot(path=str(shots / f"{notebook}-failure.png"))
        page.close()
        raise
    return page


def _wait_for_text(locator, *expected: str, before: str | None = None, timeout_s: float = 60) -> str:
    """The locator's text once it contains every `expected` string (and differs from `before`).

    Widget updates go through the kernel, so the page changes some time after a key press.
    """
    deadline = time.monotonic() + timeout_s
    now = ""
    while time.monotonic() < deadline:
        now = locator.inner_text()
        if all(e in now for e in expected) and now != before:
            return now
        time.sleep(0.25)
    raise AssertionError(f"rendered output did not show {expected} within {timeout_s} s; it shows:\n{now}")


def _press(page, handle, key: str, times: int) -> None:
    handle.focus()
    for _ in range(times):
        page.keyboard.press(key)


@pytest.mark.slow
def test_init_std_slider_changes_the_rendered_drift_table(browser, lab, tmp_path):
    page = _run_all(browser, lab, "01_adapter_anatomy.ipynb", tmp_path)
    try:
        explorer = page.locator(".adapterlib-drift-explorer")
        view = explorer.locator(".adapterlib-view")
        view.locator("table.drift-table").wait_for()
        before = view.inner_text()
        assert "init std 1.0e-02" in before and "A gripping, beautifully shot film." in before
        # the printed fallback below the widget came from the same kernel run
        page.locator(".jp-OutputArea-output", has_text="mean [CLS] relative change").first.wait_for()
        _press(page, explorer.locator(".noUi-handle").first, "ArrowRight", 4)  # step 0.25 decades: 1e-2 -> 1e-1
        after = _wait_for_text(view, "init std 1.0e-01", "A gripping, beautifully shot film.", before=before)
        page.screenshot(path=str(tmp_path / "drift-after.png"))
        assert "init std 1.0e-02" not in after
        # the notebook ran to its end without an error at smoke scale
        assert page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']",
                            has_text="Traceback").count() == 0
    except Exception:
        page.screenshot(path=str(tmp_path / "drift-failure.png"), full_page=True)
        raise
    finally:
        page.close()


@pytest.mark.slow
def test_study_explorer_sliders_change_the_rendered_table(browser, lab, tmp_path):
    page = _run_all(browser, lab, "study_explorer.ipynb", tmp_path)
    try:
        explorer = page.locator(".adapterlib-study-explorer")
        view = explorer.locator(".adapterlib-view")
        view.locator("table").wait_for()
        before = view.inner_text()
        assert "training at most" in before   # the budget row's label
        assert "full fine-tuning" in before and "none within budget" not in before
        # the budget slider starts at the largest budget (full fine-tuning): two steps left excludes it
        from adapterlib.sweeps.aggregate import load_study, size_curve
        budgets = sorted(set(int(n) for n in size_curve(load_study(_notebook_03_study()))["trainable"]))
        _press(page, explorer.locator(".widget-hslider .noUi-handle").first, "ArrowLeft", 2)
        after = _wait_for_text(view, f"at most {budgets[-3]:,} parameters", "none within budget", before=before)
        assert "full fine-tuning" in after
        # the layer-span view: switch, then widen the removed span with the range slider's upper handle
        explorer.locator("button", has_text="layer-span ablation").click()
        spans = _wait_for_text(view, "switched off at inference", "layer 0 removed", before=after)
        _press(page, explorer.locator(".widget-hslider .noUi-handle").last, "ArrowRight", 5)
        widened = _wait_for_text(view, "layers 0-5 removed", "layers 0..5", before=spans)
        page.screenshot(path=str(tmp_path / "study-after.png"))
        assert "all removed (0-5)" in widened and "layers 0-5 removed" not in spans
    except Exception:
        page.screenshot(path=str(tmp_path / "study-failure.png"), full_page=True)
        raise
    finally:
        page.close()
