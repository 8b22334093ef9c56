"""The course's helpers (presets, shared run folder, runner) on their less travelled paths: fallbacks and refusals."""
from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest

import adapterlib as al
from adapterlib.cli import build_parser
from adapterlib.course import presets, runner, shared
from adapterlib.paths import PACKAGE_PARENT, project_root
from adapterlib.train import run_id

# ---------------------------------------------------------------- presets


def test_unknown_parameter_error_shows_as_one_line_in_a_notebook():
    error = presets.UnknownParameterError("unknown parameter(s) presett")
    assert error._render_traceback_() == ["UnknownParameterError: unknown parameter(s) presett"]


def test_a_parameters_cell_that_does_not_parse_declares_nothing():
    assert presets._assigned_names("x = (") == []
    assert presets._assigned_names("x = 1\ny: int = 2\na.b = 3") == ["x", "y"]
    with pytest.raises(presets.UnknownParameterError, match="preset"):   # nothing declared: every name is unknown
        presets.check_parameters({"In": ["", "preset = (", "# Parameters\npreset = 'smoke'\n"]})


def test_record_results_writes_the_values_or_nothing(tmp_path):
    assert presets.record_results(None, a=1) == {"a": 1}
    assert list(tmp_path.iterdir()) == []
    out = tmp_path / "r.json"
    assert presets.record_results(str(out), a=1, b=[2.5, "x"]) == {"a": 1, "b": [2.5, "x"]}
    assert json.loads(out.read_text()) == {"a": 1, "b": [2.5, "x"]}
    presets.record_results(out, a=2)                    # replaced, not appended to
    assert json.loads(out.read_text()) == {"a": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]   # no temp file left


# ---------------------------------------------------------------- shared run folder


def test_course_runs_dir_defaults_to_the_project_and_follows_the_variable(monkeypatch, tmp_path):
    monkeypatch.delenv(shared.RUNS_ENV, raising=False)
    assert shared.course_runs_dir() == project_root() / "outputs" / "course-runs"
    monkeypatch.setenv(shared.RUNS_ENV, str(tmp_path / "runs"))
    assert shared.course_runs_dir() == tmp_path / "runs"


CFG = al.TrainConfig(task="rte", adapter_size=8)


def _record(**changes) -> dict:
    record = {"run_id": run_id(CFG), "status": "ok", "task": "rte", "policy": "adapter", "config": CFG.to_dict(),
              "metric": "accuracy", "selected": {"validation_accuracy": 60.0}, "dev_score": 58.0, "params": {}}
    return {**record, **changes}


def _store(folder: Path, record) -> Path:
    path = folder / f"{run_id(CFG)}.json"
    path.write_text(record if isinstance(record, str) else json.dumps(record))
    return path


def test_stored_run_reads_a_finished_run(tmp_path):
    _store(tmp_path, _record())
    assert shared.stored_run(CFG, tmp_path)["dev_score"] == 58.0


@pytest.mark.parametrize("record", [
    '{"run_id": ',                                                      # a garbled file
    _record(status="failed", error="ValueError: x"),                    # a failed run
    _record(config={**CFG.to_dict(), "lr": 1e-3}),                      # another configuration under this name
    _record(config={**CFG.to_dict(), "no_such_field": 1}),              # a config TrainConfig does not know
    _record(config={**CFG.to_dict(), "lr": "fast"}),                    # ... or refuses
], ids=["garbled", "failed", "other-config", "unknown-field", "invalid-value"])
def test_stored_run_trains_again_rather_than_reuse(tmp_path, record):
    _store(tmp_path, record)
    assert shared.stored_run(CFG, tmp_path) is None


def test_stored_run_with_checkpoint_needs_the_checkpoint_folder(tmp_path):
    _store(tmp_path, _record())
    assert shared.stored_run(CFG, tmp_path, checkpoint=True) is None
    (tmp_path / run_id(CFG)).mkdir()
    assert shared.stored_run(CFG, tmp_path, checkpoint=True)["run_id"] == run_id(CFG)


# ---------------------------------------------------------------- runner


def _notebook(path: Path, parameters: str) -> Path:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(parameters)
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell, nbformat.v4.new_code_cell("pass")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def test_model_and_glue_dir_go_to_the_notebooks_that_declare_them(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ADAPTERLIB_PRESET", raising=False)  # CI runs with ADAPTERLIB_PRESET=smoke
    both = _notebook(tmp_path / "01_both.ipynb", "preset = None\nmodel = None\nglue_dir = None\n")
    neither = _notebook(tmp_path / "02_neither.ipynb", "preset = None\n")
    args = build_parser().parse_args(["course", "--output-dir", str(tmp_path / "out"), "--model", "some/model",
                                      "--glue-dir", "glue"])
    plans = runner.plan_parameters([both, neither], args)
    assert plans[both] == {"preset": "course", "model": "some/model", "glue_dir": str(tmp_path / "glue")}
    assert plans[neither] == {"preset": "course"}


def test_kernels_get_this_checkout_and_an_absolute_glue_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GLUE_DIR", "rel/glue")
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    with runner.importable_adapterlib():
        assert os.environ["GLUE_DIR"] == str(tmp_path / "rel" / "glue")
        assert os.environ["PYTHONPATH"].split(os.pathsep) == [str(PACKAGE_PARENT), "/elsewhere"]
    assert (os.environ["GLUE_DIR"], os.environ["PYTHONPATH"]) == ("rel/glue", "/elsewhere")


def test_describe_error_of_an_exception_papermill_did_not_raise():
    assert runner.describe_error(ValueError("first line\nsecond line")) == "ValueError: first line"
    assert runner.describe_error(KeyboardInterrupt()) == "KeyboardInterrupt: "
