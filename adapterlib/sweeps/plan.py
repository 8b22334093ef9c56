"""What a sweep runs: its grid, the lrs extend_edges adds past the grid's edge, the seeds select_then_seeds
adds at each group's winner, the order of work (task by task), and each run's status from its record
(`plan_records`, `describe_plan` for `sweep --dry-run`). Deterministic in the records, so a resumed sweep
plans the same runs."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from ..record import RunRecord
from ..records import load_records, read_record_file
from .spec import Run, SweepSpec, expand, group_seeds, make_run


def _group_key(spec: SweepSpec, run: Run) -> tuple:
    return tuple(str(run.fields.get(k)) for k in spec.select_by)


def _axis(run: Run) -> str:
    """A run's setting apart from lr and seed: the runs of one lr grid share it."""
    return json.dumps({k: v for k, v in run.fields.items() if k not in ("lr", "seed")}, sort_keys=True, default=str)


def _past(lr: float, neighbour: float) -> float:
    """One grid step past `lr` away from `neighbour` (the same ratio), to two significant digits."""
    return float(f"{lr * lr / neighbour:.2g}")


def winners(spec: SweepSpec, frame, by) -> list[str]:
    """Run ids of each group's best setting on validation (aggregate.select_best over `by`) and, with
    select_then_seeds' budget_percent, each group's best among the settings that train at most that % of
    the base model per task, where it differs (a group with no setting within the budget adds nothing)."""
    from .aggregate import select_best
    ids = list(select_best(frame, by=by)["run_id"])
    within = frame[frame["percent_of_base"] <= spec.budget_percent] if spec.budget_percent is not None else frame[:0]
    if len(within):
        ids += [i for i in select_best(within, by=by)["run_id"] if i not in ids]
    return ids


def edge_runs(spec: SweepSpec, grid: list[Run], runs_dir: Path) -> list[Run]:
    """extend_edges: the runs that carry a grid one lr past its edge where the validation winner sits on it.

    For every group of `extend_edges.by` whose runs (grid and extensions so far) have all finished, the
    best setting on validation (`winners`, as select_then_seeds chooses: with budget_percent, the best within
    the budget too) is found; when its lr
    is the largest (smallest) of the lrs tried at that setting, the lr one step above (below) it, at the
    ratio of the last step, is added for the seeds the winner has, up to `steps` lrs past the grid's
    edge on each side. Groups with an unfinished run, no ok run, or one lr get nothing. Deterministic
    in the records, so a resumed sweep plans the same runs."""
    from .aggregate import records_frame
    if not spec.extend_steps:
        return []
    original: dict[str, set] = {}
    for run in grid:
        original.setdefault(_axis(run), set()).add(run.fields["lr"])
    runs, out = list(grid), []
    known = {r.run_id for r in runs}
    while True:
        groups: dict[tuple, list[Run]] = {}
        for run in runs:
            groups.setdefault(tuple(str(run.fields.get(k)) for k in spec.extend_by), []).append(run)
        added = []
        for members in groups.values():
            recs = [read_record(runs_dir, r) for r in members]
            ok = [rec for rec in recs if rec is not None and rec.status == "ok"]
            if any(rec is None for rec in recs) or not ok:
                continue
            by_id = {r.run_id: r for r in members}
            for best in [by_id[i] for i in winners(spec, records_frame(ok), spec.extend_by)]:
                axis = [r for r in members if _axis(r) == _axis(best)]
                lrs, lr, grid_lrs = sorted({r.fields["lr"] for r in axis}), best.fields["lr"], original[_axis(best)]
                if len(lrs) < 2 or lrs[0] < lr < lrs[-1]:
                    continue
                up = lr == lrs[-1]
                beyond = [x for x in lrs if (x > max(grid_lrs) if up else x < min(grid_lrs))]
                if len(beyond) >= spec.extend_steps:
                    continue
                new_lr = _past(lr, lrs[-2] if up else lrs[1])
                for seed in sorted({r.fields["seed"] for r in axis if r.fields["lr"] == lr}):
                    run = make_run(spec, {**best.fields, "lr": new_lr, "seed": seed}, stage="edge")
                    if run.run_id not in known:
                        known.add(run.run_id)
                        added.append(run)
        if not added:
            return out
        out += added
        runs += added


def extended_grid(spec: SweepSpec, grid: list[Run], runs_dir: Path) -> list[Run]:
    """The grid with the lrs extend_edges has added so far (see edge_runs)."""
    return grid + edge_runs(spec, grid, runs_dir)


def seed_plan(spec: SweepSpec, grid: list[Run], runs_dir: Path) -> tuple[list[Run], list[tuple]]:
    """select_then_seeds: (extra seed runs, groups without a successful grid run).

    Seeds go to the best grid setting of every group (and, with budget_percent, its best setting within
    the budget: see `winners`) whose grid runs have all finished (groups
    still waiting for a grid run get none yet); a finished group whose every run failed gets none
    and is listed (its select_by values) in the second item."""
    from .aggregate import records_frame
    if not spec.select_by:
        return [], []
    grid = extended_grid(spec, grid, runs_dir)   # a group waits for the lrs added past its grid's edge
    groups: dict[tuple, list[Run]] = {}
    for run in grid:
        groups.setdefault(_group_key(spec, run), []).append(run)
    finished, no_success = [], []
    for key, runs in groups.items():
        recs = [read_record(runs_dir, r) for r in runs]
        if all(rec is not None for rec in recs):
            finished += recs
            if not any(rec.status == "ok" for rec in recs):
                no_success.append(key)
    ok = [rec for rec in finished if rec.status == "ok"]
    if not ok:
        return [], no_success
    by_id = {r.run_id: r for r in grid}
    out = []
    for best_id in winners(spec, records_frame(ok), spec.select_by):
        for seed in group_seeds(spec, by_id[best_id].fields):
            run = make_run(spec, {**by_id[best_id].fields, "seed": seed}, stage="seeds")
            if run.run_id not in by_id:
                out.append(run)
    return out, no_success


def seed_runs(spec: SweepSpec, grid: list[Run], runs_dir: Path) -> list[Run]:
    """select_then_seeds: extra seeds at the best grid setting of every group whose grid runs have all
    finished (groups still waiting for a grid run get none yet, nor groups whose every run failed)."""
    return seed_plan(spec, grid, runs_dir)[0]


def describe_group(spec: SweepSpec, key: tuple) -> str:
    return ", ".join(f"{k}={v}" for k, v in zip(spec.select_by or (), key, strict=False))


def task_blocks(spec: SweepSpec, grid: list[Run]) -> list[tuple[str, list[Run]]]:
    """The order of work: one block per task (in grid order) when seeds are chosen per task, else one block."""
    if "task" not in (spec.select_by or ()):
        return [("", grid)]
    blocks: dict[str, list[Run]] = {}
    for run in grid:
        blocks.setdefault(str(run.fields.get("task")), []).append(run)
    return list(blocks.items())


def read_record(runs_dir: Path, run: Run) -> RunRecord | None:
    """The run's record, or None while it is unfinished (also for a garbled or invalid file, which
    `invalid_records` reports and a sweep reruns)."""
    path = runs_dir / f"{run.run_id}.json"
    if not path.exists():
        return None
    return read_record_file(path)[0]


def invalid_records(runs_dir: Path) -> list[tuple[str, str]]:
    """(path, reason) of every garbled or invalid record file in `runs_dir` (left out everywhere)."""
    bad: list = []
    if Path(runs_dir).is_dir():
        load_records(runs_dir, bad)
    return bad


def report_invalid(bad, file=None) -> None:
    for path, reason in bad:
        print(f"warning: invalid run record excluded: {path}: {reason}", file=file or sys.stderr)


def record_status(runs_dir: Path, run: Run, record: RunRecord | None = None) -> str:
    """"ok" / "failed" for a finished run, "todo" otherwise (also for an unreadable file)."""
    record = read_record(runs_dir, run) if record is None else record
    return "todo" if record is None else record.status


def reuse_source(spec: SweepSpec, run: Run, folder: Path) -> tuple[str, Path, RunRecord] | None:
    """(study, record file, record) of the first `reuse:` study holding an ok record of `run` (same run
    id) and, when this sweep keeps checkpoints, the run's checkpoint folder too; None if there is none."""
    for study in spec.reuse:
        source = folder.parent / study / "runs" / f"{run.run_id}.json"
        record = read_record_file(source)[0] if source.is_file() else None
        if record is None or record.status != "ok":
            continue
        if spec.save_checkpoint and not (source.parent / run.run_id).is_dir():
            continue
        return study, source, record
    return None


def study_folder(spec: SweepSpec, output_dir=None) -> Path:
    from .aggregate import RESULTS_DIR
    return Path(output_dir) if output_dir else RESULTS_DIR / spec.name


def plan_records(spec: SweepSpec, output_dir=None) -> list[tuple[str, Run, dict | None]]:
    """(status, run, record or None) for every run the sweep knows now: the grid, then the seeds of
    finished groups; each record is read once."""
    runs_dir = study_folder(spec, output_dir) / "runs"
    grid = expand(spec)
    runs = extended_grid(spec, grid, runs_dir) + seed_runs(spec, grid, runs_dir)
    return [(record_status(runs_dir, r, rec), r, rec) for r in runs for rec in [read_record(runs_dir, r)]]


def no_success_groups(spec: SweepSpec, output_dir=None) -> list[str]:
    """select_then_seeds groups whose grid runs all finished and all failed (they get no seeds)."""
    grid = expand(spec)
    return [describe_group(spec, k) for k in seed_plan(spec, grid, study_folder(spec, output_dir) / "runs")[1]]


def plan(spec: SweepSpec, output_dir=None) -> list[tuple[str, Run]]:
    """(status, run) for every run the sweep knows now: the grid, then the seeds of finished groups."""
    return [(status, run) for status, run, _ in plan_records(spec, output_dir)]


def describe_plan(spec: SweepSpec, output_dir=None) -> str:
    rows = plan(spec, output_dir)
    folder = study_folder(spec, output_dir)
    lines = [f"sweep {spec.name} ({spec.mode}): records in {folder / 'runs'}"]
    reuse = {run.run_id: found[0] for status, run in rows if status == "todo"
             for found in [reuse_source(spec, run, folder)] if found}
    lines += [f"  {status:<6} {run.stage:<5} {run.run_id}" + (f"  (to be copied from {reuse[run.run_id]})"
                                                              if run.run_id in reuse else "") for status, run in rows]
    if spec.extend_steps:
        lines.append(f"extend_edges (where the validation winner per {', '.join(spec.extend_by)} sits on the edge of "
                     f"its lr grid, up to {spec.extend_steps} lr(s) past it): "
                     f"{sum(run.stage == 'edge' for _, run in rows)} runs so far")
    if spec.select_by:
        n_seed = sum(run.stage == "seeds" for _, run in rows)
        waiting = any(s == "todo" for s, r in rows if r.stage != "seeds")
        budget = (f"; also the best within {spec.budget_percent:g}% of the base per task"
                  if spec.budget_percent is not None else "")
        budget += "".join(f"; seeds {seeds} where {where}" for where, seeds in spec.seeds_for)
        lines.append(f"select_then_seeds (best per {', '.join(spec.select_by)} on validation{budget}, "
                     f"seeds {spec.seeds}): "
                     + f"{n_seed} runs" + (" so far; each group's seeds are planned once its grid runs finish"
                                           if waiting else ""))
        lines += [f"  no successful grid run for {g}: its seeds are skipped"
                  for g in no_success_groups(spec, output_dir)]
    bad = invalid_records(folder / "runs")
    lines += [f"  invalid record (excluded; its run is rerun): {path}: {reason}" for path, reason in bad]
    counts = {s: sum(st == s for st, _ in rows) for s in ("ok", "failed", "todo")}
    lines.append(f"{len(rows)} runs: {counts['ok']} done, {counts['failed']} failed, {counts['todo']} to run"
                 + (f" ({len(reuse)} of them to be copied from {', '.join(spec.reuse)})" if reuse else ""))
    return "\n".join(lines)
