"""What the course, claims, sweep, aggregate, pilot and status commands do (their parsers: adapterlib.cli).

Each `cmd_*` takes the parsed arguments and returns the exit code; heavy modules are imported inside, when the
command runs, so `python -m adapterlib --help` stays light.
"""
from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path


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
    from .course.claims import claims, headline, replace_scorecard_block, scorecard_blocks, scorecard_markdown

    path = Path(args.update) if args.update else None
    if path:  # a missing page, or one without markers, fails before the scorecard is computed
        scorecard_blocks(path.read_text())
    card = claims(args.results_dir)
    if path:
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


def cmd_sweep(args) -> int:
    from .sweeps.driver import describe_estimate, describe_plan, plan, run_sweep, study_folder, study_progress
    from .sweeps.executor import check_addresses
    from .sweeps.overrides import parse_overrides
    from .sweeps.spec import load_spec

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
