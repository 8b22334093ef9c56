"""The command line, all of it: `python -m adapterlib {train,evaluate,course,claims,sweep,aggregate,status,pilot}
--help`.

Every parser is built here from argparse alone (train's from TrainConfig's fields), so `--help` imports
nothing heavy; each command's handler imports the library code it runs when it runs.
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import json
import math
import os
import re
import shlex
import sys
import typing
from pathlib import Path

EPILOG = """examples:
  python -m adapterlib train --task rte --policy adapter --adapter-size 64 --lr 3e-4 --epochs 3 --seed 0 \
--output-dir runs/
  python -m adapterlib train --task rte --method lora --lora-r 8 --lr 5e-4 --output-dir runs/
  python -m adapterlib train --task rte --method houlsby --nonlinearity swish --init-std 0.02 --no-train-layernorm
  python -m adapterlib train --task sst2 --max-train-examples 4000 --epochs 1 --output-dir runs/
  python -m adapterlib evaluate --checkpoint runs/<run_id> --task rte

Data: --glue-dir (or $GLUE_DIR) points at a folder in the GLUE layout (<TASK>/train.tsv, dev.tsv);
without it, data comes from the copy bundled with adapterlib, else the HuggingFace hub (nyu-mll/glue)."""


# The few TrainConfig fields whose values argparse lists (TrainConfig.__post_init__ checks them all again).
TRAIN_CHOICES = {"head_input": ("pooler", "mean"), "mixed_precision": ("no", "fp16", "bf16")}


def field_help(cls) -> dict[str, str]:
    """Each dataclass field's trailing `# comment` in the class source (with its `#` continuation lines):
    the comments beside TrainConfig's fields are the CLI's help, so defaults and help live in one place."""
    names, helps, current = {f.name for f in dataclasses.fields(cls)}, {}, None
    for line in inspect.getsource(cls).splitlines():
        field = re.match(r"\s{4}(\w+)\s*:[^#]*(?:#\s*(.*))?$", line)
        if field and field.group(1) in names:
            current = field.group(1)
            helps[current] = (field.group(2) or "").strip()
        elif current and re.match(r"\s+#", line):
            helps[current] += " " + line.split("#", 1)[1].strip()
        else:
            current = None
    return helps


def add_dataclass_arguments(parser, cls, required=(), choices=None) -> None:
    """One option per field of dataclass `cls`: `--field-name`, its type, default and help from the class.

    `X | None` fields take one X (or, for `list[X]`, one or more); a bool field that defaults to False is
    a `--name` switch, one that defaults to True a `--no-name` switch. Fields in `required` have no default.
    """
    hints, helps, choices = typing.get_type_hints(cls), field_help(cls), choices or {}
    for f in dataclasses.fields(cls):
        flag, hint = "--" + f.name.replace("_", "-"), hints[f.name]
        text = helps.get(f.name, "").replace("%", "%%")  # argparse formats help with %
        if hint == (bool | None):  # None = "not said": --name / --no-name set it
            parser.add_argument(flag, dest=f.name, default=None, action=argparse.BooleanOptionalAction, help=text)
            continue
        if hint is bool:
            negate = f.default is True
            parser.add_argument(f"--no-{flag[2:]}" if negate else flag, dest=f.name, default=f.default,
                                action="store_false" if negate else "store_true",
                                help=f"switch off: {text}" if negate else text)
            continue
        options = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
        kind = options[0]
        kwargs = dict(type=kind, help=text)
        if typing.get_origin(kind) is list:
            kwargs.update(type=typing.get_args(kind)[0], nargs="+")
        if f.name in choices:
            kwargs["choices"] = choices[f.name]
        if f.name in required:
            kwargs["required"] = True
        else:
            kwargs["default"] = f.default
            if f.default is not None:
                kwargs["help"] = f"{text} (default: {f.default})"
        parser.add_argument(flag, **kwargs)


def _add_train(sub):
    p = sub.add_parser("train", help="train one configuration and write its JSON run record",
                       description="Train one configuration with the paper's recipe (AdamW, linear warm-up "
                       "over 10% of steps then decay, clipping 1.0, batch 32, max length 128), select the best "
                       "epoch on a held-out 10% of train, score the GLUE dev set, write a JSON record.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    from .config import TrainConfig
    add_dataclass_arguments(p, TrainConfig, required=("task",), choices=TRAIN_CHOICES)
    p.set_defaults(adapter_size=None)  # given or not: a method without adapters refuses it (cmd_train)
    p.add_argument("--output-dir", default="runs", help="where the record (and adapter checkpoint) go (default: runs/)")
    p.add_argument("--no-checkpoint", action="store_true", help="do not save the adapter-only checkpoint")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--allow-slow-bf16", action="store_true", help="train --mixed-precision bf16 even where the "
                   "hardware has no native bf16 (refused without it: emulated bf16 trained 32.8x slower than fp32)")
    p.set_defaults(func=cmd_train)


def _add_evaluate(sub):
    p = sub.add_parser("evaluate", help="score a saved adapter checkpoint on a GLUE split",
                       description="Load the base model, apply an adapter-only checkpoint, and score a split.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="checkpoint folder written by `train`")
    p.add_argument("--task", help="GLUE task (default: the task stored in the checkpoint)")
    p.add_argument("--split", default="dev",
                   help="split to score: dev, validation, train, dev_matched, ... (default: dev)")
    p.add_argument("--model", help="base model (default: the one stored in the checkpoint)")
    p.add_argument("--glue-dir", help="GLUE data folder (default: $GLUE_DIR, else the bundled copy, else the hub)")
    p.add_argument("--max-examples", type=int, help="score only the first N examples (N >= 1)")
    p.add_argument("--force", action="store_true", help="score a checkpoint on a --task other than the one it was "
                   "trained on (refused without it; never possible when the label counts differ)")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.set_defaults(func=cmd_evaluate)


class OneLineParser(argparse.ArgumentParser):
    """argparse with one error line (the CLI's contract: one line naming the bad value, exit code 2)."""

    def error(self, message):
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m adapterlib", description="Houlsby adapters for BERT-family "
                                     "models: train, evaluate, sweep, and run the notebook course.",
                                     epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_train(sub)
    _add_evaluate(sub)
    _add_course(sub)
    _add_claims(sub)
    _add_sweeps(sub)
    return parser


def dev_scores_text(dev: dict) -> str:
    """The dev scores of a run record: "dev accuracy 85.00, f1 88.10"; a task with several dev splits (MNLI)
    names each: "dev_matched: accuracy 80.10; dev_mismatched: accuracy 80.50"."""
    def scores(d):
        return ", ".join(f"{k} {v:.2f}" for k, v in d.items() if k != "loss")
    if list(dev) == ["dev"]:
        return f"dev {scores(dev['dev'])}"
    return "; ".join(f"{split}: {scores(d)}" for split, d in dev.items())


def cmd_train(args) -> int:

    from .config import TrainConfig
    from .train import train
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)}
    size = given.pop("adapter_size")
    cfg = TrainConfig(**given)
    if size is not None:  # --adapter-size, even at its default value, names a bottleneck-adapter method
        from .config import ADAPTER_METHODS
        from .errors import UsageError
        if cfg.method not in ADAPTER_METHODS:
            lora = " (its size is --lora-r)" if cfg.method == "lora" else ""
            raise UsageError(f"--adapter-size applies to methods {' and '.join(ADAPTER_METHODS)} "
                             f"(bottleneck adapters), not --method {cfg.method}{lora}")
        cfg = dataclasses.replace(cfg, adapter_size=size)
    cfg.adapter_config() if cfg.method in ("houlsby", "pfeiffer") else None  # adapter options: checked before loading
    from .precision import check_precision
    check_precision(cfg.mixed_precision, allow_slow_bf16=args.allow_slow_bf16)  # before anything is written
    record = train(cfg, output_dir=args.output_dir, progress=not args.quiet, save_checkpoint=not args.no_checkpoint)
    sel = record.selected
    print(f"{record.task} {record.method}: selected step {sel['step']} (validation {record.metric} "
          f"{sel['validation_' + record.metric]:.2f}); {dev_scores_text(record.dev)}")
    print(f"record: {record.path}")
    return 0


def cmd_evaluate(args) -> int:
    from .checkpoint import CheckpointError, load_adapter, read_adapter_config
    from .data import get_task
    from .errors import UsageError
    from .models import load_base_model
    from .train import evaluate_task
    if args.max_examples is not None and args.max_examples < 1:
        raise UsageError(f"--max-examples must be a positive integer, got {args.max_examples}")
    meta = read_adapter_config(args.checkpoint)
    trained_on = meta.get("metadata", {}).get("task")
    if not (args.task or trained_on):
        raise CheckpointError(f"checkpoint {args.checkpoint} does not say which task it was trained on; pass --task")
    task = get_task(args.task or trained_on)
    own = get_task(trained_on) if trained_on else task
    if own.name != task.name:  # a checkpoint scored on another task: refused unless forced
        if own.num_labels != task.num_labels:
            raise CheckpointError(f"checkpoint {args.checkpoint} was trained on {own.name} ({own.num_labels} "
                                  f"label(s)); --task {task.name} has {task.num_labels}, its head cannot score it")
        if not args.force:
            raise CheckpointError(f"checkpoint {args.checkpoint} was trained on {own.name}, not {task.name}; "
                                  "pass --force to score it on another task anyway")
        print(f"warning: scoring a checkpoint trained on {own.name} on {task.name} (--force)", file=sys.stderr)
    model, tokenizer = load_base_model(args.model or meta.get("metadata", {}).get("model"), num_labels=task.num_labels)
    load_adapter(model, args.checkpoint)
    scores = evaluate_task(model, tokenizer, task, args.split, args.glue_dir, args.max_examples, progress=True)
    check_finite_scores(scores, f"checkpoint {args.checkpoint} on {task.name} {args.split}")
    print(json.dumps({"task": task.name, "split": args.split, "checkpoint": str(args.checkpoint), **scores}, indent=2))
    return 0


def check_finite_scores(scores: dict, what: str) -> None:
    """A NaN or infinite loss or metric is not a score: an error naming what was scored (its weights or inputs
    are broken), never a number printed with exit code 0."""

    from .checkpoint import CheckpointError
    bad = {k: v for k, v in scores.items() if isinstance(v, float) and not math.isfinite(v)}
    if bad:
        raise CheckpointError(f"{what}: non-finite result(s) {', '.join(f'{k} {v}' for k, v in bad.items())}; "
                              "its weights (or the data) hold NaN or infinite values")


# ---------------------------------------------------------------- course, sweep, aggregate, status

COURSE_DESCRIPTION = """Execute the numbered course notebooks (notebooks/NN_*.ipynb) in order with papermill.

Each notebook runs in a fresh python3 kernel with the notebooks folder as working directory, at the
chosen scale (its `preset` parameter):
  smoke   seconds per notebook; checks that everything runs, numbers are not meaningful
  course  a few minutes per notebook on a laptop CPU; meaningful, small-scale results (default)
  full    paper-scale settings; meant for a GPU
Executed notebooks are written to --output-dir, each with the JSON of key numbers it recorded
(its `results_path` parameter). The command prints one line per notebook (ok/FAILED, seconds), then
the failing cell and error of every failed notebook; the exit code is 1 if any notebook failed."""


COURSE_EPILOG = """examples:
  python -m adapterlib course                                 # all notebooks, preset course
  python -m adapterlib course --preset smoke                  # quick end-to-end check
  python -m adapterlib course --notebooks 01 03 --output-dir outputs/try
  python -m adapterlib course --preset full -p task cola      # set a notebook parameter
  python -m adapterlib course --list                          # notebooks and their parameters
  python -m adapterlib course --exercises                     # student notebooks -> outputs/course/exercises/

-p NAME VALUE goes only to notebooks whose parameters cell defines NAME; VALUE is read as a
Python literal when it is one (3, 1e-3, [1, 2], None, True), else as a string. --model and
--glue-dir are shorthands for -p model ... and -p glue_dir ...
A notebook's parameters are listed by --list or by `papermill --help-notebook notebooks/NN_....ipynb`."""


def _add_course(sub) -> None:
    from .course.presets import ENV_VAR, PRESETS
    from .paths import NOTEBOOK_DIR

    p = sub.add_parser("course", help="run the notebook course in order with papermill",
                       description=COURSE_DESCRIPTION, epilog=COURSE_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", choices=PRESETS,
                   help=f"scale: smoke | course | full (default: ${ENV_VAR}, else course)")
    p.add_argument("--notebooks", nargs="+", metavar="NN",
                   help="run only these notebooks, by number (01 03) or file name (default: all, in order)")
    p.add_argument("--output-dir", default="outputs/course",
                   help="where executed notebooks and their results JSON go (default: outputs/course)")
    p.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="set a notebook parameter (repeatable), e.g. -p task cola")
    p.add_argument("--model", help="base model id or path for every notebook (default: bundled MiniLM)")
    p.add_argument("--glue-dir", help="GLUE data folder for every notebook (default: $GLUE_DIR)")
    p.add_argument("--notebook-dir", default=str(NOTEBOOK_DIR),
                   help="folder holding the NN_*.ipynb notebooks (default: the repository's notebooks/)")
    p.add_argument("--cell-timeout", type=int, help="fail a notebook if one cell runs longer than N seconds")
    p.add_argument("--list", action="store_true", help="list the notebooks and their parameters, run nothing")
    p.add_argument("--exercises", action="store_true",
                   help="write the student version of the notebooks with exercises (solutions removed, checks "
                        "failing until solved) to OUTPUT_DIR/exercises/, run nothing")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="a cell-by-cell progress bar for each notebook on stderr (default: when stderr is a terminal)")
    p.set_defaults(func=cmd_course)


def _add_claims(sub) -> None:
    p = sub.add_parser("claims", help="which of the paper's claims hold here: the scorecard, from the records",
                       description="One row per claim of Houlsby et al. 2019 that the workbook tests: the paper's "
                       "value, ours (recomputed from the committed run records), the interval, the floor check and "
                       "the verdict (holds / partly / does not hold / untestable here), each from a rule in "
                       "adapterlib/course/claims.py.")
    p.add_argument("--format", choices=("markdown", "csv"), default="markdown",
                   help="markdown: the headline and the table (default); csv: every column, the rules included")
    p.add_argument("--results-dir", help="folder of the studies (default: the repository's data/results)")
    p.add_argument("--update", metavar="FILE", help="replace the table between the scorecard markers in FILE "
                   "(e.g. book/scorecard.md) instead of printing it")
    p.set_defaults(func=cmd_claims)


def _update_in_place(path: Path, replace) -> None:
    """Rewrite `path` as `replace(its text)`, atomically: a failed write (a full disk) leaves the file as it was."""
    from .errors import OutputWriteError
    from .paths import write_text_atomic

    text = replace(path.read_text())
    try:
        write_text_atomic(path, text)
    except OSError as e:
        raise OutputWriteError(f"could not update {path}: {e.strerror or e}; it is as it was") from e


def cmd_claims(args) -> int:
    from .course.claims import claims, headline, replace_scorecard_block, scorecard_markdown

    card = claims(args.results_dir)
    if args.update:
        path = Path(args.update)
        _update_in_place(path, lambda text: replace_scorecard_block(text, card))
        print(f"updated the scorecard in {path}")
    elif args.format == "csv":
        print(card.to_csv(float_format="%.6g", lineterminator="\n"), end="")
    else:
        print(headline(card) + "\n\n" + scorecard_markdown(card))
    return 0


def cmd_course(args) -> int:
    from .course.presets import resolve_preset
    from .course.runner import (
        COURSE_RECORD,
        course_record,
        find_notebooks,
        importable_adapterlib,
        list_notebooks,
        plan_parameters,
        run_one,
        summary,
    )
    from .course.shared import course_runs_dir
    from .errors import UsageError
    from .paths import folder_problem, write_text_atomic

    notebooks = find_notebooks(args.notebook_dir, args.notebooks)
    if args.list:
        list_notebooks(notebooks)
        return 0
    if args.exercises:
        return _write_exercises(notebooks, Path(args.output_dir) / "exercises")
    out = Path(args.output_dir)
    problem = folder_problem(out)  # before any notebook runs: a clear line, not a traceback
    if problem:
        raise UsageError(f"--output-dir {out}: {problem}")
    plans = plan_parameters(notebooks, args)
    out.mkdir(parents=True, exist_ok=True)
    print(f"running {len(notebooks)} notebook(s) at preset {resolve_preset(args.preset)} -> {out}/", flush=True)
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    results = []
    runs_dir = course_runs_dir()
    runs_before = len(list(runs_dir.glob("*.json"))) if runs_dir.is_dir() else 0
    with importable_adapterlib():
        for i, nb in enumerate(notebooks, 1):
            head = f"[{i}/{len(notebooks)}] {nb.stem:<40}"
            if progress:  # the cell-by-cell bar (stderr) runs below this line, then the result line
                print(head, flush=True)
            else:
                print(head, end=" ", flush=True)
            result = run_one(nb, out / nb.name, plans[nb], args.cell_timeout, progress=progress)
            print(f"{head + ' ' if progress else ''}{'ok' if result.ok else 'FAILED':<6} {result.seconds:7.1f} s",
                  flush=True)
            results.append(result)
    print(summary(results))
    write_text_atomic(out / COURSE_RECORD,
                      json.dumps(course_record(results, resolve_preset(args.preset), runs_before), indent=1) + "\n")
    return 0 if all(r.ok for r in results) else 1


def _write_exercises(notebooks, out: Path) -> int:
    from .course.student import write_exercises
    from .errors import UsageError
    from .paths import folder_problem

    problem = folder_problem(out)
    if problem:
        raise UsageError(f"--output-dir {out.parent}: {problem}")
    written = write_exercises(notebooks, out)
    for path in written:
        print(f"wrote {path}")
    if not written:
        print("none of the selected notebooks has exercises (01 and 02 do)")
    return 0


def _pilot_rules() -> str:
    """The pilot's rules, as adapterlib/sweeps/pilot.py's docstring states them (read without importing pandas)."""
    doc = ast.get_docstring(ast.parse((Path(__file__).parent / "sweeps" / "pilot.py").read_text()))
    return "examples and rules (sweeps/pilot_v2.yaml):\n" + doc.split("\n\n", 1)[1]


SWEEP_EPILOG = """examples:
  python -m adapterlib sweep sweeps/smoke.yaml --dry-run           # list runs and which are done
  python -m adapterlib sweep sweeps/glue_cpu.yaml --lock /tmp/adapterlib-cpu.lock   # shared machine
  python -m adapterlib sweep sweeps/glue_cpu.yaml --set model=bert-base-uncased --output-dir runs/glue_bert
  python -m adapterlib sweep sweeps/glue_cpu.yaml --scheduler tcp://10.0.0.1:8786 --threads-per-run 8
  python -m adapterlib aggregate glue_cpu --plots                   # data/results/glue_cpu/tables/

Kill it at any moment and run the same command again: finished runs are kept, unfinished ones rerun.
See sweeps/README.md for the file format and dask-jobqueue (Slurm)."""


def _add_sweeps(sub) -> None:
    from .sweeps.status import STATUS_BEGIN, STATUS_END

    p = sub.add_parser("sweep", help="run a YAML grid of trainings, resumably, on dask.distributed",
                       description="Run every unfinished run of a sweep file on a dask cluster (a LocalCluster by "
                       "default); each worker writes its run's JSON record atomically.", epilog=SWEEP_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("spec", help="sweep file, e.g. sweeps/glue_cpu.yaml")
    p.add_argument("--output-dir", help="study folder (default: data/results/<name>); records in its runs/")
    p.add_argument("--scheduler", help="address of an existing dask scheduler (default: start a LocalCluster)")
    p.add_argument("--workers", type=int, help="LocalCluster worker processes (default: cores // threads-per-run)")
    p.add_argument("--threads-per-run", type=int, help="torch threads per run (default: cores // workers)")
    p.add_argument("--retry-failed", action="store_true", help="rerun runs recorded as failed")
    p.add_argument("--lock", metavar="FILE", help="hold an flock on FILE during each run, so other heavy jobs on a "
                   "shared machine can run between runs (e.g. /tmp/adapterlib-cpu.lock)")
    p.add_argument("--dashboard", metavar="HOST:PORT", default="127.0.0.1:0",
                   help="where the LocalCluster's dask dashboard listens (default: 127.0.0.1:0, this machine only, "
                        "any free port; 0.0.0.0:8787 exposes it to the network; 'off': no dashboard)")
    p.add_argument("--dry-run", action="store_true", help="list the runs and which are done; run nothing")
    p.add_argument("--set", action="append", metavar="FIELD=VALUE", help="force a field in every run (repeatable)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--allow-slow-bf16", action="store_true", help="train bf16 runs even where the hardware has no "
                   "native bf16 (refused without it: emulated bf16 trained 32.8x slower than fp32)")
    p.set_defaults(func=cmd_sweep)

    a = sub.add_parser("aggregate", help="recompute a study's tables (CSV) from its run records",
                       description="Turn a study's run records into tidy tables: runs, best, summary, and the "
                       "Table 1 / size / init tables where they apply.", epilog=SWEEP_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    a.add_argument("study", help="study name under data/results/, or a study / records folder")
    a.add_argument("--out-dir", help="write the tables here (default: <study>/tables)")
    a.add_argument("--plots", action="store_true", help="also save the size / init curves as PNG")
    a.set_defaults(func=cmd_aggregate)

    st = sub.add_parser("status", help="how far each reproduction study is (a Markdown table)",
                        description="For each sweep file: runs finished / planned, failed runs and the summed run "
                        "wall time, and the tasks whose every run finished ok, read from data/results/<name>/runs. "
                        "The status table of book/reproduction.md (the site's reproduction ledger) is this output.")
    st.add_argument("specs", nargs="*", help="sweep files (default: every sweeps/*.yaml except smoke.yaml)")
    st.add_argument("--update", metavar="FILE", help="replace the table between the lines "
                    f"'{STATUS_BEGIN}' and '{STATUS_END}' in FILE (e.g. book/reproduction.md) instead of printing it")
    st.set_defaults(func=cmd_status)

    pi = sub.add_parser("pilot",
                        help="the v2 pilot's decisions (epochs, head input, lr x size, precision) from its records",
                        description="Apply the v2 pilot's pre-registered rules (sweeps/pilot_v2.yaml) to its run "
                        "records and print each decision with its evidence (validation scores only).",
                        epilog=_pilot_rules(), formatter_class=argparse.RawDescriptionHelpFormatter)
    pi.add_argument("study", nargs="?", default="pilot_v2",
                    help="study name under data/results/ or a folder of run records (default: pilot_v2)")
    pi.set_defaults(func=cmd_pilot)


def cmd_sweep(args) -> int:
    from .sweeps.driver import describe_estimate, describe_plan, plan, run_sweep, study_folder, study_progress
    from .sweeps.executor import check_addresses
    from .sweeps.spec import load_spec, parse_overrides

    spec = load_spec(args.spec, parse_overrides(args.set))
    check_addresses(args.scheduler, args.dashboard)  # before anything runs, a dry run included
    if args.dry_run:
        print(describe_plan(spec, args.output_dir))
        folder = study_folder(spec, args.output_dir)
        rows = plan(spec, args.output_dir)
        later = study_progress(spec, args.output_dir)["planned_max"] - len(rows)
        print(describe_estimate(spec, [r for s, r in rows if s == "todo"], folder, later=later))
        return 0
    try:
        counts = run_sweep(spec, args.output_dir, args.scheduler, args.workers, args.threads_per_run,
                           args.retry_failed, progress=not args.quiet, command=_command_line(args), lock=args.lock,
                           dashboard=None if args.dashboard in ("off", "none", "") else args.dashboard,
                           allow_slow_bf16=args.allow_slow_bf16)
    except KeyboardInterrupt:
        print("interrupted: finished runs are saved; run the same command again to resume", file=sys.stderr)
        return 130
    print(f"{spec.name}: {counts['ok']} ok, {counts['failed']} failed, {counts['skipped']} already done "
          f"({counts['reused']} of them reused from another study); measured: {counts['wall_s'] / 3600:.2f} h of wall "
          f"time, {counts['cpu_s'] / 3600:.2f} core-h of CPU time in the runs trained now; "
          f"records in {counts['folder']}/runs")
    return 1 if counts["failed"] else 0


def _command_line(args) -> str:

    """The command as typed (for the study's log), rebuilt from the parsed options."""
    parts = ["python -m adapterlib sweep", shlex.quote(args.spec)]
    for name in ("output_dir", "scheduler", "workers", "threads_per_run", "lock"):
        if getattr(args, name) is not None:
            parts += [f"--{name.replace('_', '-')}", shlex.quote(str(getattr(args, name)))]
    parts += [f"--set {shlex.quote(item)}" for item in args.set or []]
    parts += ["--allow-slow-bf16"] if args.allow_slow_bf16 else []
    return " ".join(parts + (["--retry-failed"] if args.retry_failed else []))


def cmd_aggregate(args) -> int:
    import pandas as pd

    from .sweeps.aggregate import write_tables
    from .sweeps.driver import report_invalid
    from .vocab import display_labels, label

    excluded: list = []
    written = write_tables(args.study, out_dir=args.out_dir, plots=args.plots, excluded=excluded)
    report_invalid(excluded)
    for path in written.values():
        print(path)
    if excluded:
        print(f"{len(excluded)} invalid run record(s) excluded (listed above; counted in summary.csv)")
    if "glue_table_dev_mean" in written:  # the headline: Table 1 analog, GLUE dev means over seeds
        table = display_labels(pd.read_csv(written["glue_table_dev_mean"], index_col="method"))
        print("\n" + table.to_string(float_format=lambda v: f"{v:.2f}"))
    if "glue_gap" in written:  # how far adapters are from full fine-tuning on the average, with its interval
        for _, g in pd.read_csv(written["glue_gap"]).iterrows():
            interval = (f"95% seed bootstrap {g['gap_low_95%']:+.2f} .. {g['gap_high_95%']:+.2f}, at least "
                        f"{g['n_seeds_min']} seeds per cell" if pd.notna(g["gap_low_95%"]) else
                        f"no interval: a cell has {g['n_seeds_min']} seed, whose noise is not measured")
            print(f"{label(g['method'])} - {label(g['baseline'])}: average gap {g['gap_mean']:+.2f} over "
                  f"{g['n_tasks']} tasks ({interval}); best of seeds on validation {g['gap_best_of_seeds']:+.2f}")
    return 0


def cmd_pilot(args) -> int:
    from .sweeps.aggregate import load_study
    from .sweeps.pilot import decide, decision_text

    print(decision_text(decide(load_study(args.study))))
    return 0


def cmd_status(args) -> int:
    from .errors import UsageError
    from .sweeps.driver import invalid_records, report_invalid, study_folder
    from .sweeps.spec import load_spec
    from .sweeps.status import replace_status_block, repository_sweeps, status_markdown

    specs = args.specs or repository_sweeps()
    for path in specs:
        report_invalid(invalid_records(study_folder(load_spec(path)) / "runs"))
    table = status_markdown(specs)
    if not args.update:
        print(table)
        from .resume import pending  # runs stopped part-way (or training now): where they resume
        for path in specs:
            for snap in pending(study_folder(load_spec(path)) / "runs"):
                print(f"{Path(path).stem}: {snap['run_id']} has {snap['epochs']:g} epoch(s) done "
                      f"({snap['wall_s'] / 60:.0f} min so far); it resumes there if stopped")
        return 0
    path = Path(args.update)
    if path.resolve() in {Path(p).resolve() for p in specs}:
        raise UsageError(f"--update {path} is one of the sweep files it reads; name the Markdown file to update")
    _update_in_place(path, lambda text: replace_status_block(text, table))
    print(f"updated the status table in {path}")
    return 0


# Modules of the optional extras (pyproject.toml) -> the extra that installs them.
EXTRA_OF = {"matplotlib": "course", "papermill": "course", "nbformat": "course", "ipywidgets": "course",
            "ipykernel": "course", "jupyterlab": "course", "dask": "sweeps", "distributed": "sweeps"}


def missing_extra_line(command: str, error: ModuleNotFoundError) -> str | None:
    """One line naming the extra to install when `error` is a module of one; None for any other module."""
    module = (error.name or "").split(".")[0]
    extra = EXTRA_OF.get(module)
    if extra is None:
        return None
    return f"error: `{command}` needs {module}, from adapterlib's [{extra}] extra: pip install 'adapterlib[{extra}]'"


_NEGATIVE_NUMBER = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$|^-(inf|infinity|nan)$", re.IGNORECASE)


def join_negative_numbers(argv: list[str]) -> list[str]:
    """`--lr -1e-3` -> `--lr=-1e-3`: argparse takes a negative number in exponent form for an option,
    so the value would never reach the setting's own check (which names the allowed range)."""
    out: list[str] = []
    for token in argv:
        if out and _NEGATIVE_NUMBER.match(token) and out[-1].startswith("--") and "=" not in out[-1] \
                and out[-1] != "--":
            out[-1] = f"{out[-1]}={token}"
        else:
            out.append(token)
    return out


def _one_line(error: BaseException) -> str:
    text = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
    return text or type(error).__name__


def main(argv=None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    argv = join_negative_numbers(list(sys.argv[1:] if argv is None else argv))
    from .paths import root_problem
    if root_problem():
        print(f"error: {root_problem()}", file=sys.stderr)
        return 2
    args = build_parser().parse_args(argv)
    if getattr(args, "threads", None) is not None:
        from .config import MAX_THREADS
        if not 1 <= args.threads <= MAX_THREADS:  # torch takes a C int; more threads than cores only slows it
            print(f"error: --threads must be a positive integer, got {args.threads} (at most {MAX_THREADS})",
                  file=sys.stderr)
            return 2
        import torch
        torch.set_num_threads(args.threads)
    from .errors import AdapterlibError
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except AdapterlibError as e:  # bad input; any other exception is a bug and keeps its traceback
        print(f"error: {_one_line(e)}", file=sys.stderr)
        return 2
    except OSError as e:  # a file or folder the user named: missing, not writable, a folder not a file, ...
        print(f"error: {_one_line(e)}", file=sys.stderr)
        return 2
    except RuntimeError as e:  # Path.resolve's "Symlink loop from '<path>'" (an OSError from Python 3.13)
        if not str(e).startswith("Symlink loop"):
            raise
        print(f"error: {_one_line(e)}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as e:  # an optional extra is not installed; any other missing module is a bug
        line = missing_extra_line(args.command, e)
        if line is None:
            raise
        print(line, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
