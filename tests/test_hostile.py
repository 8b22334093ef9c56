"""Hostile battery (issue 31): seven classes of hostile input, each case through `python -m adapterlib`.

Every case runs the command line (in-process through `adapterlib.cli.main`, or as a child
`python -m adapterlib` where the case needs its own environment: an ADAPTERLIB_ROOT, a full disk),
with every file of the case's world hashed before and after, and a time limit, and is classified as
one of OUTCOMES. A bad input must end as "clear error" (exit code 2, one stderr line holding the
case's key phrase, nothing changed); a good one as "correct success".

The classes: 1 unbounded inputs (hangs), 2 outputs landing on inputs, 3 silent mislabels, 4 GLUE files
not validated as data, 5 numbers beyond what the libraries accept, 6 files that are not what they
claim, 7 non-finite results reported as scores.

`HOSTILE_REPORT=FILE pytest tests/test_hostile.py -k figures` writes the battery's counts to FILE (JSON),
as tests/test_reliability.py does for the README's first battery.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest

from test_reliability import fake_ok, make_world, run_cli, study_with_records, write_yaml

REPO = Path(__file__).resolve().parents[1]
OUTCOMES = ("clear error", "correct success", "traceback", "silent acceptance", "misleading line",
            "file lost or changed", "hang")
PROGRESS = re.compile(r"\d+%\|")  # a tqdm bar (evaluate's progress on stderr), not an error line
CASE_SECONDS = 30  # a case still running after this long is a hang (the fixes refuse in well under a second)


@dataclasses.dataclass
class Case:
    cls: int                          # the class, 1..7
    name: str
    argv: Callable[[dict], list]      # ctx -> argv (may build the files the case needs under ctx["tmp"])
    expect: str                       # bad input: a key phrase of its one error line; good input: ""
    check: Callable[[dict, str, str], bool] | None = None  # good input: is the output right
    child: dict | None = None         # run as a child process: {"env": {...}, "fsize": bytes} (a full disk)
    updates: str = ""                 # good input: the one file (under ctx["tmp"]) the command is meant to change


class _Hang(BaseException):
    pass


def snapshot(folder: Path) -> dict[str, str]:
    """Every regular file under `folder` (symlinks not followed: loops are part of the battery) -> sha256."""
    out = {}
    for root, _dirs, files in os.walk(folder):
        for name in files:
            path = Path(root) / name
            if path.is_symlink() or not path.is_file():
                continue
            out[str(path.relative_to(folder))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def run_in_process(argv: list) -> tuple:
    """run_cli(argv), stopped after CASE_SECONDS (then "hang", whatever run_cli made of the interruption)."""
    fired = []

    def alarm(signum, frame):
        fired.append(True)
        raise _Hang()
    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, CASE_SECONDS)
    try:
        result = run_cli(argv)
        return ("hang", "", "") if fired else result
    except _Hang:
        return "hang", "", ""
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def run_child(argv: list, env: dict | None = None, fsize: int | None = None) -> tuple:
    """`python -m adapterlib ARGV` in a child; `fsize` caps the size of any file it writes (a full disk)."""
    def limit():
        if fsize is not None:
            import resource
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the cap fails with EFBIG instead
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    full_env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", **(env or {})}
    try:
        proc = subprocess.run([sys.executable, "-m", "adapterlib", *map(str, argv)], capture_output=True, text=True,
                              env=full_env, preexec_fn=limit, timeout=CASE_SECONDS * 4, cwd=REPO)
    except subprocess.TimeoutExpired:
        return "hang", "", ""
    return proc.returncode, proc.stdout, proc.stderr


def classify(case: Case, ctx: dict, rc, out: str, err: str, before: dict, after: dict) -> str:
    if rc == "hang":
        return "hang"
    if [f for f in before if after.get(f) != before[f] and not (f == case.updates and not case.expect)]:
        return "file lost or changed"
    if rc == "traceback" or "Traceback (most recent call last)" in err:
        return "traceback"
    if not case.expect:
        return "correct success" if rc == 0 and (case.check is None or case.check(ctx, out, err)) else "misleading line"
    if rc == 0:
        return "silent acceptance"
    # what stays on the terminal: a progress bar redraws itself after "\r"; a "warning:" line is not the error
    lines = [line.rsplit("\r", 1)[-1] for line in err.split("\n")]
    lines = [line for line in lines if line.strip() and not line.startswith("warning:") and not PROGRESS.search(line)]
    if rc != 2 or len(lines) != 1 or case.expect.lower() not in lines[0].lower():
        return "misleading line"
    return "clear error"


def run_case(case: Case, ctx: dict) -> tuple[str, str, str]:
    argv = case.argv(ctx)
    before = snapshot(ctx["tmp"])
    if case.child is None:
        rc, out, err = run_in_process(argv)
    else:
        rc, out, err = run_child(argv, case.child.get("env"), case.child.get("fsize"))
    return classify(case, ctx, rc, out, err, before, snapshot(ctx["tmp"])), out, err


# ---------------------------------------------------------------- the files the cases use

def base(ctx: dict, **changes) -> dict:
    return {"task": "rte", "epochs": 1, "max_steps": 2, "batch_size": 16, "max_length": 32, "max_train_examples": 64,
            "max_eval_examples": 16, "model": str(ctx["model"]), "glue_dir": str(ctx["glue"]), **changes}


def sweep_file(ctx: dict, name: str, text_or_data) -> Path:
    return write_yaml(ctx["tmp"], text_or_data, f"{name}.yaml")


LAUGHS_FLOW = "[&a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1], " + ", ".join(
    f"&a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)) + "]"  # 10**9 values once expanded


def laughs(key: str = "grid") -> str:
    """A "billion laughs" sweep file: aliases 9 deep, 10 each (a few hundred bytes)."""
    return f"name: laughs\n{key}: {{adapter_layers: {LAUGHS_FLOW}}}\n"


def million_grid(ctx: dict) -> Path:
    axes = {"seed": list(range(100)), "lr": [1e-4 * (i + 1) for i in range(100)], "adapter_size": list(range(1, 101))}
    return sweep_file(ctx, "million", {"name": "million", "base": base(ctx), "grid": axes})


def notebook_dir(ctx: dict, name: str, garbage: bool | bytes = False) -> Path:
    """A folder with one course-like notebook (parameters preset, results_path), or a garbage one."""
    folder = ctx["tmp"] / name
    folder.mkdir(exist_ok=True)
    path = folder / "01_tiny.ipynb"
    if garbage:
        path.write_bytes(garbage if isinstance(garbage, bytes) else b"\x89PNG\r\n\x1a\n\x00\x00garbage \xff\xfe")
        return folder
    import nbformat
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("preset = None\nresults_path = None\nx = 1")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("print(x)")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))
    return folder


def papermill_sweep(ctx: dict, name: str, grid: dict, garbage: bool | bytes = False) -> Path:
    folder = notebook_dir(ctx, f"{name}_nb", garbage=garbage)
    return sweep_file(ctx, name, {"name": name, "mode": "papermill", "notebook": str(folder / "01_tiny.ipynb"),
                                  "grid": grid})


def glue_copy(ctx: dict, name: str, task: str, edit: Callable[[Path], None]) -> Path:
    """A copy of the toy GLUE folder whose <task> files `edit` changed."""
    folder = ctx["tmp"] / name
    if not folder.exists():
        shutil.copytree(ctx["glue"], folder)
    edit(folder / task)
    return folder


def header_only(task_dir: Path):
    train = task_dir / "train.tsv"
    train.write_text(train.read_text().splitlines()[0] + "\n")


def one_row(task_dir: Path):
    train = task_dir / "train.tsv"
    train.write_text("\n".join(train.read_text().splitlines()[:2]) + "\n")


def sts_label(value: str):
    def edit(task_dir: Path):
        train = task_dir / "train.tsv"
        lines = train.read_text().splitlines()
        lines[5] = lines[5].rsplit("\t", 1)[0] + "\t" + value
        train.write_text("\n".join(lines) + "\n")
    return edit


def cola_short_row(task_dir: Path):
    train = task_dir / "train.tsv"
    lines = train.read_text().splitlines()
    lines[3] = "src\t1"  # no original-label and sentence columns
    train.write_text("\n".join(lines) + "\n")


def empty_dev(task_dir: Path):
    dev = task_dir / "dev.tsv"
    dev.write_text(dev.read_text().splitlines()[0] + "\n")


def loop(ctx: dict, name: str) -> Path:
    """A symlink that points at itself (any access: ELOOP)."""
    path = ctx["tmp"] / name
    if not path.is_symlink():
        path.symlink_to(path)
    return path


def glue_with_task_loop(ctx: dict) -> Path:
    folder = ctx["tmp"] / "glue_taskloop"
    if not folder.exists():
        folder.mkdir()
        (folder / "RTE").symlink_to(folder / "RTE")
    return folder


def model_copy(ctx: dict, name: str, edit: Callable[[Path], None]) -> Path:
    folder = ctx["tmp"] / name
    if not folder.exists():
        shutil.copytree(ctx["model"], folder)
        edit(folder)
    return folder


def pickled_weights(folder: Path):
    """The model's weights as a pickle pytorch_model.bin (what an old checkpoint, or a trap, looks like)."""
    (folder / "model.safetensors").unlink()
    (folder / "pytorch_model.bin").write_bytes(b"\x80\x04\x95" + b"\x00" * 64)  # never to be unpickled


def config_edit(**changes):
    def edit(folder: Path):
        cfg = json.loads((folder / "config.json").read_text())
        cfg.update(changes)
        (folder / "config.json").write_text(json.dumps(cfg))
    return edit


def nan_checkpoint(ctx: dict) -> Path:
    from safetensors.torch import load_file, save_file
    path = ctx["tmp"] / "ck_nan"
    if not path.exists():
        shutil.copytree(ctx["ckpt"], path)
        state = load_file(str(path / "adapter_model.safetensors"))
        state = {k: v.fill_(float("nan")) for k, v in state.items()}
        save_file(state, str(path / "adapter_model.safetensors"), metadata={"format": "adapterlib-adapter"})
    return path


def aggregated_study(ctx: dict, name: str) -> Path:
    """A study whose tables/ an earlier `aggregate` wrote (what a later one updates in place)."""
    folder = ctx["tmp"] / name
    if not folder.exists():
        study_with_records(ctx, [fake_ok(seed=0), fake_ok(seed=1)], name)
        assert run_cli(["aggregate", folder])[0] == 0
    return folder


def readme_copy(ctx: dict, name: str) -> Path:
    from adapterlib.sweeps.status import STATUS_BEGIN, STATUS_END
    path = ctx["tmp"] / name
    path.write_text("# A README\n\n" + "words " * 400 + f"\n\n{STATUS_BEGIN}\nold table\n{STATUS_END}\n\nmore words\n")
    return path


def train(ctx, *extra, glue=None, model=None, task="rte"):
    return ["train", "--task", task, "--model", model or ctx["model"], "--glue-dir", glue or ctx["glue"],
            "--max-steps", "2", "--max-train-examples", "32", "--max-eval-examples", "16", "--max-length", "32",
            "--batch-size", "16", "--quiet", "--output-dir", ctx["tmp"] / "runs", "--no-checkpoint", *extra]


def dry(ctx, name, data_or_text, *extra):
    return ["sweep", sweep_file(ctx, name, data_or_text), "--dry-run", "--output-dir", ctx["tmp"] / name, *extra]


def ok_sweep(ctx, name="okay"):
    return sweep_file(ctx, name, {"name": name, "base": base(ctx), "grid": {"lr": [1e-3]}})


def _planned(n):
    return lambda ctx, out, err: f"{n} runs: 0 done, 0 failed, {n} to run" in out


def _readme_updated(ctx, out, err):
    text = (ctx["tmp"] / "README_ok.md").read_text()
    return "old table" not in text and text.endswith("more words\n")


def _trained(ctx, out, err):
    return "record:" in out


def _scored(ctx, out, err):
    return '"accuracy"' in out


def _status_table(ctx, out, err):
    return out.startswith("|")


CASES = [
    # 1. unbounded inputs: refused at once, with the count and the limit
    Case(1, "sweep: billion laughs in grid", lambda c: dry(c, "laughs", laughs()), "limit"),
    Case(1, "sweep: billion laughs in base", lambda c: dry(c, "laughs_b", laughs(key="base")), "limit"),
    Case(1, "sweep: grid of a million runs", lambda c: ["sweep", million_grid(c), "--dry-run"], "1000000"),
    Case(1, "sweep: variants of a million runs",
         lambda c: dry(c, "million_v", {"name": "million_v", "base": base(c), "grid": {"seed": list(range(100))},
                                        "variants": [{"lr": [1e-4 * (i + 1) for i in range(100)],
                                                      "adapter_size": list(range(1, 101))}]}), "1000000"),
    Case(1, "sweep --set with a billion laughs",
         lambda c: ["sweep", ok_sweep(c), "--dry-run", "--set", "adapter_layers=" + LAUGHS_FLOW], "limit"),
    Case(1, "status <billion laughs>", lambda c: ["status", sweep_file(c, "laughs_s", laughs())], "limit"),
    Case(1, "status <a million runs>", lambda c: ["status", million_grid(c)], "1000000"),
    Case(1, "sweep: select_then_seeds with 10000 seeds",
         lambda c: dry(c, "manyseeds", {"name": "manyseeds", "base": base(c), "grid": {"lr": [1e-3, 2e-3]},
                                        "select_then_seeds": {"by": ["task"], "seeds": list(range(1, 10001))}}),
         "limit"),
    Case(1, "sweep: a 1000-run grid is planned", lambda c: dry(c, "thousand", {
        "name": "thousand", "base": base(c), "grid": {"seed": list(range(10)), "lr": [1e-4 * (i + 1) for i in range(100)]}}),
         "", check=_planned(1000)),
    # 2. outputs landing on inputs; in-place updates are atomic
    Case(2, "course --output-dir <the notebook folder>",
         lambda c: ["course", "--notebook-dir", notebook_dir(c, "nbs"), "--output-dir", c["tmp"] / "nbs", "--preset", "smoke"],
         "--output-dir"),
    Case(2, "course --output-dir <the notebook folder, another spelling>",
         lambda c: ["course", "--notebook-dir", notebook_dir(c, "nbs"), "--output-dir", c["tmp"] / "nbs" / ".." / "nbs/",
                    "--preset", "smoke"], "--output-dir"),
    Case(2, "status --update <README> on a full disk",
         lambda c: ["status", REPO / "sweeps" / "smoke.yaml", "--update", readme_copy(c, "README_full.md")], "README_full.md",
         child={"fsize": 1024}),
    Case(2, "status --update <README> works",
         lambda c: ["status", REPO / "sweeps" / "smoke.yaml", "--update", readme_copy(c, "README_ok.md")], "",
         check=_readme_updated, updates="README_ok.md"),
    Case(2, "aggregate over its own tables on a full disk", lambda c: ["aggregate", aggregated_study(c, "agg_full")],
         "tables", child={"fsize": 64}),
    Case(2, "status --update <a sweep file it reads>",
         lambda c: ["status", ok_sweep(c, "selfupdate"), "--update", c["tmp"] / "selfupdate.yaml"], "--update"),
    # 3. silent mislabels
    Case(3, "sweep name: .", lambda c: dry(c, "dot", {"name": ".", "base": base(c), "grid": {"lr": [1e-3]}}), "name"),
    Case(3, "sweep name: ..", lambda c: dry(c, "dotdot", {"name": "..", "base": base(c), "grid": {"lr": [1e-3]}}), "name"),
    Case(3, "sweep: duplicate top-level key",
         lambda c: dry(c, "dupkey", f"name: dupkey\ngrid: {{lr: [1.0e-3]}}\ngrid: {{lr: [2.0e-3]}}\nbase: {json.dumps(base(c))}\n"),
         "duplicate key"),
    Case(3, "sweep: duplicate key in base",
         lambda c: dry(c, "dupbase", f"name: dupbase\ngrid: {{lr: [1.0e-3]}}\nbase: {json.dumps(base(c))[:-1]}, \"epochs\": 5}}\n"),
         "duplicate key"),
    Case(3, "sweep --dashboard 127.0.0.1:99999", lambda c: dry(c, "dash1", {"name": "dash1", "base": base(c),
                                                                         "grid": {"lr": [1e-3]}}, "--dashboard", "127.0.0.1:99999"),
         "--dashboard"),
    Case(3, "sweep --dashboard 127.0.0.1:http", lambda c: dry(c, "dash2", {"name": "dash2", "base": base(c),
                                                                        "grid": {"lr": [1e-3]}}, "--dashboard", "127.0.0.1:http"),
         "--dashboard"),
    Case(3, "sweep --dashboard off", lambda c: dry(c, "dash3", {"name": "dash3", "base": base(c), "grid": {"lr": [1e-3]}},
                                                   "--dashboard", "off"), "", check=_planned(1)),
    Case(3, "course --cell-timeout 0",
         lambda c: ["course", "--notebook-dir", notebook_dir(c, "nbs"), "--output-dir", c["tmp"] / "c_out", "--cell-timeout", "0"],
         "--cell-timeout"),
    Case(3, "course --cell-timeout -5",
         lambda c: ["course", "--notebook-dir", notebook_dir(c, "nbs"), "--output-dir", c["tmp"] / "c_out", "--cell-timeout", "-5"],
         "--cell-timeout"),
    Case(3, "course -p preset bogus",
         lambda c: ["course", "--notebook-dir", notebook_dir(c, "nbs"), "--output-dir", c["tmp"] / "c_out", "-p", "preset", "bogus"],
         "bogus"),
    Case(3, "course -p results_path <a path>",
         lambda c: ["course", "--notebook-dir", notebook_dir(c, "nbs"), "--output-dir", c["tmp"] / "c_out",
                    "-p", "results_path", c["tmp"] / "mine.json"], "results_path"),
    Case(3, "papermill sweep: preset bogus", lambda c: ["sweep", papermill_sweep(c, "pm_preset", {"preset": ["bogus"]}),
                                                        "--dry-run", "--output-dir", c["tmp"] / "pm_preset"], "bogus"),
    Case(3, "papermill sweep: preset smoke", lambda c: ["sweep", papermill_sweep(c, "pm_ok", {"preset": ["smoke"]}),
                                                        "--dry-run", "--output-dir", c["tmp"] / "pm_ok"], "",
         check=_planned(1)),
    Case(3, "papermill sweep --set preset=bogus",
         lambda c: ["sweep", papermill_sweep(c, "pm_set", {"x": [1]}), "--dry-run", "--output-dir", c["tmp"] / "pm_set",
                    "--set", "preset=bogus"], "bogus"),
    # 4. GLUE files validated as data: one line naming the file and row
    Case(4, "train: header-only train.tsv", lambda c: train(c, glue=glue_copy(c, "g_header", "RTE", header_only)), "train.tsv"),
    Case(4, "train: train.tsv with one row", lambda c: train(c, glue=glue_copy(c, "g_one", "RTE", one_row)), "train.tsv"),
    Case(4, "train: STS-B label 99", lambda c: train(c, glue=glue_copy(c, "g_99", "STS-B", sts_label("99")), task="stsb"),
         "line 6"),
    Case(4, "train: STS-B label inf", lambda c: train(c, glue=glue_copy(c, "g_inf", "STS-B", sts_label("inf")), task="stsb"),
         "line 6"),
    Case(4, "train: STS-B label -1", lambda c: train(c, glue=glue_copy(c, "g_neg", "STS-B", sts_label("-1")), task="stsb"),
         "line 6"),
    Case(4, "train: CoLA row missing columns",
         lambda c: train(c, glue=glue_copy(c, "g_cola", "CoLA", cola_short_row), task="cola"), "line 4"),
    Case(4, "evaluate: header-only dev.tsv",
         lambda c: ["evaluate", "--checkpoint", c["ckpt"], "--glue-dir", glue_copy(c, "g_dev", "RTE", empty_dev)], "dev.tsv"),
    Case(4, "evaluate: valid dev.tsv", lambda c: ["evaluate", "--checkpoint", c["ckpt"], "--glue-dir", c["glue"]], "",
         check=_scored),
    # 5. numbers beyond the libraries' limits: checked at the edge
    Case(5, "train --seed 2**32", lambda c: train(c, "--seed", str(2**32)), "seed"),
    Case(5, "sweep: seed 2**40", lambda c: dry(c, "bigseed", {"name": "bigseed", "base": base(c), "grid": {"seed": [2**40]}}),
         "seed"),
    Case(5, "train --seed 2**32-1", lambda c: train(c, "--seed", str(2**32 - 1)), "", check=_trained),
    Case(5, "train --threads 2**66", lambda c: train(c, "--threads", str(2**66)), "--threads"),
    Case(5, "evaluate --threads 2**40", lambda c: ["evaluate", "--checkpoint", c["ckpt"], "--threads", str(2**40)], "--threads"),
    Case(5, "sweep --threads-per-run 2**66 --scheduler <an address>",
         lambda c: ["sweep", ok_sweep(c), "--output-dir", c["tmp"] / "tpr", "--scheduler", "tcp://127.0.0.1:8786",
                    "--threads-per-run", str(2**66)], "--threads-per-run"),
    Case(5, "train --max-length 706 (positions 64)", lambda c: train(c, "--max-length", "706"), "max-length"),
    Case(5, "train: model whose heads do not divide hidden",
         lambda c: train(c, model=model_copy(c, "m_heads", config_edit(num_attention_heads=3))), "m_heads"),
    Case(5, "train --init-std 1e308", lambda c: train(c, "--init-std", "1e308"), "init"),
    Case(5, "sweep: init_std 1e10", lambda c: dry(c, "bigstd", {"name": "bigstd", "base": base(c), "grid": {"init_std": [1e10]}}),
         "init"),
    Case(5, "train --init-std 1 (the ablation's largest)", lambda c: train(c, "--init-std", "1"), "", check=_trained),
    # 6. files that are not what they claim
    Case(6, "sweep <a binary file>", lambda c: ["sweep", (c["tmp"] / "bin.yaml").write_bytes(bytes(range(256)) * 4) and
                                                c["tmp"] / "bin.yaml", "--dry-run"], "bin.yaml"),
    Case(6, "sweep <a YAML list, not a mapping>", lambda c: dry(c, "alist", "- 1\n- 2\n"), "alist.yaml"),
    Case(6, "sweep <a folder>", lambda c: ["sweep", c["tmp"], "--dry-run"], "not found"),
    Case(6, "status <a binary file>", lambda c: ["status", (c["tmp"] / "bin2.yaml").write_bytes(b"\xff\xfe\x00garbage") and
                                                 c["tmp"] / "bin2.yaml"], "bin2.yaml"),
    Case(6, "papermill sweep: garbage notebook", lambda c: ["sweep", papermill_sweep(c, "pm_bad", {"x": [1]}, garbage=True),
                                                           "--dry-run"], "01_tiny.ipynb"),
    Case(6, "papermill sweep: notebook not JSON",
         lambda c: ["sweep", papermill_sweep(c, "pm_text", {"x": [1]}, garbage=b"just some text, not a notebook\n"),
                    "--dry-run"], "01_tiny.ipynb"),
    Case(6, "papermill sweep: notebook JSON but no cells",
         lambda c: ["sweep", papermill_sweep(c, "pm_json", {"x": [1]}, garbage=b'{"cells": 3}'), "--dry-run"],
         "01_tiny.ipynb"),
    Case(6, "course: garbage notebook", lambda c: ["course", "--notebook-dir", notebook_dir(c, "nbs_bad", garbage=True),
                                                   "--output-dir", c["tmp"] / "c_out2"], "01_tiny.ipynb"),
    Case(6, "course --list: garbage notebook", lambda c: ["course", "--list", "--notebook-dir",
                                                          notebook_dir(c, "nbs_bad", garbage=True)], "01_tiny.ipynb"),
    Case(6, "train --glue-dir <a symlink loop>", lambda c: train(c, glue=loop(c, "glue_loop")), "glue_loop"),
    Case(6, "train: task folder a symlink loop", lambda c: train(c, glue=glue_with_task_loop(c)), "RTE"),
    Case(6, "evaluate --glue-dir <a symlink loop>", lambda c: ["evaluate", "--checkpoint", c["ckpt"], "--glue-dir",
                                                               loop(c, "glue_loop")], "glue_loop"),
    Case(6, "train --model <a symlink loop>", lambda c: train(c, model=loop(c, "model_loop")), "model_loop"),
    Case(6, "status with ADAPTERLIB_ROOT <a symlink loop>", lambda c: ["status"], "root_loop",
         child={"env": {"ADAPTERLIB_ROOT": "{tmp}/root_loop"}}),
    Case(6, "train --model <folder with a pickle .bin>",
         lambda c: train(c, model=model_copy(c, "m_pickle", pickled_weights)), "pytorch_model.bin"),
    Case(6, "train --model <config.json not JSON>",
         lambda c: train(c, model=model_copy(c, "m_garbage", lambda f: (f / "config.json").write_text("{garbage"))), "m_garbage"),
    Case(6, "evaluate: garbage adapter weights",
         lambda c: ["evaluate", "--checkpoint", _garbage_weights(c)], "adapter_model.safetensors"),
    Case(6, "sweep --scheduler garbage", lambda c: ["sweep", ok_sweep(c), "--output-dir", c["tmp"] / "sch1",
                                                    "--scheduler", "not an address"], "--scheduler"),
    Case(6, "sweep --scheduler tcp://no-such-host.invalid:8786",
         lambda c: ["sweep", ok_sweep(c), "--output-dir", c["tmp"] / "sch2", "--scheduler",
                    "tcp://no-such-host.invalid:8786"], "no-such-host.invalid"),
    Case(6, "sweep --scheduler tcp://127.0.0.1:0", lambda c: ["sweep", ok_sweep(c), "--output-dir", c["tmp"] / "sch3",
                                                             "--scheduler", "tcp://127.0.0.1:0"], "--scheduler"),
    Case(6, "sweep --dashboard no-such-host.invalid:8787",
         lambda c: ["sweep", ok_sweep(c), "--output-dir", c["tmp"] / "dash4", "--dashboard", "no-such-host.invalid:8787"],
         "no-such-host.invalid"),
    # 7. non-finite results are errors naming the checkpoint
    Case(7, "evaluate <a checkpoint with NaN weights>", lambda c: ["evaluate", "--checkpoint", nan_checkpoint(c)], "ck_nan"),
    Case(7, "evaluate <a checkpoint with NaN weights> --force --task sst2",
         lambda c: ["evaluate", "--checkpoint", nan_checkpoint(c), "--task", "sst2", "--force"], "ck_nan"),
]


def _garbage_weights(ctx: dict) -> Path:
    path = ctx["tmp"] / "ck_garbage"
    if not path.exists():
        shutil.copytree(ctx["ckpt"], path)
        (path / "adapter_model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{garbage" + b"\x00" * 40)
    return path


def world(tiny_model_dir, tiny_glue_dir, tmp: Path) -> dict:
    ctx = make_world(tiny_model_dir, tiny_glue_dir, tmp)
    (tmp / "root_loop").symlink_to(tmp / "root_loop")
    return ctx


def resolve_child(case: Case, ctx: dict) -> Case:
    if case.child and case.child.get("env"):
        env = {k: v.format(tmp=ctx["tmp"]) for k, v in case.child["env"].items()}
        return dataclasses.replace(case, child={**case.child, "env": env})
    return case


@pytest.fixture(scope="module")
def battery(tiny_model_dir, tiny_glue_dir, tmp_path_factory) -> dict[str, tuple[str, str, str]]:
    """Every case of CASES run once, in a fresh world: {name: (outcome, stdout, stderr)}. test_hostile checks each
    case's outcome and test_figures counts them, from this one run (as tests/test_reliability.py's battery does)."""
    ctx = world(tiny_model_dir, tiny_glue_dir, tmp_path_factory.mktemp("hostile"))
    return {case.name: run_case(resolve_child(case, ctx), ctx) for case in CASES}


@pytest.mark.parametrize("case", CASES, ids=[f"{c.cls}-{c.name}" for c in CASES])
def test_hostile(case, battery):
    outcome, out, err = battery[case.name]
    assert outcome == ("clear error" if case.expect else "correct success"), (outcome, out[-600:], err[-1500:])


def test_figures(battery):
    """The battery's counts per outcome and per class (HOSTILE_REPORT=FILE writes them)."""
    counts = {o: 0 for o in OUTCOMES}
    by_class: dict[str, dict] = {}
    for case in CASES:
        outcome = battery[case.name][0]
        counts[outcome] += 1
        by_class.setdefault(str(case.cls), {o: 0 for o in OUTCOMES})[outcome] += 1
    figures = {"cases": len(CASES), **counts, "by_class": by_class}
    if os.environ.get("HOSTILE_REPORT"):
        Path(os.environ["HOSTILE_REPORT"]).write_text(json.dumps(figures, indent=2) + "\n")
    assert counts["clear error"] + counts["correct success"] == len(CASES), figures
    page = (REPO / "book" / "reliability.md").read_text()  # the site's Reliability page quotes this battery
    assert "test_hostile.py" in page
    assert figures_row(figures) in page, f"book/reliability.md's hostile figures are stale: {figures_row(figures)}"


def figures_row(figures: dict) -> str:
    """The Reliability page's table row: | cases | clear errors | successes | tracebacks | silent | misleading | files | hangs |"""
    return "| " + " | ".join(str(figures[k]) for k in ("cases", *OUTCOMES)) + " |"


@pytest.fixture(scope="module")
def ctx(tiny_model_dir, tiny_glue_dir, tmp_path_factory):
    return world(tiny_model_dir, tiny_glue_dir, tmp_path_factory.mktemp("hostile_ctx"))


def test_a_diverged_run_names_its_init_std(ctx, monkeypatch):
    """Class 5: a loss that becomes NaN says which adapter init std the run had (the std is a suspect)."""
    import importlib
    train_module = importlib.import_module("adapterlib.train")
    monkeypatch.setattr(train_module, "_train_step", lambda *a, **k: float("nan"))
    rc, out, err = run_cli(train(ctx, "--init-std", "0.5"))
    assert rc == 2 and "init std 0.5" in err.strip().splitlines()[-1], err[-500:]


def test_yaml_limits_count_aliases_without_expanding_them():
    from adapterlib.sweeps.yamlsafe import MAX_NODES, YamlError, load_yaml
    assert load_yaml("a: &x [1, 2]\nb: *x\n", "t") == {"a": [1, 2], "b": [1, 2]}
    assert load_yaml("", "t") is None
    with pytest.raises(YamlError, match="duplicate key 'a'"):
        load_yaml("a: 1\nb: 2\na: 3\n", "t")
    with pytest.raises(YamlError, match=f"over the limit of {MAX_NODES:,}"):
        load_yaml("v: " + LAUGHS_FLOW, "t")
    assert load_yaml("base: &b {x: 1}\nother: {<<: *b, y: 2}\n", "t")["other"] == {"x": 1, "y": 2}  # merge keys
