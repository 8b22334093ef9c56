"""The markers select what they claim: `-m "not slow"` leaves out the notebooks' cells (nbval cannot decorate
them; conftest.py marks them), and every marker used is registered in pyproject.toml."""
import re
import subprocess
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]


def collected(*args: str) -> tuple[int, int]:
    """(selected, deselected) of `pytest --collect-only` with `args`, run from the checkout."""
    done = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode in (0, 5), done.stdout[-2000:] + done.stderr[-2000:]   # 5: every test deselected
    last = done.stdout.strip().splitlines()[-1]
    selected = re.search(r"(\d+)(?:/\d+)? tests? collected", last)
    deselected = re.search(r"(\d+) deselected", last)
    return int(selected.group(1)) if selected else 0, int(deselected.group(1)) if deselected else 0


def test_not_slow_deselects_every_cell_of_a_notebook_and_slow_selects_them():
    notebook = "notebooks/01_adapter_anatomy.ipynb"
    cells, none = collected("--nbval-lax", "-m", "slow", notebook)
    assert cells > 5 and none == 0
    assert collected("--nbval-lax", "-m", "not slow", notebook) == (0, cells)


def test_every_marker_the_tests_use_is_registered():
    """`pytest.mark.<name>` of an unregistered name only warns, and `-m <name>` then selects nothing it should."""
    registered = {m.split(":")[0] for m in tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"][
        "ini_options"]["markers"]}
    builtin = {"parametrize", "skip", "skipif", "xfail", "usefixtures", "filterwarnings"}
    used = {m for path in (ROOT / "tests").glob("*.py") for m in re.findall(r"pytest\.mark\.(\w+)", path.read_text())}
    assert {"slow", "committed", "course_scale"} <= registered and used - builtin <= registered
