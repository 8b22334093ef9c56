"""The README's Python snippet (section "The library") runs as written, on a shrunk training budget."""
import importlib
import re
from pathlib import Path

import pytest
import torch

import adapterlib
from adapterlib import config
from adapterlib.checkpoint import trained_state

engine = importlib.import_module("adapterlib.train")  # adapterlib.train is the function
README = Path(__file__).resolve().parents[1] / "README.md"


def library_snippet() -> str:
    section = README.read_text().split("## The library", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.mark.committed
@pytest.mark.slow
def test_readme_library_snippet_loads_the_trained_adapters(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the snippet writes runs/
    monkeypatch.setenv("ADAPTERLIB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("GLUE_DIR", raising=False)

    def shrunk(**kwargs):  # the snippet's TrainConfig, on a budget of seconds
        return config.TrainConfig(**kwargs, max_steps=2, max_train_examples=64, max_eval_examples=32)
    monkeypatch.setattr(adapterlib, "TrainConfig", shrunk)
    fitted = []
    real_fit = engine.fit
    monkeypatch.setattr(engine, "fit", lambda *a, **k: fitted.append(real_fit(*a, **k)) or fitted[-1])

    scope: dict = {}
    exec(compile(library_snippet(), str(README), "exec"), scope)

    record, loaded, untrained = scope["record"], scope["trained"], scope["model"]
    assert record["timing"]["steps"] == 2 and record["checkpoint"] == record["run_id"]
    assert (tmp_path / "runs" / f"{record['run_id']}.json").is_file()
    groups = ("adapter", "layernorm", "head")
    want = trained_state(fitted[0].model, groups)
    got = trained_state(loaded, groups)
    assert set(got) == set(want) and any("adapter" in n for n in got)
    assert all(torch.equal(got[n].cpu(), want[n].cpu()) for n in want)  # the trained weights, exactly
    fresh = trained_state(untrained, ("adapter",))
    assert any(not torch.equal(fresh[n], got[n]) for n in fresh)  # and not the untrained ones


@pytest.mark.committed
def test_readme_is_a_front_door():
    """At most 150 lines; the install, test and course commands on the first 60, the install and test commands
    exactly as .ci/run runs them; the ledger, reliability and library details live on the site's pages."""
    lines = README.read_text().splitlines()
    assert len(lines) <= 150, len(lines)
    first = lines[:60]
    install = first[first.index("# install") + 1]
    test = first[first.index("# test") + 1]
    ci = (README.parent / ".ci" / "run").read_text().splitlines()
    assert all(step.strip() in ci for step in install.split("&&"))  # CI runs the install's steps one by one
    assert any(line.startswith(test) for line in ci)
    assert "python -m adapterlib course" in first
    for page in ("scorecard", "reproduction", "reliability", "library"):
        assert f"(book/{page}.md)" in README.read_text() and (README.parent / "book" / f"{page}.md").is_file()
