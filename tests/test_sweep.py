"""Sweeps: file validation, run expansion, CPU planning, and real runs on a LocalCluster (tiny model)."""
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from tally import tally

from adapterlib import TrainConfig
from adapterlib.cli import main
from adapterlib.sweeps import aggregate, executor, status
from adapterlib.sweeps import driver as sweep
from adapterlib.sweeps import queue as sweep_queue
from adapterlib.sweeps.spec import SweepSpecError, expand, load_spec, parse_spec
from adapterlib.train import run_id

REPO = Path(__file__).resolve().parents[1]
SWEEPS = REPO / "sweeps"


def write_yaml(folder, data, name="sweep.yaml"):
    path = Path(folder) / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


def records_in(folder):
    return {p.stem: json.loads(p.read_text()) for p in (Path(folder) / "runs").glob("*.json")}


# ---------------------------------------------------------------- sweep files and expansion

@pytest.mark.parametrize("name,n_runs,seeds", [("smoke", 3, [1]), ("glue_cpu", 60, [1, 2]), ("size_cpu", 34, []),
                                               ("init_cpu", 16, []), ("ablation_cpu", 2, []),
                                               ("glue_v2", 84, [1, 2, 3, 4]), ("size_v2", 78, []),
                                               ("init_v2", 48, []), ("ablation_v2", 2, [])])
def test_repository_sweep_files_are_valid(name, n_runs, seeds, tmp_path):
    spec = load_spec(SWEEPS / f"{name}.yaml")
    runs = expand(spec)
    assert spec.name == name and len(runs) == n_runs and spec.seeds == seeds
    assert spec.save_checkpoint == name.startswith("ablation")  # checkpoints only where a study needs them
    for run in runs:
        assert run.run_id == run_id(TrainConfig(**run.fields))
        assert run.fields["glue_dir"] is None and run.fields["model"] is None  # run ids do not depend on a machine
    if name == "glue_v2":  # selection on 2 seeds on the small tasks, 1 elsewhere; 3 lrs per method and size
        seeds = {(r.fields["task"], r.fields["seed"]) for r in runs}
        assert seeds == {("rte", 0), ("rte", 1), ("mrpc", 0), ("mrpc", 1), ("stsb", 0), ("cola", 0), ("sst2", 0)}
        lrs = {}
        for r in runs:
            lrs.setdefault((r.fields["task"], r.fields["seed"], r.fields["policy"], r.fields["adapter_size"]
                            if r.fields["policy"] == "adapter" else None), set()).add(r.fields["lr"])
        assert len(lrs) == 7 * 4 and all(len(v) == 3 for v in lrs.values())
        assert all(r.fields["patience"] and r.fields["head_input"] == "mean" for r in runs)
        # planned on an empty folder: the grid, then 4 more seeds per (task, policy) minus the seed 1 RTE and
        # MRPC already have
        assert sweep.study_progress(spec, tmp_path / "empty")["planned"] == 84 + 5 * 2 * 4 - 2 * 2
    if name.endswith("_v2") and name != "pilot_v2":  # one recipe for the whole v2 programme
        recipe = {"epochs": 20, "patience": 3, "batch_size": 32, "max_length": 128, "head_input": "mean"}
        assert all({k: r.fields[k] for k in recipe} == recipe for r in runs)
        assert len({r.fields["mixed_precision"] for r in runs}) == 1
    if name in ("size_v2", "init_v2"):  # the settings they share with glue_v2 have its run ids, so they are copied
        glue = {r.run_id for r in expand(load_spec(SWEEPS / "glue_v2.yaml"))}
        shared = {r.run_id for r in runs} & glue
        assert len(shared) == (2 * (3 + 3 * 3) if name == "size_v2" else 2)  # full + 3 sizes x 3 lrs; std 1e-2 seed 0
        if name == "size_v2":  # and the two lrs glue_v2 added past its grid's edge (extend_edges), as explicit runs
            edge = {(r.fields["task"], r.fields["policy"], r.fields["lr"]) for r in runs if r.run_id not in glue}
            assert {("cola", "adapter", 1.2e-3), ("sst2", "full", 9e-6)} <= edge
    if name == "init_v2":
        assert {r.fields["init_std"] for r in runs} == {1e-7, 1e-6, 1e-5, 1e-4, 1e-3, None, 0.1, 1.0}
    if name in ("glue_cpu", "size_cpu", "init_cpu", "glue_v2", "size_v2", "init_v2", "ablation_v2"):
        assert all(r.fields["max_train_examples"] == (8000 if r.fields["task"] == "sst2" else None) for r in runs)
        if name.endswith("_v2"):
            assert all(r.fields["val_fraction"] == (0.03 if r.fields["task"] == "sst2" else 0.1) for r in runs)


def test_expand_grid_variants_per_task_runs_and_coercion():
    spec = parse_spec({
        "name": "t", "base": {"epochs": 2, "lr": "3e-4"},          # YAML reads 3e-4 as a string: coerced
        "grid": {"task": ["SST-2", "rte"], "seed": [0]},
        "variants": [{"policy": ["full"], "lr": [1e-5, "2e-5"]}, {"policy": ["adapter"], "adapter_size": [8, 64]}],
        "per_task": {"sst2": {"max_train_examples": 100}},
        "runs": [{"task": "rte", "policy": "adapter", "adapter_size": 8},   # duplicate of a grid run: dropped
                 {"task": "rte", "policy": "top_k", "top_k": 2, "init_std": 1}],
    })
    runs = expand(spec)
    assert len(runs) == 2 * (2 + 2) + 1
    assert len({r.run_id for r in runs}) == len(runs)
    full = [r.fields for r in runs if r.fields["policy"] == "full"]
    assert sorted({f["lr"] for f in full}) == [1e-5, 2e-5] and all(type(f["lr"]) is float for f in full)
    adapters = [r.fields for r in runs if r.fields["policy"] == "adapter"]
    assert all(f["lr"] == 3e-4 and f["epochs"] == 2 for f in adapters)
    assert {(r.fields["task"], r.fields["max_train_examples"]) for r in runs} == {("sst2", 100), ("rte", None)}
    assert runs[-1].fields["init_std"] == 1.0 and type(runs[-1].fields["init_std"]) is float


BASE = {"name": "t", "grid": {"task": ["rte"], "lr": [1e-3]}}


@pytest.mark.parametrize("change,message", [
    ({"grid": {"lrr": [1e-3]}}, "unknown TrainConfig field 'lrr'"),
    ({"grid": {}}, "empty sweep"),
    ({"grid": {"lr": 1e-3}}, "grid.lr must be a non-empty list"),
    ({"grid": {"lr": []}}, "grid.lr must be a non-empty list"),
    ({"grid": {"lr": ["fast"]}}, "grid.lr: lr must be float, got 'fast'"),
    ({"grid": {"adapter_size": [8.5]}}, "adapter_size must be int, got 8.5"),
    ({"grid": {"epochs": [True]}}, "epochs must be int"),
    ({"grid": {"lr": [-1.0]}}, "lr must be a finite number"),
    ({"grid": {"task": ["mnli2"]}}, "unknown GLUE task 'mnli2'"),
    ({"grid": {"policy": ["bogus"]}}, "unknown policy 'bogus'"),
    ({"grid": {"init_std": [-1.0]}}, "init_std must be a finite number >= 0"),
    ({"gird": {}}, "unknown key(s) ['gird']"),
    ({"name": "a b"}, "name must be a folder-safe string"),
    ({"base": [1, 2]}, "base must be a mapping"),
    ({"per_task": {"rte": {"lr": 1e-4}}}, "also a grid field"),
    ({"per_task": {"qqq": {"lr": 1e-4}}}, "unknown GLUE task 'qqq'"),
    ({"variants": [{"lr": [1e-4]}]}, "repeats grid field(s) ['lr']"),
    ({"select_then_seeds": {"seeds": []}}, "seeds must be a non-empty list"),
    ({"select_then_seeds": {"by": ["taks"], "seeds": [1]}}, "needs `by:`"),
    ({"mode": "papermill"}, "mode papermill needs `notebook:`"),
    ({"mode": "slurm"}, "mode must be api or papermill"),
    ({"reuse": "pilot_v2"}, "reuse must be a non-empty list of other studies' names"),
    ({"reuse": ["t"]}, "reuse must be a non-empty list of other studies' names"),
    ({"reuse": ["../x"]}, "reuse must be a non-empty list of other studies' names"),
])
def test_invalid_sweep_files_fail_before_running_with_one_line(tmp_path, capsys, change, message):
    path = write_yaml(tmp_path, {**BASE, **change})
    assert main(["sweep", str(path), "--output-dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()


def test_bad_yaml_and_bad_set(tmp_path, capsys):
    path = write_yaml(tmp_path, "name: t\ngrid: {lr: [1e-3\n")
    assert main(["sweep", str(path), "--dry-run"]) == 2
    assert "invalid YAML" in capsys.readouterr().err
    assert main(["sweep", str(SWEEPS / "smoke.yaml"), "--dry-run", "--set", "lr"]) == 2
    assert "--set expects FIELD=VALUE" in capsys.readouterr().err
    assert main(["sweep", str(SWEEPS / "smoke.yaml"), "--dry-run", "--set", "lrate=1"]) == 2
    assert "'lrate'" in capsys.readouterr().err   # the unknown field, named


# ---------------------------------------------------------------- CPU plan

def test_plan_workers_never_oversubscribes():
    plan = executor.plan_workers
    assert plan(cores=2) == (1, 2)                       # default: one run at a time, all cores
    assert plan(workers=2, cores=2) == (2, 1)
    assert plan(threads=1, cores=2) == (2, 1)
    assert plan(threads=2, cores=8) == (4, 2)
    with pytest.raises(executor.SweepError, match=r"2 x --threads-per-run 2 = 4 threads .* 2 CPU"):
        plan(workers=2, threads=2, cores=2)
    with pytest.raises(executor.SweepError, match="exceeds"):
        plan(threads=3, cores=2)
    assert plan(threads=16, scheduler="tcp://x:8786", cores=2) == (None, 16)   # an existing cluster sizes itself
    with pytest.raises(executor.SweepError, match="LocalCluster only"):
        plan(workers=2, scheduler="tcp://x:8786")


def test_cli_refuses_oversubscription(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(executor, "available_cores", lambda: 2)
    rc = main(["sweep", str(SWEEPS / "smoke.yaml"), "--output-dir", str(tmp_path / "s"), "--workers", "2",
               "--threads-per-run", "2"])
    assert rc == 2 and "--threads-per-run 2" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_a_study_runs_one_driver_at_a_time(tmp_path):
    spec = load_spec(SWEEPS / "smoke.yaml")
    with sweep.study_lock(tmp_path / "s"):
        with pytest.raises(executor.SweepError, match="another sweep"):
            sweep.run_sweep(spec, tmp_path / "s", progress=False)


# ---------------------------------------------------------------- real sweeps on a LocalCluster

def tiny_args(tiny_model_dir, tiny_glue_dir):
    return ["--set", f"model={tiny_model_dir}", "--set", f"glue_dir={tiny_glue_dir}", "--threads-per-run", "1",
            "--quiet"]


@pytest.fixture(scope="module")
def smoke_study(tiny_model_dir, tiny_glue_dir, tmp_path_factory):
    """sweeps/smoke.yaml on the tiny model, plus one run that fails (top 5 layers of a 2-layer model)."""
    folder = tmp_path_factory.mktemp("sweep")
    data = yaml.safe_load((SWEEPS / "smoke.yaml").read_text())
    data["runs"] = [{"policy": "top_k", "top_k": 5, "lr": 1e-3}]
    path = write_yaml(folder, data, "smoke_fail.yaml")
    args = ["sweep", str(path), "--output-dir", str(folder / "study"), *tiny_args(tiny_model_dir, tiny_glue_dir)]
    assert main(args) == 1  # a failed run makes the exit status 1, after every other run finished
    return folder / "study", args


@pytest.mark.slow
def test_sweep_records_failures_and_runs_seeds_at_the_selected_setting(smoke_study):
    study, _ = smoke_study
    recs = records_in(study)
    assert len(recs) == 3 + 1 + 2 and all(name == r["run_id"] for name, r in recs.items())
    failed = [r for r in recs.values() if r["status"] == "failed"]
    assert len(failed) == 1 and "1..2" in failed[0]["error"]   # top_k's range
    assert failed[0]["config"]["top_k"] == 5 and "Traceback" in failed[0]["traceback"]
    ok = [r for r in recs.values() if r["status"] == "ok"]
    assert all(r["history"] and r["selected"] in r["history"] for r in ok)
    assert not any((study / "runs" / r["run_id"]).exists() for r in ok)  # save_checkpoint: false
    grid = aggregate.records_frame([r for r in ok if r["seed"] == 0])
    best = aggregate.select_best(grid).set_index("policy")
    seeded = {(r["policy"], r["config"]["lr"]) for r in ok if r["seed"] == 1}
    assert seeded == {("full", 1e-4), ("adapter", best.loc["adapter", "lr"])}
    log = [json.loads(line) for line in (study / "sweep_log.jsonl").read_text().splitlines()]
    assert [e["event"] for e in log] == ["start", "end"] and log[1]["ok"] == 5 and log[1]["failed"] == 1
    assert log[1]["cpu_s"] == pytest.approx(sum(r["timing"]["wall_s"] * r["machine"]["torch_threads"]
                                               for r in recs.values()), abs=0.2)  # the CPU time of the runs trained
    assert (study / "sweep.yaml").read_text().startswith("name: smoke")
    with sweep.study_lock(study):  # the driver's OS lock ended with it (the lock file itself may stay)
        pass


@pytest.mark.slow
def test_rerun_skips_finished_runs_without_starting_a_cluster(smoke_study, capsys, monkeypatch):
    study, args = smoke_study
    before = {p.name: p.stat().st_mtime_ns for p in (study / "runs").glob("*.json")}
    monkeypatch.setattr(executor.DaskPool, "get", lambda self: pytest.fail("nothing to run, no cluster needed"))
    assert main(args) == 0
    assert tally(capsys.readouterr().out) == {"ok": 0, "failed": 0, "already done": 6}
    assert before == {p.name: p.stat().st_mtime_ns for p in (study / "runs").glob("*.json")}
    assert main([*args, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert tally(out) == {"runs": 6, "done": 5, "failed": 1, "to run": 0} and "seeds" in out


@pytest.mark.slow
def test_deleted_record_and_leftover_temp_file_rerun_only_that_run(smoke_study, capsys):
    study, args = smoke_study
    runs = study / "runs"
    victim = sorted(p for p in runs.glob("*.json") if json.loads(p.read_text())["status"] == "ok")[0]
    victim.unlink()
    (runs / f".{victim.name}.abc123.tmp").write_text('{"run_id": "half')   # a write cut off by kill -9
    before = {p.name: p.stat().st_mtime_ns for p in runs.glob("*.json")}
    assert main(args) == 0
    assert tally(capsys.readouterr().out) == {"ok": 1, "failed": 0, "already done": 5}
    after = {p.name: p.stat().st_mtime_ns for p in runs.glob("*.json")}
    assert set(after) == set(before) | {victim.name} and all(after[n] == t for n, t in before.items())
    assert not list(runs.glob(".*.tmp"))


@pytest.mark.slow
def test_retry_failed_reruns_only_failed_runs(smoke_study, capsys):
    study, args = smoke_study
    failed = [p for p in (study / "runs").glob("*.json") if json.loads(p.read_text())["status"] == "failed"]
    stamp = failed[0].stat().st_mtime_ns
    assert main([*args, "--retry-failed"]) == 1
    assert tally(capsys.readouterr().out) == {"ok": 0, "failed": 1, "already done": 5}
    assert failed[0].stat().st_mtime_ns != stamp


@pytest.mark.slow
def test_reuse_copies_ok_records_of_the_same_runs_from_another_study(smoke_study, tiny_model_dir, tiny_glue_dir,
                                                                      capsys, monkeypatch):
    """`reuse: [study]`: a run with an ok record of the same id in that study is copied (plus reused_from),
    not rerun; a failed one is not reused; status counts the copies as finished but not in CPU time."""
    study, _ = smoke_study
    data = yaml.safe_load((SWEEPS / "smoke.yaml").read_text())
    data.update(name="reuser", reuse=[study.name])
    data["runs"] = [{"policy": "top_k", "top_k": 5, "lr": 1e-3}]   # failed in the source study: not reused
    path = write_yaml(study.parent, data, "reuser.yaml")
    folder = study.parent / "reuser"
    spec = load_spec(path, {"model": str(tiny_model_dir), "glue_dir": str(tiny_glue_dir)})
    failing = [r for r in expand(spec) if r.fields["policy"] == "top_k"][0]
    assert sweep.reuse_source(spec, failing, folder) is None
    assert "copied from study" in sweep.describe_plan(spec, folder)
    spec.runs = []  # without the failing run everything is in the source study: nothing to train
    monkeypatch.setattr(executor.DaskPool, "get", lambda self: pytest.fail("every run is reused"))
    counts = sweep.run_sweep(spec, folder, progress=False)
    assert (counts["ok"], counts["failed"], counts["reused"]) == (0, 0, 5) and counts["skipped"] == 5
    source, copies = records_in(study), records_in(folder)
    assert len(copies) == 5 and set(copies) < set(source)
    for name, rec in copies.items():
        digest = rec.pop("reused_from")
        assert rec == source[name] and digest["study"] == study.name
        assert digest["sha256"] == hashlib.sha256((study / "runs" / f"{name}.json").read_bytes()).hexdigest()
    log = [json.loads(line) for line in (folder / "sweep_log.jsonl").read_text().splitlines()]
    assert [e["event"] for e in log] == ["start", "reused", "reused", "end"]  # the grid's runs, then the seeds'
    assert {**log[1]["runs"], **log[2]["runs"]} == dict.fromkeys(copies, study.name)
    progress = sweep.study_progress(spec, folder)
    assert (progress["finished"], progress["reused"], progress["wall_h"], progress["cpu_h"]) == (5, 5, 0, 0)
    assert "reused 3 " in capsys.readouterr().out  # the grid; then 2 seed runs
    counts = sweep.run_sweep(spec, folder, progress=False)   # a second run: nothing left to copy
    assert counts["reused"] == 0 and counts["skipped"] == 5
    # a copy of a copy keeps the first provenance
    spec.name, spec.reuse = "reuser2", ["reuser"]
    assert sweep.run_sweep(spec, study.parent / "reuser2", progress=False)["reused"] == 5
    assert {r["reused_from"]["study"] for r in records_in(study.parent / "reuser2").values()} == {study.name}
    # a sweep that keeps checkpoints reuses only runs whose checkpoint folder exists, and copies it
    spec.name, spec.reuse, spec.save_checkpoint = "reuser3", [study.name], True
    grid = expand(spec)
    assert all(sweep.reuse_source(spec, r, study.parent / "reuser3") is None for r in grid)
    (study / "runs" / grid[0].run_id).mkdir()
    (study / "runs" / grid[0].run_id / "adapter.safetensors").write_bytes(b"weights")
    try:
        assert sweep.reuse_records(spec, grid, study.parent / "reuser3") == [(grid[0].run_id, study.name)]
        copied = study.parent / "reuser3" / "runs" / grid[0].run_id / "adapter.safetensors"
        assert copied.read_bytes() == b"weights"
    finally:
        __import__("shutil").rmtree(study / "runs" / grid[0].run_id)


@pytest.mark.slow
def test_aggregate_cli_on_a_real_sweep(smoke_study, tmp_path, capsys):
    study, _ = smoke_study
    assert main(["aggregate", str(study), "--out-dir", str(tmp_path)]) == 0
    written = capsys.readouterr().out.split()
    assert {Path(p).name for p in written} >= {"runs.csv", "best.csv", "summary.csv"}
    best = (tmp_path / "best.csv").read_text().splitlines()
    assert best[0].startswith("task,policy,adapter_size") and len(best) == 1 + 2


@pytest.mark.slow
def test_seeds_run_task_by_task_so_a_stopped_sweep_leaves_whole_tasks(tiny_model_dir, tiny_glue_dir, tmp_path,
                                                                      monkeypatch):
    data = {"name": "bytask", "base": {"epochs": 1, "batch_size": 16, "max_length": 32, "max_train_examples": 64,
                                       "policy": "adapter", "adapter_size": 4},
            "grid": {"task": ["rte", "sst2"], "seed": [0], "lr": [1e-3, 3e-3]},
            "select_then_seeds": {"by": ["task", "policy"], "seeds": [1]}}
    path = write_yaml(tmp_path, data)
    submitted, in_flight = [], []
    real_get = executor.DaskPool.get

    def recording_get(self):
        client = real_get(self)
        if not getattr(client, "_recorded", False):
            real_submit = client.submit

            def submit(fn, job, **kwargs):
                submitted.append((job["fields"]["task"], "seeds" if job["fields"]["seed"] else "grid"))
                in_flight.append(sum(not f.done() for f in futures) + 1)
                future = real_submit(fn, job, **kwargs)
                futures.append(future)
                return future

            futures = []
            client.submit, client._recorded = submit, True
        return client

    monkeypatch.setattr(executor.DaskPool, "get", recording_get)
    args = ["sweep", str(path), "--output-dir", str(tmp_path / "study"), *tiny_args(tiny_model_dir, tiny_glue_dir),
            "--workers", "1"]
    assert main(args) == 0
    # one worker: a task's grid, then its seeds (submitted as soon as its grid finished), then the next task
    assert submitted == [("rte", "grid")] * 2 + [("rte", "seeds")] + [("sst2", "grid")] * 2 + [("sst2", "seeds")]
    assert max(in_flight) == 1  # never more runs in flight than workers: the queue, not dask, orders the work
    # two workers: a free worker starts sst2's grid while rte's grid finishes, never idling (how far sst2 gets
    # before rte's seeds depends on which run ends first); a group's seeds still wait for its whole grid
    submitted.clear(), in_flight.clear()
    monkeypatch.setattr(executor, "available_cores", lambda: 2)  # also under an xdist worker pinned to one core
    assert main([*args[:-2], "--workers", "2", "--output-dir", str(tmp_path / "study2")]) == 0
    assert sorted(submitted) == sorted([("rte", "grid")] * 2 + [("rte", "seeds")] + [("sst2", "grid")] * 2
                                       + [("sst2", "seeds")])
    assert submitted[:2] == [("rte", "grid")] * 2
    for task in ("rte", "sst2"):
        last_grid = len(submitted) - 1 - submitted[::-1].index((task, "grid"))
        assert submitted.index((task, "seeds")) > last_grid
    assert max(in_flight) == 2
    # a group whose grid is unfinished gets no seeds yet; the other task's seeds stand
    spec = load_spec(path, {"model": str(tiny_model_dir), "glue_dir": str(tiny_glue_dir)})
    runs_dir = tmp_path / "study" / "runs"
    sst2_grid = [r for r in expand(spec) if r.fields["task"] == "sst2"]
    (runs_dir / f"{sst2_grid[0].run_id}.json").unlink()
    assert [r.fields["task"] for r in sweep.seed_runs(spec, expand(spec), runs_dir)] == ["rte"]
    assert "1 runs so far" in sweep.describe_plan(spec, tmp_path / "study")


@pytest.mark.slow
def test_status_counts_finished_and_planned_runs(smoke_study, tiny_model_dir, tiny_glue_dir):
    study, _ = smoke_study
    spec = load_spec(study.parent / "smoke_fail.yaml", {"model": str(tiny_model_dir), "glue_dir": str(tiny_glue_dir)})
    progress = sweep.study_progress(spec, study)
    recs = records_in(study)
    assert progress["finished"] == progress["planned"] == 6 and progress["failed"] == 1
    assert progress["tasks"] == ["rte"] and progress["tasks_complete"] == []  # its top_k=5 run failed
    clean = load_spec(SWEEPS / "smoke.yaml", {"model": str(tiny_model_dir), "glue_dir": str(tiny_glue_dir)})
    assert sweep.study_progress(clean, study)["tasks_complete"] == ["rte"]  # the same runs without the failing one
    assert progress["wall_h"] == pytest.approx(sum(r["timing"]["wall_s"] for r in recs.values()
                                                   if "timing" in r) / 3600)
    assert progress["cpu_h"] == pytest.approx(sum(r["timing"]["wall_s"] * r.get("machine", {}).get("torch_threads", 1)
                                                  for r in recs.values() if "timing" in r) / 3600)
    walls = [r["timing"]["wall_s"] / 60 for r in recs.values() if r.get("timing", {}).get("wall_s")]
    rte = progress["by_task"]["rte"]
    assert (rte["finished"], rte["failed"], rte["planned"], rte["left_h"]) == (6, 1, 6, 0)
    assert rte["run_min"] == pytest.approx([min(walls), max(walls)]) and rte["wall_h"] == progress["wall_h"]
    (study / "runs" / f"{expand(spec)[0].run_id}.json").rename(study / "moved.json")  # a grid run not finished
    try:
        progress = sweep.study_progress(spec, study)
        assert sweep.study_progress(clean, study)["tasks_complete"] == []
        finished = [run.run_id for status, run in sweep.plan(spec, study) if status != "todo"]
    finally:
        (study / "moved.json").rename(study / "runs" / f"{expand(spec)[0].run_id}.json")
    assert progress["finished"] < progress["planned"]
    rte = progress["by_task"]["rte"]  # one grid run unfinished: estimated at the mean of the finished runs
    assert rte["planned"] == progress["planned"] and rte["planned"] - rte["finished"] >= 1
    left = [recs[k]["timing"]["wall_s"] * recs[k]["machine"]["torch_threads"] for k in finished
            if recs[k].get("timing", {}).get("wall_s")]
    assert rte["left_h"] == pytest.approx((rte["planned"] - rte["finished"]) * sum(left) / len(left) / 3600)
    table = status.status_markdown([SWEEPS / "smoke.yaml"])
    assert "| `sweeps/smoke.yaml` | RTE |" in table and table.count("\n\n") == 1
    text = "intro\n" + status.STATUS_BEGIN + "\nold table\n" + status.STATUS_END + "\nafter\n"
    assert status.replace_status_block(text, "| new |") == ("intro\n" + status.STATUS_BEGIN + "\n| new |\n"
                                                          + status.STATUS_END + "\nafter\n")
    with pytest.raises(executor.SweepError, match="no"):
        status.replace_status_block("no markers", "| new |")


@pytest.mark.committed
def test_ledger_status_table_matches_the_committed_records():
    text = (REPO / "book" / "reproduction.md").read_text()  # the site's reproduction ledger
    block = text.split(status.STATUS_BEGIN, 1)[1].split(status.STATUS_END, 1)[0].strip()
    assert block == status.status_markdown(status.repository_sweeps()), \
        "stale: python -m adapterlib status --update book/reproduction.md"


def _six_run_sweep(name, tmp_path, tiny_model_dir, tiny_glue_dir):
    """A tiny six-run sweep's driver command, its environment, records folder and run ids."""
    data = {"name": name, "base": {"task": "rte", "epochs": 2, "batch_size": 16, "max_length": 32},
            "grid": {"seed": [0, 1, 2, 3, 4, 5], "lr": [1e-3]}}
    path = write_yaml(tmp_path, data)
    tiny = {"model": str(tiny_model_dir), "glue_dir": str(tiny_glue_dir)}
    expected = {r.run_id for r in expand(load_spec(path, tiny))}
    cmd = [sys.executable, "-m", "adapterlib", "sweep", str(path), "--output-dir", str(tmp_path / "study"),
           *tiny_args(tiny_model_dir, tiny_glue_dir), "--workers", "1", "--lock", str(tmp_path / "cpu.lock")]
    return cmd, {**os.environ, "PYTHONPATH": str(REPO)}, tmp_path / "study" / "runs", expected


def _start_until_first_record(cmd, env, runs, **popen):
    driver = subprocess.Popen(cmd, cwd=REPO, env=env, **{"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL,
                                                         **popen})
    deadline = time.time() + 90
    while not list(runs.glob("*.json")) and time.time() < deadline and driver.poll() is None:
        time.sleep(0.05)
    return driver, {p.name: p.read_text() for p in runs.glob("*.json")}


@pytest.mark.slow
def test_kill_9_then_restart_completes_without_duplicates(tiny_model_dir, tiny_glue_dir, tmp_path):
    """Kill the driver with SIGKILL once the first record exists; the same command then finishes the rest
    (and gets the per-run CPU lock the killed workers held)."""
    cmd, env, runs, expected = _six_run_sweep("killme", tmp_path, tiny_model_dir, tiny_glue_dir)
    driver, first = _start_until_first_record(cmd, env, runs)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    assert first and len(first) < len(expected), "the sweep should have been killed midway"
    time.sleep(2)  # the LocalCluster's worker processes die with their driver: no more records appear
    survivors = {p.name for p in runs.glob("*.json")}
    time.sleep(2)
    assert {p.name for p in runs.glob("*.json")} == survivors
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "already done" in done.stdout
    recs = records_in(tmp_path / "study")
    assert set(recs) == expected and all(r["status"] == "ok" and r["run_id"] == k for k, r in recs.items())
    assert all((runs / name).read_text() == text for name, text in first.items())  # finished runs kept as they were
    assert not list(runs.glob(".*"))


@pytest.mark.slow
def test_sigterm_stops_the_sweep_as_ctrl_c_does_and_logs_its_end(tiny_model_dir, tiny_glue_dir, tmp_path):
    """`kill` (SIGTERM: a session's or a cluster job's end) leaves the study's log an "end" line marked
    interrupted, exit code 130 and the resume hint; finished records are kept as they were."""
    cmd, env, runs, expected = _six_run_sweep("termme", tmp_path, tiny_model_dir, tiny_glue_dir)
    driver, first = _start_until_first_record(cmd, env, runs, stderr=subprocess.PIPE, text=True)
    time.sleep(1)  # the driver has collected the first run's result by now
    driver.send_signal(signal.SIGTERM)
    _, err = driver.communicate(timeout=60)
    assert first and len(first) < len(expected), "the sweep should have been stopped midway"
    assert driver.returncode == 130 and "to resume" in err, err[-2000:]
    log = [json.loads(line) for line in (tmp_path / "study" / "sweep_log.jsonl").read_text().splitlines()]
    assert [e["event"] for e in log] == ["start", "end"] and log[-1]["interrupted"] is True
    # the end line counts the runs that finished before the signal (it said ok 0 until 2026-12-04)
    assert 1 <= log[-1]["ok"] <= len(list(runs.glob("*.json"))) and log[-1]["cpu_s"] > 0
    assert all((runs / name).read_text() == text for name, text in first.items())


NOTEBOOK_CELLS = [
    ("x = 1  # help: a number\ntask = 'rte'  # help: task\nresults_path = None  # help: where to record",
     ["parameters"]),
    ("import json\nassert x != 3, 'x must not be 3'\nvalues = {'task': task, 'val_score': 50.0 + x, "
     "'dev_score': 40.0 + x, 'note': 'hi'}\njson.dump(values, open(results_path, 'w'))", []),
]


@pytest.mark.slow
def test_papermill_mode_records_what_the_notebook_recorded(tmp_path):
    import nbformat
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src, metadata={"tags": tags}) for src, tags in NOTEBOOK_CELLS]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "toy.ipynb")
    spec = parse_spec({"name": "nb", "mode": "papermill", "notebook": "toy.ipynb", "base": {"task": "rte"},
                       "grid": {"x": [1, 2, 3]}}, root=tmp_path)
    with pytest.raises(SweepSpecError, match=r"toy.ipynb .y.; known: x, task$"):
        parse_spec({"name": "nb", "mode": "papermill", "notebook": "toy.ipynb", "grid": {"y": [1]}}, root=tmp_path)
    counts = sweep.run_sweep(spec, tmp_path / "study", workers=1, threads_per_run=1, progress=False)
    assert counts["ok"] == 2 and counts["failed"] == 1
    df = aggregate.load_study(tmp_path / "study").sort_values("val_score")
    assert list(df["val_score"].dropna()) == [51.0, 52.0] and list(df["result_note"].dropna()) == ["hi", "hi"]
    failed = df[df["status"] == "failed"].iloc[0]
    assert "must not be 3" in failed["error"]
    assert set(df["task"]) == {"rte"}


@pytest.mark.slow
def test_smoke_sweep_with_the_bundled_model(tmp_path):
    """sweeps/smoke.yaml exactly as committed: bundled MiniLM, real RTE from the bundled GLUE copy (or GLUE_DIR),
    about half a minute on one core."""
    assert main(["sweep", str(SWEEPS / "smoke.yaml"), "--output-dir", str(tmp_path), "--quiet"]) == 0
    df = aggregate.load_study(tmp_path)
    assert len(df) == 5 and set(df["status"]) == {"ok"} and df["dev_score"].between(0, 100).all()


def test_set_overrides_every_run_and_picks_its_per_task_fields():
    spec = load_spec(SWEEPS / "init_cpu.yaml", {"task": "SST-2", "model": "bert-base-uncased"})
    runs = expand(spec)
    assert len(runs) == 8 and {r.fields["task"] for r in runs} == {"sst2"}      # 2 tasks collapse into one
    assert {r.fields["max_train_examples"] for r in runs} == {8000}
    assert {r.fields["model"] for r in runs} == {"bert-base-uncased"}


def test_cost_estimate_from_measured_per_epoch_costs(tmp_path):
    """Per-epoch cost x epochs; with patience, the epochs such runs really ran (the plan's epochs = at most)."""
    from adapterlib.sweeps import driver as S
    from adapterlib.sweeps.spec import Run
    runs = tmp_path / "runs"
    runs.mkdir()
    rows = [(None, 3, 360.0, 1, "no"), (None, 3, 270.0, 2, "no"), (3, 8, 960.0, 1, "no"), (3, 8, 480.0, 1, "bf16")]
    for i, (patience, epochs_run, wall, threads, precision) in enumerate(rows):
        (runs / f"r{i}.json").write_text(json.dumps({
            "run_id": f"r{i}", "status": "ok", "task": "rte", "policy": "adapter", "metric": "accuracy",
            "config": {"task": "rte", "policy": "adapter", "patience": patience, "mixed_precision": precision},
            "params": {"trainable": 1}, "machine": {"torch_threads": threads},
            "selected": {"epoch": 1.0, "validation_accuracy": 50.0},
            "dev_score": 50.0, "timing": {"wall_s": wall, "epochs_run": epochs_run}}))
    copied = json.loads((runs / "r0.json").read_text())   # a copy of another study's run: counted there
    (runs / "r9.json").write_text(json.dumps({**copied, "run_id": "r9", "reused_from": {"study": "x", "sha256": "0"}}))
    costs = S.epoch_costs([runs])
    assert sorted(costs[("rte", "adapter", None, "no")]["core_min_per_epoch"]) == [2.0, 2.0, 3.0]  # wall x threads
    assert costs[("rte", "adapter", None, "bf16")]["core_min_per_epoch"] == [1.0]
    plain = Run("a", {"task": "RTE", "policy": "adapter", "epochs": 3}, "grid")
    early = Run("b", {"task": "rte", "policy": "adapter", "epochs": 20, "patience": 3}, "grid")
    other = Run("c", {"task": "cola", "policy": "adapter", "epochs": 3}, "grid")
    expected, at_most, unknown = S.estimate_hours([plain, early, other], costs)
    assert unknown == 1                                   # no CoLA runs measured
    assert expected == pytest.approx((2.0 * 3 + 2.0 * 8) / 60)    # median 2 core-min/epoch; 8 epochs with patience
    assert at_most == pytest.approx((2.0 * 3 + 2.0 * 20) / 60)
    bf16 = Run("d", {"task": "rte", "policy": "adapter", "epochs": 20, "patience": 3, "mixed_precision": "bf16"})
    fp16 = Run("e", {"task": "rte", "policy": "adapter", "epochs": 3, "mixed_precision": "fp16"})
    assert S.estimate_hours([bf16], costs)[0] == pytest.approx(1.0 * 8 / 60)   # its own precision's cost
    assert S.estimate_hours([fp16], costs)[0] == pytest.approx(2.0 * 3 / 60)   # never measured: full precision's
    del costs[("rte", "adapter", None, "bf16")]
    costs[("rte", "full", None, "no")] = {"core_min_per_epoch": [4.0], "epochs_run_with_patience": []}
    full = Run("f", {"task": "rte", "policy": "full", "epochs": 20, "patience": 3})
    assert S.estimate_hours([full], costs)[0] == pytest.approx(4.0 * 8 / 60)   # epochs: other early-stopped runs


@pytest.mark.parametrize("code,studies", [(0, 4), (1, 4), (130, 1), (143, 1)])
def test_run_v2_goes_on_after_failed_runs_and_stops_when_interrupted(tmp_path, code, studies):
    """sweeps/run_v2.sh runs the four v2 studies in order, and the layer-span ablation right after ablation_v2; a
    study with failed runs (exit 1) does not stop the programme but makes it end with exit code 1; an interrupted
    sweep (Ctrl-C / SIGTERM: 130, killed: 143) stops it (a fake `python` records calls; the script runs from a
    copy in an empty project, so no committed table decides whether the ablation is due)."""
    calls = tmp_path / "calls"
    fake = tmp_path / "bin" / "python"
    fake.parent.mkdir()
    fake.write_text(f'#!/usr/bin/env bash\necho "$*" >> {calls}\nexit {code}\n')
    fake.chmod(0o755)
    (tmp_path / "project" / "sweeps").mkdir(parents=True)
    script = tmp_path / "project" / "sweeps" / "run_v2.sh"
    script.write_text((REPO / "sweeps" / "run_v2.sh").read_text())
    env = {**os.environ, "PATH": f"{fake.parent}:{os.environ['PATH']}", "ADAPTERLIB_LOCK": str(tmp_path / "lock")}
    done = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=60)
    lines = calls.read_text().splitlines()
    assert done.returncode == code, done.stderr     # failed runs: the whole programme runs, then exits 1
    expected = ["-m adapterlib sweep sweeps/ablation_v2.yaml", "sweeps/layer_ablation.py data/results/ablation_v2",
                "-m adapterlib sweep sweeps/glue_v2.yaml", "-m adapterlib sweep sweeps/init_v2.yaml",
                "-m adapterlib sweep sweeps/size_v2.yaml"]
    assert [line.split(" --")[0] for line in lines] == (expected if studies == 4 else expected[:1])
    assert all("--workers 2 --threads-per-run 1" in line for line in lines if "adapterlib sweep" in line)
    assert ("runs failed in: ablation_v2 layer_ablation glue_v2 init_v2 size_v2" in done.stderr) is (code == 1)

@pytest.mark.committed
def test_runs_trained_on_a_gpu_are_counted_apart_from_the_cpu_time(tmp_path):
    """A GPU run counts as finished, but not in the CPU time, the run times or the CPU estimates: the status
    gives the GPU's runs and the hours it was training at least one of them (overlapping runs count once)."""
    spec_file = tmp_path / "mini.yaml"
    spec_file.write_text("name: mini\nbase: {task: rte, policy: adapter, epochs: 3}\n"
                         "grid: {lr: [1.0e-3, 2.0e-3, 3.0e-3]}\n")
    spec = load_spec(spec_file)
    runs = expand(spec)
    (tmp_path / "runs").mkdir()

    def record(run, wall, threads, created, gpu=None):
        machine = {"torch_threads": threads, **({"gpu": gpu} if gpu else {})}
        (tmp_path / "runs" / f"{run.run_id}.json").write_text(json.dumps({
            "run_id": run.run_id, "status": "ok", "task": "rte", "policy": "adapter", "metric": "accuracy",
            "config": {**run.fields, "task": "rte"}, "params": {"trainable": 1}, "machine": machine,
            "selected": {"epoch": 3.0, "validation_accuracy": 60.0}, "dev_score": 60.0, "created": created,
            "timing": {"wall_s": wall, "epochs_run": 3}}))

    record(runs[0], 600.0, 2, "2026-12-04T10:00:00Z")
    record(runs[1], 300.0, 1, "2026-12-04T12:05:00Z", gpu="NVIDIA H200")   # 12:00-12:05
    record(runs[2], 300.0, 1, "2026-12-04T12:08:00Z", gpu="NVIDIA H200")   # 12:03-12:08: overlaps the first
    progress = sweep.study_progress(spec, tmp_path)
    assert progress["finished"] == progress["planned"] == 3
    typed = sweep.measure_progress(spec, tmp_path)   # the same, as dataclasses (study_progress is its JSON form)
    assert typed.to_dict() == progress and typed.finished == 3 and typed.by_task["rte"].planned == 3
    assert progress["wall_h"] == pytest.approx(600 / 3600) and progress["cpu_h"] == pytest.approx(1200 / 3600)
    assert progress["gpu"] == {"NVIDIA H200": {"runs": 2, "busy_h": pytest.approx(480 / 3600)}}
    rte = progress["by_task"]["rte"]
    assert rte["run_min"] == pytest.approx([10.0, 10.0]) and rte["gpu"] == progress["gpu"]
    assert status._on_gpus(progress["gpu"]) == " + 2 runs on NVIDIA H200 (0.13 h)" and status._on_gpus({}) == ""
    cpu = sweep.epoch_costs([tmp_path / "runs"], device=None)
    gpu = sweep.epoch_costs([tmp_path / "runs"], device="NVIDIA H200")
    assert cpu[("rte", "adapter", None, "no")]["core_min_per_epoch"] == pytest.approx([20 / 3])   # 600 s x 2 / 3
    assert gpu[("rte", "adapter", None, "no")]["core_min_per_epoch"] == pytest.approx([5 / 3, 5 / 3])
    if not __import__("torch").cuda.is_available():   # by default: the runs of the machine that estimates
        assert sweep.epoch_costs([tmp_path / "runs"]) == cpu
    (tmp_path / "runs" / f"{runs[0].run_id}.json").unlink()    # no CPU run of its own: the other studies' CPU runs
    costs = sweep.epoch_costs(sorted(sweep.RESULTS_DIR.glob("*/runs")), device=None)
    assert sweep.study_progress(spec, tmp_path)["by_task"]["rte"]["left_h"] == \
        pytest.approx(sweep.estimate_hours([runs[0]], costs)[0])


def test_a_run_whose_record_appears_after_the_plan_is_not_trained_again(tmp_path, monkeypatch):
    """Two machines on one study (a GPU lent for part of it, a second driver): a run whose record another
    one wrote after this driver planned it is skipped when its turn comes, not trained again over it."""
    from dask.distributed import LocalCluster

    from adapterlib.records import record_problem, write_json_atomic
    spec = parse_spec({"name": "appear", "base": {"task": "rte", "policy": "adapter"}, "grid": {"seed": [0, 1, 2]}})
    grid = expand(spec)
    folder = tmp_path / "study"
    (folder / "runs").mkdir(parents=True)

    def record(run):
        return {"run_id": run.run_id, "status": "ok", "task": "rte", "policy": "adapter", "config": run.fields,
                "metric": "accuracy", "selected": {"epoch": 1.0, "validation_accuracy": 50.0}, "dev_score": 50.0,
                "params": {"trainable": 1}}

    assert record_problem(record(grid[0])) is None
    trained = tmp_path / "trained.txt"  # dask may hand the worker a copy of this function: log to a file

    def fake_execute_run(job):  # in this process (processes=False), in place of training
        with open(trained, "a") as f:
            f.write(job["run_id"] + "\n")
        if job["run_id"] == grid[0].run_id:  # meanwhile another machine finishes seed 2
            write_json_atomic(folder / "runs" / f"{grid[2].run_id}.json", {**record(grid[2]), "note": "theirs"})
        run = next(r for r in grid if r.run_id == job["run_id"])
        write_json_atomic(folder / "runs" / f"{run.run_id}.json", record(run))
        return {"status": "ok", "cpu_s": 1.0}

    monkeypatch.setattr(sweep_queue, "execute_run", fake_execute_run)   # run_queue lives in sweeps/queue.py
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        with executor.DaskPool(1, scheduler=cluster.scheduler_address) as pool:  # one run in flight at a time
            counts = sweep.run_queue(pool, spec, grid, folder, threads=1, progress=False)
    assert trained.read_text().split() == [grid[0].run_id, grid[1].run_id]
    assert counts["ok"] == 2 and counts["skipped"] == 1
    assert json.loads((folder / "runs" / f"{grid[2].run_id}.json").read_text())["note"] == "theirs"
