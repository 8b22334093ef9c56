"""The sweep machinery's worker side and helpers, called in this process (in a sweep they run in dask workers):
addresses, the per-run CPU lock, a run whose id comes out other than planned, papermill-mode runs, an unknown
task in a record, a checkout without sweep files, and YAML that SafeLoader cannot build."""
from __future__ import annotations

import fcntl
import json
import socket
from pathlib import Path

import pytest

from adapterlib import records
from adapterlib.sweeps import executor, status
from adapterlib.sweeps.executor import SweepError
from adapterlib.sweeps.yamlsafe import YamlError, load_yaml

# ---------------------------------------------------------------- addresses


@pytest.mark.parametrize("value, scheme", [("tcp://localhost:8786", True), (":8787", False),
                                           ("localhost:0", False), ("tcp://[::1]:8786", True)])
def test_local_addresses_are_accepted_without_a_lookup(monkeypatch, value, scheme):
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a: pytest.fail("looked up"))
    executor.check_address(value, "--x", scheme=scheme)


def test_a_host_name_is_looked_up_once(monkeypatch):
    asked = []
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, port: asked.append(host) or [("ok",)])
    executor.check_address("tcp://scheduler.cluster.lan:8786", "--scheduler", scheme=True)
    assert asked == ["scheduler.cluster.lan"]

    def fail(host, port):
        raise socket.gaierror(-2, "Name or service not known")
    monkeypatch.setattr(socket, "getaddrinfo", fail)
    with pytest.raises(SweepError, match="'scheduler.cluster.lan' does not resolve"):
        executor.check_address("tcp://scheduler.cluster.lan:8786", "--scheduler", scheme=True)


# ---------------------------------------------------------------- one run on a worker


def test_the_cpu_lock_is_held_for_the_run_and_released_after(tmp_path):
    lock = tmp_path / "cpu.lock"

    def free() -> bool:
        with open(lock, "a") as other:
            try:
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            fcntl.flock(other, fcntl.LOCK_UN)
            return True
    with executor._cpu_lock(str(lock)):
        assert not free()
    assert free()
    with executor._cpu_lock(None):   # no lock asked: nothing is created
        pass
    assert [p.name for p in tmp_path.iterdir()] == ["cpu.lock"]


def _job(tmp_path: Path, **changes) -> dict:
    return {"run_id": "rte-planned", "mode": "api", "fields": {"task": "rte", "policy": "adapter", "seed": 0},
            "runs_dir": str(tmp_path), "threads": None, "save_checkpoint": False, **changes}


def test_a_run_whose_id_is_not_the_planned_one_is_recorded_failed(tmp_path, monkeypatch):
    import importlib
    trainer = importlib.import_module("adapterlib.train")   # the module (adapterlib.train is also the function)
    monkeypatch.setattr(trainer, "train", lambda cfg, **kw: {"run_id": "rte-other", "status": "ok"})
    result = executor.execute_run(_job(tmp_path))
    assert (result["run_id"], result["status"]) == ("rte-planned", "failed")
    assert "rte-planned" in result["error"] and "rte-other" in result["error"]
    record, problem = records.read_record_file(tmp_path / "rte-planned.json")
    assert problem is None and record["status"] == "failed" and record["config"]["task"] == "rte"


@pytest.fixture
def fake_papermill(monkeypatch):
    """papermill's execute_notebook in place of a kernel: the notebook 'records' its parameters."""
    import papermill
    calls = []

    def execute_notebook(notebook, output, parameters, cwd, **kwargs):
        calls.append({"notebook": notebook, "output": output, "parameters": parameters, "cwd": cwd})
        Path(output).write_text("{}")
        if parameters.get("record", True):
            Path(parameters["results_path"]).write_text(json.dumps({"accuracy": 61.5, "got": parameters}))
    monkeypatch.setattr(papermill, "execute_notebook", execute_notebook)
    return calls


@pytest.mark.parametrize("keep", [False, True])
def test_a_papermill_run_records_what_the_notebook_recorded(tmp_path, fake_papermill, keep):
    notebook = tmp_path / "nbs" / "02_x.ipynb"
    notebook.parent.mkdir()
    notebook.write_text("{}")
    runs = tmp_path / "runs"
    job = _job(runs, mode="papermill", notebook=str(notebook), keep_notebooks=keep, run_id="nb-1",
               fields={"task": "SST-2", "seed": 3, "preset": "smoke"})
    runs.mkdir()
    assert executor.execute_run(job)["status"] == "ok"
    record, problem = records.read_record_file(runs / "nb-1.json")
    assert problem is None
    assert (record["mode"], record["task"], record["seed"], record["notebook"]) == ("papermill", "sst2", 3,
                                                                                    str(notebook))
    assert record["parameters"] == {"task": "SST-2", "seed": 3, "preset": "smoke"}
    assert record["results"]["accuracy"] == 61.5 and record["results"]["got"]["preset"] == "smoke"
    (call,) = fake_papermill
    assert call["cwd"] == str(notebook.parent)   # the notebook's own folder, as the course runs it
    assert (runs / "notebooks" / "nb-1.ipynb").is_file() is keep   # the executed copy only when kept
    assert sorted(p.name for p in runs.iterdir()) == ["nb-1.json"] + ["notebooks"] * keep


def test_a_notebook_that_records_nothing_is_a_failed_run(tmp_path, fake_papermill):
    notebook = tmp_path / "01_x.ipynb"
    notebook.write_text("{}")
    job = _job(tmp_path, mode="papermill", notebook=str(notebook), run_id="nb-2", fields={"record": False})
    result = executor.execute_run(job)
    assert result["status"] == "failed" and "record_results" in result["error"]
    record, problem = records.read_record_file(tmp_path / "nb-2.json")
    assert problem is None and record["task"] is None and record["parameters"] == {"record": False}


def test_a_record_of_an_unknown_task_keeps_the_name_given():
    job = {"run_id": "x", "mode": "api", "fields": {"task": "no-such-task", "policy": "adapter", "seed": 1}}
    record = executor.failed_record(job, ValueError("boom"), 1.5)
    assert (record["task"], record["policy"], record["seed"]) == ("no-such-task", "adapter", 1)
    assert record["error"] == "ValueError: boom" and record["timing"] == {"wall_s": 1.5}


# ---------------------------------------------------------------- status, YAML


def test_status_without_sweep_files_is_one_line(monkeypatch, tmp_path):
    (tmp_path / "smoke.yaml").write_text("name: smoke\n")   # the machinery check is not a study
    monkeypatch.setattr(status, "SWEEPS_DIR", tmp_path)
    with pytest.raises(SweepError, match=str(tmp_path)):
        status.repository_sweeps()
    (tmp_path / "glue.yaml").write_text("name: glue\n")
    assert status.repository_sweeps() == [tmp_path / "glue.yaml"]


@pytest.mark.parametrize("text, key", [("? [a, b]\n: 1\n", "unhashable"),
                                       ("{a: " * 3000 + "1" + "}" * 3000, "nests")])
def test_yaml_safeloader_cannot_build_is_one_line(text, key):
    with pytest.raises(YamlError) as info:
        load_yaml(text, "sweep.yaml")
    message = str(info.value)
    assert message.startswith("sweep.yaml: ") and key in message and "\n" not in message
