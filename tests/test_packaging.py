"""environment.yml (conda users) and pyproject.toml (pip users) name the same dependencies."""
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[ ;]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip_reqs = project["dependencies"] + project["optional-dependencies"]["dev"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda_pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    conda_reqs = [r for r in conda_pip if not r.startswith("-e")]
    assert sorted(map(_name, pip_reqs)) == sorted(map(_name, conda_reqs))
    # same version floors, except torch, which environment.yml pins to the CPU wheel
    floors = {_name(r): r.replace(" ", "") for r in pip_reqs if _name(r) != "torch"}
    assert {_name(r): r.replace(" ", "") for r in conda_reqs if _name(r) != "torch"} == floors
    assert "torch==2.13.0" in conda_reqs


def test_readme_commands_match_ci():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    test_cmd = re.search(r"# test\n(.+)\n", readme).group(1).strip()
    assert test_cmd in ci, "the README's test command must be what .ci/run runs"
