"""The import contract (.importlinter, import-linter): core <- engine <- plots <- sweeps | studies <- course <- cli.

A lower layer never imports a higher one: the core (config, modules, inject, policies, params,
checkpoint, heads, models, fast, errors, paths) never imports the engine (train, data, metrics,
records); the engine never imports plots, the subpackages sweeps/, studies/ and course/; sweeps and
studies are independent of each other; only the course reads them both; nothing imports the CLI.
"""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; "
                "sys.exit(lint_imports_command())"]


def lint(package_parent: Path, config: Path) -> subprocess.CompletedProcess:
    """lint-imports on the adapterlib found in `package_parent` (first on the path), with `config`."""
    return subprocess.run([*LINT_IMPORTS, "--config", str(config), "--no-cache"], cwd=package_parent,
                          env={"PYTHONPATH": str(package_parent), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=120)


def test_the_package_keeps_its_layers():
    result = lint(ROOT, ROOT / ".importlinter")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


@pytest.mark.parametrize("module, bad_import, arrow", [
    ("config", "from . import train", "adapterlib.config -> adapterlib.train"),            # core -> engine
    # engine -> sweeps
    ("records", "from .sweeps import aggregate", "adapterlib.records -> adapterlib.sweeps.aggregate"),
    ("data/cache", "from .. import plots", "adapterlib.data.cache -> adapterlib.plots"),  # engine package -> plots
    # plots package -> studies
    ("plots/curves", "from ..studies import ablation", "adapterlib.plots.curves -> adapterlib.studies.ablation"),
    # sweeps -> studies (independent)
    ("sweeps/aggregate", "from ..studies import paper", "adapterlib.sweeps.aggregate -> adapterlib.studies.paper"),
    # sweeps -> course
    ("sweeps/progress", "from ..course import runner", "adapterlib.sweeps.progress -> adapterlib.course.runner"),
    ("course/runner", "from .. import cli", "adapterlib.course.runner -> adapterlib.cli"),  # course -> cli
])
def test_the_contract_catches_an_import_against_the_layers(module, bad_import, arrow, tmp_path):
    copy = tmp_path / "adapterlib"
    shutil.copytree(ROOT / "adapterlib", copy, ignore=shutil.ignore_patterns("resources", "__pycache__"))
    target = copy / f"{module}.py"
    target.write_text(target.read_text() + f"\n{bad_import}  # against the layers\n")
    result = lint(tmp_path, ROOT / ".importlinter")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "0 kept, 1 broken" in result.stdout and arrow in result.stdout
