"""environment.yml (conda users) and pyproject.toml (pip users) name the same dependencies."""
import re
from pathlib import Path

import pytest
import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[ ;]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    pip_reqs = project["dependencies"] + [r for reqs in extras.values() for r in reqs if _name(r) != "adapterlib"]
    assert {_name(r) for r in extras["dev"] if _name(r) == "adapterlib"} == {"adapterlib"}  # dev pulls the rest
    assert "adapterlib[course,sweeps]" in extras["dev"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda_pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    conda_reqs = [r for r in conda_pip if not r.startswith("-e")]
    assert sorted(map(_name, pip_reqs)) == sorted(map(_name, conda_reqs))
    # same version floors, except torch, which environment.yml pins to the CPU wheel
    floors = {_name(r): r.replace(" ", "") for r in pip_reqs if _name(r) != "torch"}
    assert {_name(r): r.replace(" ", "") for r in conda_reqs if _name(r) != "torch"} == floors
    assert "torch==2.13.0" in conda_reqs


@pytest.mark.committed
def test_readme_commands_match_ci():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    test_cmd = re.search(r"# test\n(.+)\n", readme).group(1).strip()
    assert test_cmd in ci, "the README's test command must be what .ci/run runs"
    lint = "ruff check adapterlib tests benchmarks tools sweeps conftest.py"
    install = re.search(r"# install\n(.+)\n", readme).group(1).rsplit("&& ", 1)[-1].strip()
    assert lint in readme and ci.index(install) < ci.index(lint) < ci.index(test_cmd)   # lint fails CI before tests


@pytest.mark.slow
def test_project_files_are_found_under_one_root(tmp_path):
    """data/, sweeps/ and notebooks/ come from paths.project_root(): $ADAPTERLIB_ROOT first, else this checkout."""
    import os
    import subprocess
    import sys

    show = ("from adapterlib import paths; "
            "from adapterlib.studies import paper; from adapterlib.sweeps import aggregate; "
            "print(aggregate.RESULTS_DIR, paper.DATA_DIR, paths.NOTEBOOK_DIR, paths.SWEEPS_DIR)")
    env = {**os.environ, "ADAPTERLIB_ROOT": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", show], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == [str(tmp_path / p) for p in ("data/results", "data/paper", "notebooks", "sweeps")]
    env.pop("ADAPTERLIB_ROOT")
    out = subprocess.run([sys.executable, "-c", show], env=env, cwd=tmp_path, capture_output=True, text=True,
                         check=True).stdout
    assert out.split()[0] == str(ROOT / "data" / "results")  # the checkout, wherever the command runs
    status = subprocess.run([sys.executable, "-m", "adapterlib", "status"], capture_output=True, text=True,
                            env={**env, "ADAPTERLIB_ROOT": str(tmp_path)})
    assert status.returncode == 2 and status.stderr.strip().splitlines() == [
        f"error: no sweep files in {tmp_path / 'sweeps'}: name them, run from a checkout, or set $ADAPTERLIB_ROOT"]
