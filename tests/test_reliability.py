"""Reliability: a table-driven battery of bad inputs, and fault tests of the sweep driver.

The CLI's contract for a bad input: exit code 2 and exactly one stderr line naming the bad value or
file; never a traceback, never a half-written, changed or deleted file. Every case of CASES runs
through `adapterlib.cli.main(argv)` in-process and is classified as one of OUTCOMES; the README's
"Reliability" figures are these counts (`RELIABILITY_REPORT=FILE pytest tests/test_reliability.py -k figures`
writes them to FILE).

The fault tests run tiny sweeps (tiny random model, toy data, a few steps per run) and kill the
driver with SIGKILL at random points, start two drivers at once, garble a record, and make the
record writer fail: afterwards nothing finished is lost or duplicated, and nothing outside the
study folder changed.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import os
import random
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Callable

import pytest
import yaml
from tally import tally

from adapterlib import records
from adapterlib.cli import main
from adapterlib.sweeps import aggregate, executor
from adapterlib.sweeps import driver as sweep
from adapterlib.sweeps.spec import expand, load_spec, parse_spec

REPO = Path(__file__).resolve().parents[1]
OUTCOMES = ("clear error", "correct success", "traceback", "silent acceptance", "misleading line", "data lost")


# ---------------------------------------------------------------- the battery's machinery

@dataclasses.dataclass
class Case:
    name: str
    argv: Callable[[dict], list]      # ctx -> argv (ctx: tmp, model, glue, ckpt, ...)
    expect: str                       # a bad input: text its one error line must hold; a good one: "" (exit 0)
    check: Callable[[dict, str, str], bool] | None = None   # good input: (ctx, stdout, stderr) -> is it right
    xfail: str = ""                   # known, outside this module's files (who owns it)
    fault: Callable[[pytest.MonkeyPatch], None] | None = None   # patches a writer to fail (a full disk), for this case


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under `folder` with its sha256 (what a command must not change or delete)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def run_cli(argv: list) -> tuple[int | str, str, str]:
    """main(argv) in-process: (exit code or "traceback", stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main([str(a) for a in argv])
        except SystemExit as e:
            rc = e.code if isinstance(e.code, int) else 2
        except BaseException:  # noqa: BLE001 - what the user would see as a traceback
            traceback.print_exc(file=err)
            rc = "traceback"
    return rc, out.getvalue(), err.getvalue()


def classify(case: Case, ctx: dict, rc, out: str, err: str, before: dict, after: dict) -> str:
    """One of OUTCOMES for how the CLI treated the case."""
    lost = [f for f in before if f not in after or after[f] != before[f]]
    if lost:
        return "data lost"
    if rc == "traceback" or "Traceback (most recent call last)" in err:
        return "traceback"
    if not case.expect:  # a good input
        return "correct success" if rc == 0 and (case.check is None or case.check(ctx, out, err)) else "misleading line"
    if rc == 0:
        return "silent acceptance"
    lines = err.strip().splitlines()
    half_written = [f for f in after if f not in before and (f.endswith(".tmp") or "/runs/" in f)]
    if rc != 2 or len(lines) != 1 or case.expect not in lines[0] or half_written:
        return "misleading line"
    return "clear error"


def write_yaml(folder: Path, data, name="sweep.yaml") -> Path:
    path = folder / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


def tiny_sweep(ctx: dict, name: str = "t", **changes) -> Path:
    data = {"name": name, "base": {"task": "rte", "epochs": 1, "max_steps": 2, "batch_size": 16, "max_length": 32,
                                   "max_train_examples": 64, "max_eval_examples": 16, "model": str(ctx["model"]),
                                   "glue_dir": str(ctx["glue"])},
            "grid": {"lr": [1e-3]}}
    data.update(changes)
    return write_yaml(ctx["tmp"], data, f"{name}.yaml")


def checkpoint(ctx: dict, name: str, edit: Callable[[dict], None] | None = None) -> Path:
    """A copy of the tiny RTE checkpoint whose adapter_config.json `edit` changed."""
    import shutil
    path = ctx["tmp"] / name
    shutil.copytree(ctx["ckpt"], path)
    if edit:
        meta = json.loads((path / "adapter_config.json").read_text())
        edit(meta)
        (path / "adapter_config.json").write_text(json.dumps(meta))
    return path


def study_with_records(ctx: dict, recs: list[dict], name: str) -> Path:
    folder = ctx["tmp"] / name
    (folder / "runs").mkdir(parents=True)
    for rec in recs:
        (folder / "runs" / f"{rec['run_id']}.json").write_text(json.dumps(rec))
    return folder


def fake_ok(task="rte", lr=1e-3, seed=0) -> dict:
    from adapterlib import TrainConfig
    from adapterlib.train import run_id
    cfg = TrainConfig(task=task, lr=lr, seed=seed)
    return {"run_id": run_id(cfg), "status": "ok", "task": task, "policy": "adapter", "config": cfg.to_dict(),
            "seed": seed, "metric": "accuracy", "selected": {"epoch": 1.0, "validation_accuracy": 60.0 + seed},
            "dev_score": 55.0, "params": {"trainable": 10, "frozen": 90, "base": 100, "percent_of_base": 10.0},
            "timing": {"wall_s": 60.0}}


def _dropped(key):
    return lambda meta: meta.pop(key)


def _train(ctx, *extra):
    return ["train", "--task", "rte", "--model", ctx["model"], "--glue-dir", ctx["glue"], "--max-steps", "2",
            "--max-train-examples", "32", "--max-eval-examples", "16", "--max-length", "32", "--batch-size", "16",
            "--quiet", "--output-dir", ctx["tmp"] / "runs", *extra]


def _user_csv_kept(ctx, out, err):
    return (ctx["tmp"] / "agg" / "mine.csv").read_text() == "mine\n" and (ctx["tmp"] / "agg" / "best.csv").exists()


def _one_run_planned(ctx, out, err):
    return "1 runs: 0 done, 0 failed, 1 to run" in out


def _bad_record_named(ctx, out, err):
    return "garbled" in out and "invalid record" in out and "1 runs: 1 done" in out


def _aggregate_excludes(ctx, out, err):
    summary = (ctx["tmp"] / "badagg" / "tables" / "summary.csv").read_text()
    return "garbled.json" in err and "excluded_records,1" in summary and "runs,1\n" in summary


def _garbled_study(ctx, name):
    folder = study_with_records(ctx, [fake_ok()], name)
    (folder / "runs" / "garbled.json").write_text('{"run_id": "gar')
    return folder


def _dry_run_with_garbled_record(ctx):
    spec_path = tiny_sweep(ctx, "drygarble")
    folder = ctx["tmp"] / "drygarble"
    run = expand(load_spec(spec_path))[0]
    (folder / "runs").mkdir(parents=True)
    (folder / "runs" / f"{run.run_id}.json").write_text(json.dumps({**fake_ok(), "run_id": run.run_id}))
    (folder / "runs" / "garbled.json").write_text("{not json")
    return ["sweep", spec_path, "--output-dir", folder, "--dry-run"]


# ---- issue 30's classes: nested record fields, absurd arguments, full disks, a record in two places

def _nested(path: str, value) -> Callable[[dict], None]:
    """A record edit: set the nested field `path` ("timing.wall_s", "history") to `value`."""
    def edit(rec: dict) -> None:
        *parents, last = path.split(".")
        target = rec
        for key in parents:
            target = target[key]
        target[last] = value
    return edit


NESTED_EDITS = {  # a record whose nested field has the wrong type: named and left out, never an AttributeError
    "timing a string": _nested("timing", "fast"), "timing.wall_s a string": _nested("timing.wall_s", "60 s"),
    "history a number": _nested("history", 5), "history entries not mappings": _nested("history", [3]),
    "machine a string": _nested("machine", "laptop"),
    "machine.torch_threads a string": _nested("machine.torch_threads", "2"),
    "reused_from a string": _nested("reused_from", "pilot_v2"), "config.lr a string": _nested("config.lr", "fast"),
    "params.trainable a string": _nested("params.trainable", "10"), "dev scores a list": _nested("dev", {"dev": [1]}),
}


def _slug(label: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in label)


def _edited(edit) -> dict:
    rec = {**fake_ok(), "history": [{"step": 1, "epoch": 1.0, "train_loss": 0.7, "validation_accuracy": 60.0}],
           "machine": {"cpu_count": 2, "torch_threads": 1}, "dev": {"dev": {"accuracy": 55.0}}}
    rec = json.loads(json.dumps(rec))
    edit(rec)
    return rec


def _dry_run_with_nested(ctx, label, edit):
    spec_path = tiny_sweep(ctx, f"nest_{_slug(label)}")
    folder = ctx["tmp"] / spec_path.stem
    run = expand(load_spec(spec_path))[0]
    (folder / "runs").mkdir(parents=True)
    good = {**fake_ok(), "run_id": run.run_id}
    (folder / "runs" / f"{run.run_id}.json").write_text(json.dumps(good))
    bad = _edited(edit)
    (folder / "runs" / f"{bad['run_id']}.json").write_text(json.dumps(bad))
    return ["sweep", spec_path, "--output-dir", folder, "--dry-run"]


def _nested_named(ctx, out, err):
    return "invalid record" in out and "1 runs: 1 done" in out


def _aggregate_with_nested(ctx, label, edit):
    bad = _edited(edit)
    bad["run_id"] = bad["run_id"] + "-x"
    return ["aggregate", study_with_records(ctx, [fake_ok(), bad], f"aggnest_{_slug(label)}")]


def _one_excluded(name_start):
    def check(ctx, out, err):
        folder = next(p for p in ctx["tmp"].iterdir() if p.name.startswith(name_start) and p.is_dir())
        summary = (folder / "tables" / "summary.csv").read_text()
        return "excluded_records,1" in summary and "runs,1\n" in summary and "invalid run record excluded" in err
    return check


def _full_disk(target, name: str, exc: BaseException, partial: bool = True):
    """A fault: `target.name` writes part of its output (a full disk mid-file), then raises `exc`."""
    def patch(mp: pytest.MonkeyPatch) -> None:
        def failing(*args, **kwargs):
            if partial:
                dest = next((a for a in (*args, *kwargs.values()) if isinstance(a, (str, Path))
                             and str(a).endswith((".csv", ".safetensors", ".md", ".tmp", ".json"))), None)
                if dest is not None:
                    with open(dest, "w") as f:   # the builtin: `target.name` may be Path.write_text itself
                        f.write("half of a file")
            raise exc
        mp.setattr(target, name, failing)
    return patch


def _enospc() -> OSError:
    return OSError(28, "No space left on device")


def _safetensors_full() -> BaseException:
    from safetensors import SafetensorError
    return SafetensorError('Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No space '
                           'left on device" })')


def _aggregated_study(ctx, name):
    folder = study_with_records(ctx, [fake_ok(), fake_ok(seed=1)], name)
    aggregate.write_tables(folder)   # the old tables, which a failed write must leave as they are
    return ["aggregate", folder]


def _status_file(ctx):
    from adapterlib.sweeps.status import STATUS_BEGIN, STATUS_END
    path = ctx["tmp"] / "STATUS.md"
    path.write_text(f"# mine\n{STATUS_BEGIN}\nold table\n{STATUS_END}\nthe rest\n")
    return ["status", tiny_sweep(ctx, "statusfull"), "--update", path]


def _record_in_a_subfolder(ctx):
    folder = study_with_records(ctx, [fake_ok(), fake_ok(seed=1)], "dupes")
    (folder / "runs" / "backup").mkdir()
    rec = fake_ok()
    (folder / "runs" / "backup" / f"{rec['run_id']}.json").write_text(json.dumps(rec))
    return ["aggregate", folder]


def _counted_once(ctx, out, err):
    runs = (ctx["tmp"] / "dupes" / "tables" / "runs.csv").read_text().splitlines()
    return len(runs) == 3   # the header and the two runs; the copy in runs/backup is not a record of this study


def _pandas_frame():
    import pandas as pd
    return pd.DataFrame


def _checkpoint_module():
    from adapterlib import checkpoint as module
    return module


ISSUE30_CASES = [
    *[Case(f"sweep --dry-run: a record's {label}",
           lambda c, label=label, edit=edit: _dry_run_with_nested(c, label, edit), "", check=_nested_named)
      for label, edit in NESTED_EDITS.items()],
    *[Case(f"aggregate: a record's {label}", lambda c, label=label, edit=edit: _aggregate_with_nested(c, label, edit),
           "", check=_one_excluded(f"aggnest_{_slug(label)}"))
      for label, edit in list(NESTED_EDITS.items())[::3]],
    Case("train --adapter-size 1000000000", lambda c: _train(c, "--adapter-size", "1000000000"),
         "adapter size must be at most 65536"),
    Case("train --adapter-size 4096 (tiny model: hidden 32)", lambda c: _train(c, "--adapter-size", "4096"),
         "exceeds 8 x the model's hidden size 32"),
    Case("sweep: adapter_size 10**9", lambda c: ["sweep", tiny_sweep(c, grid={"adapter_size": [10**9]}), "--dry-run"],
         "adapter size must be at most 65536"),
    Case("train: full disk writing the checkpoint (SafetensorError)", lambda c: _train(c),
         "could not write the results", fault=lambda mp: _full_disk(_checkpoint_module(), "save_file",
                                                                     _safetensors_full())(mp)),
    Case("train: full disk writing the record (ENOSPC)", lambda c: _train(c, "--no-checkpoint"),
         "could not write the results", fault=lambda mp: mp.setattr(records.json, "dump",
                                                                    lambda *a, **k: (_ for _ in ()).throw(_enospc()))),
    Case("aggregate: full disk writing runs.csv", lambda c: _aggregated_study(c, "aggfull"),
         "could not write the tables", fault=lambda mp: _full_disk(_pandas_frame(), "to_csv", _enospc())(mp)),
    Case("status --update: full disk", _status_file, "could not update",
         fault=lambda mp: _full_disk(Path, "write_text", _enospc())(mp)),
    Case("aggregate: a record also in a subfolder of runs/", _record_in_a_subfolder, "", check=_counted_once),
]


CASES = [
    # train: every setting checked before anything runs
    Case("train --lr -1e-3", lambda c: _train(c, "--lr", "-1e-3"), "lr must be a finite number"),
    Case("train --lr inf", lambda c: _train(c, "--lr", "inf"), "lr must be a finite number"),
    Case("train --threads -1", lambda c: _train(c, "--threads", "-1"), "--threads must be a positive integer, got -1"),
    Case("train --epochs abc", lambda c: _train(c, "--epochs", "abc"), "invalid int value: 'abc'"),
    Case("train --max-length -5", lambda c: _train(c, "--max-length", "-5"), "max-length must be a positive integer"),
    Case("train --adapter-size 0", lambda c: _train(c, "--adapter-size", "0"),
         "adapter-size must be a positive integer"),
    Case("train --task nosuch", lambda c: _train(c)[:2] + ["nosuch"] + _train(c)[3:], "unknown GLUE task 'nosuch'"),
    Case("train --output-dir <a file>", lambda c: _train(c) + ["--output-dir", c["file"]], "is a file"),
    Case("train --model <folder without config.json>", lambda c: _train(c, "--model", c["tmp"] / "empty_model"),
         "has no config.json"),
    Case("train --glue-dir <missing folder>", lambda c: _train(c, "--glue-dir", c["tmp"] / "no_glue"), "no_glue"),
    Case("train --init-std inf", lambda c: _train(c, "--init-std", "inf"), "init_std must be a finite number"),
    Case("train --mixed-precision fp8", lambda c: _train(c, "--mixed-precision", "fp8"), "invalid choice: 'fp8'"),
    # evaluate
    Case("evaluate --max-examples 0", lambda c: ["evaluate", "--checkpoint", c["ckpt"], "--max-examples", "0"],
         "--max-examples must be a positive integer, got 0"),
    Case("evaluate --checkpoint <missing>", lambda c: ["evaluate", "--checkpoint", c["tmp"] / "nockpt"],
         "is not an adapterlib checkpoint"),
    Case("evaluate: unknown adapter_config field",
         lambda c: ["evaluate", "--checkpoint",
                    checkpoint(c, "ck_unknown", lambda m: m["adapter_config"].update(sizee=3))],
         "unknown adapter_config field(s) ['sizee']"),
    Case("evaluate: checkpoint without base",
         lambda c: ["evaluate", "--checkpoint", checkpoint(c, "ck_base", _dropped("base"))], "`base` must map"),
    Case("evaluate: checkpoint without tensors",
         lambda c: ["evaluate", "--checkpoint", checkpoint(c, "ck_tensors", _dropped("tensors"))], "`tensors` must be"),
    Case("evaluate: version \"2\" (a string)",
         lambda c: ["evaluate", "--checkpoint", checkpoint(c, "ck_version", lambda m: m.update(version="2"))],
         "version must be an integer in 1..2, got '2'"),
    Case("evaluate: version 7",
         lambda c: ["evaluate", "--checkpoint", checkpoint(c, "ck_v7", lambda m: m.update(version=7))],
         "version must be an integer in 1..2, got 7"),
    Case("evaluate: RTE checkpoint --task sst2 (same label count)",
         lambda c: ["evaluate", "--checkpoint", c["ckpt"], "--task", "sst2"], "pass --force"),
    Case("evaluate: RTE checkpoint --task stsb (other label count)",
         lambda c: ["evaluate", "--checkpoint", c["ckpt"], "--task", "stsb", "--force"], "its head cannot score it"),
    Case("evaluate --threads 0", lambda c: ["evaluate", "--checkpoint", c["ckpt"], "--threads", "0"],
         "--threads must be a positive integer"),
    # sweep
    Case("sweep --lock /nonexistent/dir/cpu.lock",
         lambda c: ["sweep", tiny_sweep(c), "--output-dir", c["tmp"] / "s_lock", "--lock", "/nonexistent/dir/cpu.lock"],
         "--lock /nonexistent/dir/cpu.lock: folder /nonexistent/dir does not exist"),
    Case("sweep --output-dir <a file>", lambda c: ["sweep", tiny_sweep(c), "--output-dir", c["file"]], "is a file"),
    Case("sweep: save_checkpoint: \"false\" (a string)",
         lambda c: ["sweep", tiny_sweep(c, save_checkpoint="false"), "--dry-run"],
         "save_checkpoint must be true or false"),
    Case("sweep: max_grad_norm: -1", lambda c: ["sweep", tiny_sweep(c, grid={"max_grad_norm": [-1.0]}), "--dry-run"],
         "max-grad-norm must be a finite number"),
    Case("sweep: warmup_ratio: 5", lambda c: ["sweep", tiny_sweep(c, grid={"warmup_ratio": [5.0]}), "--dry-run"],
         "warmup-ratio must be a finite number"),
    Case("sweep: weight_decay: -3", lambda c: ["sweep", tiny_sweep(c, grid={"weight_decay": [-3.0]}), "--dry-run"],
         "weight-decay must be a finite number"),
    Case("sweep --workers 0", lambda c: ["sweep", tiny_sweep(c), "--workers", "0", "--output-dir", c["tmp"] / "s_w"],
         "--workers must be >= 1, got 0"),
    Case("sweep <missing file>", lambda c: ["sweep", c["tmp"] / "nope.yaml", "--dry-run"], "nope.yaml not found"),
    Case("sweep --set lr=-1", lambda c: ["sweep", tiny_sweep(c), "--dry-run", "--set", "lr=-1"], "lr must be a finite"),
    Case("sweep: task RTE and rte are one run",
         lambda c: ["sweep", tiny_sweep(c, "spell", grid={"task": ["RTE", "rte"]}), "--dry-run",
                    "--output-dir", c["tmp"] / "spell"], "", check=_one_run_planned),
    Case("sweep: adapter_size under policy full is one run",
         lambda c: ["sweep", tiny_sweep(c, "fullsize", grid={"policy": ["full"], "adapter_size": [8, 64]}), "--dry-run",
                    "--output-dir", c["tmp"] / "fullsize"], "", check=_one_run_planned),
    Case("sweep --dry-run with a garbled record", _dry_run_with_garbled_record, "", check=_bad_record_named),
    # aggregate
    Case("aggregate --out-dir <folder with a user's best.csv>",
         lambda c: ["aggregate", study_with_records(c, [fake_ok()], "agg_clash"), "--out-dir", c["user_tables"]],
         "refusing to overwrite"),
    Case("aggregate --out-dir <a file>",
         lambda c: ["aggregate", study_with_records(c, [fake_ok()], "agg_file"), "--out-dir", c["file"]], "is a file"),
    Case("aggregate <missing study>", lambda c: ["aggregate", c["tmp"] / "nostudy"], "no run records"),
    Case("aggregate --out-dir <folder with a user's CSV>",
         lambda c: ["aggregate", study_with_records(c, [fake_ok()], "agg_ok"), "--out-dir", c["tmp"] / "agg"], "",
         check=_user_csv_kept),
    Case("aggregate with a garbled record", lambda c: ["aggregate", _garbled_study(c, "badagg")], "",
         check=_aggregate_excludes),
    # course, status
    Case("course --output-dir <a file>",
         lambda c: ["course", "--output-dir", c["file"], "--notebooks", "01"], "is a file"),
    Case("course --preset nope", lambda c: ["course", "--preset", "nope"], "invalid choice: 'nope'"),
    Case("status --update <missing file>", lambda c: ["status", "--update", c["tmp"] / "NOPE.md"], "NOPE.md"),
    Case("status --update <file without the markers>", lambda c: ["status", "--update", c["file"]], "block to update"),
    *ISSUE30_CASES,
]
assert len({c.name for c in CASES}) == len(CASES), "case names must be unique"


def make_world(tiny_model_dir, tiny_glue_dir, tmp: Path) -> dict:
    """The battery's world: a tiny model, toy GLUE, a tiny RTE checkpoint, a plain file, a user's CSVs."""
    import adapterlib as al
    model, _ = al.load_base_model(str(tiny_model_dir), num_labels=2)
    al.add_adapters(model, al.AdapterConfig(size=4))
    al.save_adapter(model, tmp / "ckpt", metadata={"task": "rte", "model": str(tiny_model_dir)})
    (tmp / "a_file.txt").write_text("a user's file\n")
    (tmp / "empty_model").mkdir()
    (tmp / "user_tables").mkdir()
    (tmp / "user_tables" / "best.csv").write_text("the user's own best.csv\n")
    (tmp / "agg").mkdir()
    (tmp / "agg" / "mine.csv").write_text("mine\n")
    return {"tmp": tmp, "model": tiny_model_dir, "glue": tiny_glue_dir, "ckpt": tmp / "ckpt",
            "file": tmp / "a_file.txt", "user_tables": tmp / "user_tables"}


@pytest.fixture(scope="module")
def ctx(tiny_model_dir, tiny_glue_dir, tmp_path_factory):
    return make_world(tiny_model_dir, tiny_glue_dir, tmp_path_factory.mktemp("battery"))


def run_case(case: Case, ctx: dict) -> tuple[str, str, str]:
    argv = case.argv(ctx)
    before = snapshot(ctx["tmp"])
    with pytest.MonkeyPatch.context() as mp:
        if case.fault:
            case.fault(mp)
        rc, out, err = run_cli(argv)
    outcome = classify(case, ctx, rc, out, err, before, snapshot(ctx["tmp"]))
    return outcome, out, err


@pytest.fixture(scope="module")
def battery(tiny_model_dir, tiny_glue_dir, tmp_path_factory) -> dict[str, tuple[str, str, str]]:
    """Every case of CASES run once, in a fresh world: {name: (outcome, stdout, stderr)}. test_bad_input checks
    each case's outcome and test_figures counts them, from this one run (the battery used to run twice)."""
    world = make_world(tiny_model_dir, tiny_glue_dir, tmp_path_factory.mktemp("figures"))
    return {case.name: run_case(case, world) for case in CASES}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(case, battery):
    if case.xfail:
        pytest.xfail(case.xfail)
    outcome, out, err = battery[case.name]
    assert outcome == ("correct success" if not case.expect else "clear error"), (outcome, out[-600:], err[-1500:])


@pytest.mark.committed
def test_figures(battery):
    """The battery's counts per outcome (the figures of the site's Reliability page, book/reliability.md)."""
    counts = {o: 0 for o in OUTCOMES}
    for outcome, _, _ in battery.values():
        counts[outcome] += 1
    figures = {"cases": len(CASES), **counts}
    if os.environ.get("RELIABILITY_REPORT"):
        Path(os.environ["RELIABILITY_REPORT"]).write_text(json.dumps(figures, indent=2) + "\n")
    assert counts["data lost"] == 0 and counts["silent acceptance"] == 0
    known = sum(bool(c.xfail) for c in CASES)
    assert counts["clear error"] + counts["correct success"] >= len(CASES) - known
    page = (REPO / "book" / "reliability.md").read_text()  # the site's Reliability page
    row = "| " + " | ".join(str(figures[k]) for k in ("cases", *OUTCOMES)) + " |"
    assert row in page, f"book/reliability.md's figures are stale; measured: {row}"


# ---------------------------------------------------------------- library calls and single fixes

def test_set_trainable_validates_before_freezing(make_tiny):
    import adapterlib as al
    model = make_tiny()
    with pytest.raises(ValueError):
        al.set_trainable(model, "top_k", k=99)
    assert all(p.requires_grad for p in model.parameters())  # nothing was frozen by the failed call


def test_negative_numbers_reach_the_settings_check():
    from adapterlib.cli import join_negative_numbers
    assert join_negative_numbers(["train", "--lr", "-1e-3", "--seed", "-2", "--x", "-inf"]) == \
        ["train", "--lr=-1e-3", "--seed=-2", "--x=-inf"]
    assert join_negative_numbers(["--adapter-layers", "0", "-1"]) == ["--adapter-layers", "0", "-1"]


def test_ctrl_c_during_train_is_one_line_and_exit_130(monkeypatch, capsys):
    import importlib
    T = importlib.import_module("adapterlib.train")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(T, "train", interrupted)
    assert main(["train", "--task", "rte", "--quiet"]) == 130
    assert capsys.readouterr().err == "interrupted\n"


def test_evaluate_with_force_scores_another_task_with_a_warning(ctx, capsys):
    rc = main(["evaluate", "--checkpoint", str(ctx["ckpt"]), "--task", "sst2", "--force", "--glue-dir",
               str(ctx["glue"]), "--max-examples", "8"])
    captured = capsys.readouterr()
    assert rc == 0 and "warning:" in captured.err and "rte on sst2 (--force)" in captured.err
    assert json.loads(captured.out[captured.out.index("{"):])["task"] == "sst2"


def test_sweep_file_booleans_must_be_yaml_booleans():
    with pytest.raises(ValueError, match="keep_notebooks .*true or false"):
        parse_spec({"name": "t", "grid": {"lr": [1e-3]}, "keep_notebooks": "no"})
    assert parse_spec({"name": "t", "grid": {"lr": [1e-3]}, "save_checkpoint": True}).save_checkpoint is True


def test_record_schema():
    good = fake_ok()
    assert records.record_problem(good) is None
    for change, reason in [({"status": "done"}, "status must be"), ({"config": None}, "no config"),
                           ({"selected": {}}, "selected.validation_accuracy"),
                           ({"dev_score": float("nan")}, "dev_score"),
                           ({"schema": 2}, "schema 2"), ({"run_id": ""}, "no run_id"), ({"task": 3}, "no task")]:
        assert reason in records.record_problem({**good, **change}), change
    failed = {k: v for k, v in good.items() if k not in ("metric", "selected", "dev_score", "params")}
    assert records.record_problem({**failed, "status": "failed", "error": "boom"}) is None
    assert "error" in records.record_problem({**failed, "status": "failed"})
    assert "file name" in records.record_problem(good, path=Path("other.json"))


def test_a_record_without_config_plans_no_extra_runs(ctx):
    spec = load_spec(tiny_sweep(ctx, "noconf", grid={"lr": [1e-3, 3e-3]},
                                select_then_seeds={"by": ["task", "policy"], "seeds": [1]}))
    folder = ctx["tmp"] / "noconf"
    (folder / "runs").mkdir(parents=True)
    grid = expand(spec)
    for i, run in enumerate(grid):
        rec = {**fake_ok(), "run_id": run.run_id, "config": run.fields,
               "selected": {"epoch": 1.0, "validation_accuracy": 60.0 + i}}
        (folder / "runs" / f"{run.run_id}.json").write_text(json.dumps(rec))
    assert sweep.study_progress(spec, folder)["planned"] == 3        # 2 grid runs, 1 seed at the best
    broken = json.loads((folder / "runs" / f"{grid[0].run_id}.json").read_text())
    broken.pop("config")
    (folder / "runs" / f"{grid[0].run_id}.json").write_text(json.dumps(broken))
    progress = sweep.study_progress(spec, folder)
    assert progress["planned"] == 3 and progress["finished"] == 1   # the bad record counts as not finished
    assert "no config" in sweep.describe_plan(spec, folder)


def test_aggregate_removes_only_its_own_stale_tables(tmp_path):
    folder = study_with_records({"tmp": tmp_path}, [fake_ok(), {**fake_ok(lr=3e-3), "policy": "layernorm",
                                                               "config": {**fake_ok(lr=3e-3)["config"],
                                                                          "policy": "layernorm"}}], "s")
    out = tmp_path / "out"
    out.mkdir()
    (out / "user.csv").write_text("u\n")
    first = aggregate.write_tables(folder, out_dir=out)
    assert "size_curve" in first and (out / aggregate.MANIFEST).is_file()
    edited = out / "best.csv"
    layernorm = next((folder / "runs").glob("*lr0.003*"))
    layernorm.rename(tmp_path / "moved.json")  # the study loses its LayerNorm run: size_curve is stale
    second = aggregate.write_tables(folder, out_dir=out)
    assert "size_curve" not in second and not (out / "size_curve.csv").exists()   # ours, unchanged: removed
    assert (out / "user.csv").read_text() == "u\n" and edited.exists()
    manifest = json.loads((out / aggregate.MANIFEST).read_text())
    assert set(manifest["files"]) == {p.name for p in second.values()}


def test_stale_table_changed_by_the_user_is_kept(tmp_path):
    recs = [fake_ok(), {**fake_ok(lr=3e-3), "policy": "layernorm",
                        "config": {**fake_ok(lr=3e-3)["config"], "policy": "layernorm"}}]
    folder = study_with_records({"tmp": tmp_path}, recs, "s")
    aggregate.write_tables(folder)
    (folder / "tables" / "size_curve.csv").write_text("edited by hand\n")
    next((folder / "runs").glob("*lr0.003*")).unlink()
    aggregate.write_tables(folder)
    assert (folder / "tables" / "size_curve.csv").read_text() == "edited by hand\n"


def test_dashboard_binds_to_localhost_by_default():
    pool = executor.DaskPool(1)
    assert pool.dashboard == "127.0.0.1:0"
    from adapterlib.cli import build_parser
    args = build_parser().parse_args(["sweep", "x.yaml"])
    assert args.dashboard == "127.0.0.1:0"


def test_temp_files_of_live_writers_are_kept(tmp_path):
    live = tmp_path / f".r.json.pid{os.getpid()}@{records._host()}.abcd1234.tmp"
    live.write_text("half")
    dead_pid = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True).stdout.strip()
    dead = tmp_path / f".r2.json.pid{dead_pid}@{records._host()}.abcd1234.tmp"
    dead.write_text("half")
    legacy = tmp_path / ".r3.json.abc123.tmp"
    legacy.write_text("half")
    other_host = tmp_path / ".r4.json.pid1@elsewhere.abcd1234.tmp"
    other_host.write_text("half")
    assert set(records.remove_abandoned_temp_files(tmp_path)) == {dead, legacy}
    assert live.exists() and other_host.exists()


# ---------------------------------------------------------------- fault tests: the sweep driver

def _driver_cmd(spec_path: Path, study: Path, *extra) -> list:
    return [sys.executable, "-m", "adapterlib", "sweep", str(spec_path), "--output-dir", str(study), "--workers", "1",
            "--threads-per-run", "1", "--quiet", *extra]


ENV = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def _fault_sweep(ctx, name, seeds=6):
    return tiny_sweep(ctx, name, grid={"seed": list(range(seeds)), "lr": [1e-3]})


@pytest.fixture(scope="module")
def killed_study(ctx):
    """A 4-run sweep whose driver (with its LocalCluster) is SIGKILLed 3 times at random moments, then resumed."""
    spec_path = _fault_sweep(ctx, "killed", seeds=4)
    study = ctx["tmp"] / "killed_study"
    outside = snapshot(ctx["user_tables"])
    rng = random.Random(17)
    kept: dict[str, str] = {}
    changed = []
    for _ in range(3):  # at start-up, between runs or mid-run, as a power cut would
        driver = subprocess.Popen(_driver_cmd(spec_path, study), cwd=REPO, env=ENV, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(rng.uniform(1.5, 7.0))
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()
        now = {p.name: p.read_text() for p in (study / "runs").glob("*.json")} if (study / "runs").is_dir() else {}
        changed += [name for name, text in kept.items() if now.get(name) != text]
        kept = now
    done = subprocess.run(_driver_cmd(spec_path, study), cwd=REPO, env=ENV, capture_output=True, text=True, timeout=180)
    return {"spec": spec_path, "study": study, "kept": kept, "changed": changed, "done": done,
            "outside": (outside, snapshot(ctx["user_tables"]))}


@pytest.mark.slow  # about a minute on 2 busy CPU cores: SIGKILLed LocalClusters, restarted
def test_kill_9_at_random_points_then_resume_loses_and_duplicates_nothing(killed_study):
    k = killed_study
    runs = k["study"] / "runs"
    assert k["done"].returncode == 0, k["done"].stderr[-2000:]
    assert not k["changed"], "a finished record changed or vanished after a kill"
    recs = {p.stem: json.loads(p.read_text()) for p in runs.glob("*.json")}
    assert set(recs) == {r.run_id for r in expand(load_spec(k["spec"]))}
    assert all(r["status"] == "ok" for r in recs.values())
    assert all((runs / name).read_text() == text for name, text in k["kept"].items())  # finished runs kept as they were
    assert not list(runs.glob(".*.tmp"))
    assert k["outside"][0] == k["outside"][1]   # nothing outside the study changed


@pytest.mark.slow  # about a minute on 2 busy CPU cores: SIGKILLed LocalClusters, restarted
def test_two_drivers_at_once_and_a_garbled_record(killed_study):
    """Garble one finished record and delete another; while a driver redoes them, a second one refuses."""
    study, runs = killed_study["study"], killed_study["study"] / "runs"
    victim, gone, *others = sorted(runs.glob("*.json"))
    kept = {p.name: p.read_text() for p in others}
    victim.write_text('{"run_id": "cut off')
    gone.unlink()
    log = study / "sweep_log.jsonl"
    starts = log.read_text().count('"start"')
    first = subprocess.Popen(_driver_cmd(killed_study["spec"], study), cwd=REPO, env=ENV, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while log.read_text().count('"start"') == starts and time.time() < deadline:  # logged once it holds the lock
        time.sleep(0.05)
    second = subprocess.run(_driver_cmd(killed_study["spec"], study), cwd=REPO, env=ENV, capture_output=True,
                            text=True, timeout=120)
    out, err = first.communicate(timeout=180)
    assert first.returncode == 0, err[-2000:]
    assert second.returncode == 2 and second.stderr.count("\n") == 1 and "another sweep" in second.stderr
    assert f"excluded: {victim}" in err
    assert tally(out) == {"ok": 2, "failed": 0, "already done": 2}
    assert json.loads(victim.read_text())["status"] == "ok" and gone.exists()
    assert {p.name: p.read_text() for p in others} == kept
    aside = list(runs.glob(f"{victim.name}.invalid-*"))
    assert len(aside) == 1 and aside[0].read_text() == '{"run_id": "cut off'   # set aside, never overwritten
    assert (study / ".sweep.lock").exists()   # the file stays; the OS lock is what counts, and it is free again
    with sweep.study_lock(study):
        pass


@pytest.mark.slow
def test_all_failed_group_skips_its_seeds_and_other_tasks_go_on(ctx, capsys):
    spec_path = tiny_sweep(ctx, "qnli", grid={"task": ["qnli", "rte"], "lr": [1e-3]},
                           select_then_seeds={"by": ["task", "policy"], "seeds": [1]})
    study = ctx["tmp"] / "qnli_study"
    rc = main(["sweep", str(spec_path), "--output-dir", str(study), "--workers", "1", "--threads-per-run", "1",
               "--quiet"])
    captured = capsys.readouterr()
    assert rc == 1, captured.err
    assert "task=qnli, policy=adapter; its seeds" in captured.err   # the group whose seeds are skipped
    recs = [json.loads(p.read_text()) for p in (study / "runs").glob("*.json")]
    assert sorted((r["task"], r["status"], r["seed"]) for r in recs) == [("qnli", "failed", 0), ("rte", "ok", 0),
                                                                          ("rte", "ok", 1)]
    assert main(["sweep", str(spec_path), "--output-dir", str(study), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "task=qnli, policy=adapter: its seeds" in out
    assert tally(out) == {"runs": 3, "done": 2, "failed": 1, "to run": 0}
    progress = sweep.study_progress(load_spec(spec_path), study)
    assert progress["planned"] == 3 and progress["tasks_complete"] == ["rte"]


def test_failing_writer_leaves_no_half_record_and_the_run_is_redone(ctx, monkeypatch):
    spec = load_spec(_fault_sweep(ctx, "diskfull", seeds=1))
    run = expand(spec)[0]
    runs_dir = ctx["tmp"] / "diskfull" / "runs"
    runs_dir.mkdir(parents=True)
    (runs_dir / "finished.json").write_text("{}")
    real_dump = json.dump

    def full_disk(obj, f, **kwargs):
        real_dump(obj, f, **kwargs)
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(records.json, "dump", full_disk)
    job = sweep._job(spec, run, runs_dir, 1)
    with pytest.raises(OSError, match="No space left"):
        executor.execute_run(job)   # the run's record and its failure record both fail to write
    monkeypatch.undo()
    assert sorted(p.name for p in runs_dir.iterdir()) == ["finished.json"]   # no temp file, no half record
    assert sweep.record_status(runs_dir, run) == "todo"                     # so the next sweep redoes it
    assert executor.execute_run(job)["status"] == "ok"
    assert sweep.record_status(runs_dir, run) == "ok"


# ---------------------------------------------------------------- issue 30's classes in the library

@pytest.mark.parametrize("label", list(NESTED_EDITS))
def test_nested_record_fields_are_validated(label):
    assert records.record_problem(_edited(lambda rec: None)) is None     # the well-formed record is valid
    problem = records.record_problem(_edited(NESTED_EDITS[label]))
    assert problem and "\n" not in problem
    assert problem.split(" ")[0].split(".")[0].split("[")[0] == label.split(" ")[0].split(".")[0]   # names the field


def _snapshot_world(make_tiny, tmp_path):
    """A tiny adapter model, its optimizer, schedule and batch sampler generator, and a valid snapshot of them."""
    import torch

    import adapterlib as al
    from adapterlib import resume
    from adapterlib.train import make_optimizer
    model = make_tiny()
    al.add_adapters(model, al.AdapterConfig(size=4))
    al.set_trainable(model, "adapter")
    optimizer, scheduler = make_optimizer(model, al.TrainConfig(), 10)
    generator = torch.Generator().manual_seed(0)
    loop = resume.LoopState(step=1, train_time=0.1, tokens=10, padded=12, loss_sum=0.7, wall_s=1.0)
    path = tmp_path / ".r.resume.safetensors"
    resume.save(path, "r", model, optimizer, scheduler, generator, loop, None)
    return model, optimizer, scheduler, generator, path


def _bad_numpy_position(meta, tensors):
    meta["numpy"][1] = 10**6


SNAPSHOT_EDITS = {
    "loop without history": lambda meta, tensors: meta["loop"].pop("history"),
    "loop.step a string": lambda meta, tensors: meta["loop"].update(step="one"),
    "loop.segments a string": lambda meta, tensors: meta["loop"].update(segments="x"),
    "no numpy state": lambda meta, tensors: meta.pop("numpy"),
    "numpy position out of range": _bad_numpy_position,
    "python state too short": lambda meta, tensors: meta["python"].__setitem__(1, [1, 2, 3]),
    "torch state truncated": lambda meta, tensors: tensors.update({"rng.torch": tensors["rng.torch"][:100].clone()}),
    "sampler state of floats": lambda meta, tensors: tensors.update({"rng.sampler": __import__("torch").zeros(5)}),
    "optimizer groups missing": lambda meta, tensors: meta["optimizer"].update(param_groups=[]),
    "no schedule": lambda meta, tensors: meta.pop("scheduler"),
}


@pytest.mark.parametrize("label", list(SNAPSHOT_EDITS))
def test_bad_snapshot_is_ignored_before_anything_is_restored(label, make_tiny, tmp_path):
    import random

    import numpy as np
    import torch
    from safetensors.torch import load_file, safe_open, save_file

    from adapterlib import resume
    model, optimizer, scheduler, generator, path = _snapshot_world(make_tiny, tmp_path)
    assert resume.load(path, "r", model, optimizer, scheduler, generator) is not None   # the snapshot as written
    with safe_open(str(path), framework="pt") as f:
        meta = json.loads(f.metadata()["adapterlib_resume"])
    tensors = load_file(str(path))
    SNAPSHOT_EDITS[label](meta, tensors)
    save_file(tensors, str(path), metadata={"adapterlib_resume": json.dumps(meta)})
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)   # the fresh run's state, which a refused snapshot must leave alone
    params = {n: p.detach().clone() for n, p in model.named_parameters()}
    states = (torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate(), generator.get_state())
    with pytest.warns(UserWarning, match="starts from scratch"):
        assert resume.load(path, "r", model, optimizer, scheduler, generator) is None
    assert all(torch.equal(params[n], p) for n, p in model.named_parameters())
    assert torch.equal(states[0], torch.get_rng_state()) and (states[1] == np.random.get_state()[1]).all()
    assert states[2] == random.getstate() and torch.equal(states[3], generator.get_state())
    assert all(s.get("step") is None for s in optimizer.state.values())   # AdamW untouched (no state yet)


def _quick():
    """A config that trains in seconds, should a check of train()'s arguments ever let one through."""
    import adapterlib as al
    return al.TrainConfig(task="rte", max_steps=1, max_train_examples=8, max_eval_examples=8, max_length=16)


ABSURD_CALLS = {
    "AdapterConfig(size=10**9)": lambda tiny: __import__("adapterlib").AdapterConfig(size=10**9),
    "AdapterConfig(init=5)": lambda tiny: __import__("adapterlib").AdapterConfig(init=5),
    "add_adapters(size 4096 on hidden 32)": lambda tiny: __import__("adapterlib").add_adapters(
        tiny(), __import__("adapterlib").AdapterConfig(size=4096)),
    "TrainConfig(glue_dir=5)": lambda tiny: __import__("adapterlib").TrainConfig(glue_dir=5),
    "TrainConfig(model=3.0)": lambda tiny: __import__("adapterlib").TrainConfig(model=3.0),
    "TrainConfig(task=5)": lambda tiny: __import__("adapterlib").TrainConfig(task=5),
    "TrainConfig(policy=None)": lambda tiny: __import__("adapterlib").TrainConfig(policy=None),
    "TrainConfig(init_std='big')": lambda tiny: __import__("adapterlib").TrainConfig(init_std="big"),
    "TrainConfig(adapter_layers='01')": lambda tiny: __import__("adapterlib").TrainConfig(adapter_layers="01"),
    "TrainConfig(mixed_precision=16)": lambda tiny: __import__("adapterlib").TrainConfig(mixed_precision=16),
    "train(glue_dir=<int>)": lambda tiny: __import__("adapterlib").train(__import__("adapterlib").TrainConfig(
        glue_dir=7)),
    "train(cfg, output_dir=5)": lambda tiny: __import__("adapterlib").train(_quick(), output_dir=5),
    "train(cfg, progress='yes')": lambda tiny: __import__("adapterlib").train(_quick(), progress="yes"),
    "train(cfg, fast=1)": lambda tiny: __import__("adapterlib").train(_quick(), fast=1),
    "train({'task': 'rte'})": lambda tiny: __import__("adapterlib").train({"task": "rte"}),
}


@pytest.mark.parametrize("label", list(ABSURD_CALLS))
def test_absurd_library_arguments_are_one_line_errors(label, make_tiny):
    import adapterlib as al
    with pytest.raises(al.AdapterlibError) as info:
        ABSURD_CALLS[label](make_tiny)
    assert str(info.value) and "\n" not in str(info.value)


def test_a_path_given_as_a_path_is_its_string():
    import adapterlib as al
    assert al.TrainConfig(glue_dir=Path("/data/glue")).glue_dir == "/data/glue"


@pytest.mark.parametrize("exc", [_enospc(), _safetensors_full()], ids=["ENOSPC", "SafetensorError"])
def test_a_checkpoint_write_that_fails_leaves_the_old_files(exc, make_tiny, tmp_path, monkeypatch):
    import adapterlib as al
    from adapterlib import checkpoint
    model = make_tiny()
    al.add_adapters(model, al.AdapterConfig(size=4))
    al.save_adapter(model, tmp_path / "ck")
    before = snapshot(tmp_path)
    _full_disk(checkpoint, "save_file", exc)(monkeypatch)
    with pytest.raises(type(exc)):
        al.save_adapter(model, tmp_path / "ck")
    assert snapshot(tmp_path) == before   # the old checkpoint intact, no temp file left
