"""Run records -> tidy tables and plots: the numbers of the reproduction, recomputed every time.

    df = load_study("glue_cpu")        # one row per run record in data/results/glue_cpu/runs
    select_best(df)                    # per (task, policy, size): the setting chosen on validation
    glue_table(df)                     # Table 1 analog: methods x tasks, GLUE dev means over seeds
    size_curve(df); init_curve(df)     # Figs 3/4 and Fig 6 (right) analogs, tidy
    write_tables("glue_cpu")           # data/results/glue_cpu/tables/*.csv (`python -m adapterlib aggregate`)

Model selection uses only `val_score`, the score on the held-out slice of train at the epoch
chosen on that same slice. The GLUE dev scores (`dev_score`) are reported, never compared.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import INIT_SCHEMES, method_of_policy
from ..data import task_label
from ..data import task_order as _task_order
from ..errors import AdapterlibError, OutputWriteError
from ..params import storage_multiple, stored_params
from ..paths import RESULTS_DIR, replacing
from ..record import RunRecord
from ..records import accelerator, load_records
from ..vocab import BUDGET_PERCENT, CURVE, TABLE1, label  # noqa: F401 (BUDGET_PERCENT: as before)
from .bootstrap import _epoch_by_epoch, glue_gap, twin_differences, twin_summary  # noqa: F401 (moved there)
from .selection import SETTING_BUT_LR, _choose, glue_selection, lr_edge, select_best  # noqa: F401

COLUMNS = ["run_id", "status", "task", "policy", "adapter_size", "top_k", "init_std", "lr", "epochs", "seed",
           "max_train_examples", "head_input", "train_pooler", "mixed_precision", "patience", "metric", "val_score",
           "dev_score", "selected_epoch", "epochs_run", "stopped_early", "trainable",
           "percent_of_base", "percent_of_base_no_embedding", "frozen", "base", "wall_s", "s_per_step",
           "config_key", "error"]
# Recipe settings every run record's config has (RunRecord gives older records their value then), kept in the
# records frame beside COLUMNS but not written to runs.csv.
RECIPE_FIELDS = ("val_fraction", "batch_size", "max_length")
# TrainConfig fields added with `method`, and the value of each in every record made before them
METHOD_FIELDS = {"method": None, "nonlinearity": "gelu", "train_layernorm": None, "lora_r": None, "prefix_length": None}
FLOAT_FORMAT = "%.6g"  # every CSV number: 6 significant digits, so the output is byte-for-byte reproducible


def study_dir(name_or_path) -> Path:
    """A study folder: an existing path as given, else data/results/<name> in this repository."""
    path = Path(name_or_path).expanduser()
    return path if path.exists() else RESULTS_DIR / str(name_or_path)


def runs_dir(name_or_path) -> Path:
    """Where a study's records are: <study>/runs, or the folder itself if it holds records directly."""
    folder = study_dir(name_or_path)
    return folder / "runs" if (folder / "runs").is_dir() else folder


def config_key(config: dict) -> str:
    """Identity of a setting across seeds: a hash of the config without its seed (and without the fields added
    with `method` while they have the value every earlier record implicitly had, so old and new records of one
    setting share a key)."""
    rest = {k: v for k, v in config.items() if k != "seed"
            and not (k in METHOD_FIELDS and (v == METHOD_FIELDS[k] or k == "method"
                                               and v == method_of_policy(config.get("policy", "adapter"))))}
    return hashlib.sha1(json.dumps(rest, sort_keys=True, default=str).encode()).hexdigest()[:10]


def record_row(rec: RunRecord | dict) -> dict:
    """The flat row of one record (api or papermill mode, ok or failed; RunRecord applied the legacy defaults)."""
    rec = rec if isinstance(rec, RunRecord) else RunRecord.from_json(rec, check=False)
    cfg = rec.config if rec.mode == "api" else rec.parameters or {}
    res = rec.results or {}
    policy, params, timing = rec.policy, rec.params, rec.timing
    adapter = policy in ("adapter", "pfeiffer")
    std = cfg.get("init_std")
    if std is None and adapter:
        std = INIT_SCHEMES.get(cfg.get("init", "houlsby"), {}).get("std")
    row = {
        "run_id": rec.run_id, "status": rec.status, "task": rec.task, "policy": policy,
        "adapter_size": cfg.get("adapter_size") if adapter else None,
        "top_k": cfg.get("top_k") if policy == "top_k" else None, "init_std": std if adapter else None,
        "lr": cfg.get("lr"), "epochs": cfg.get("epochs"), "seed": cfg.get("seed", rec.seed),
        "max_train_examples": cfg.get("max_train_examples"),
        "head_input": cfg.get("head_input"), "train_pooler": bool(cfg.get("train_pooler")),
        "mixed_precision": cfg.get("mixed_precision"), "patience": cfg.get("patience"), "metric": rec.metric,
        "val_score": rec.selected.get(f"validation_{rec.metric}", res.get("val_score")),
        "dev_score": rec.dev_score, "selected_epoch": rec.selected.get("epoch"),
        "epochs_run": timing.epochs_run, "stopped_early": bool(timing.stopped_early),
        "trainable": params.trainable, "percent_of_base": params.percent_of_base,
        # the paper's convention (of the base without embeddings); only meaningful when the embeddings stay frozen:
        # full fine-tuning trains them, and its "% without embeddings" would exceed 100
        "percent_of_base_no_embedding": params.percent_of_base_no_embedding if policy != "full" else None,
        "frozen": params.frozen, "base": params.base, "wall_s": timing.wall_s, "s_per_step": timing.s_per_step,
        "config_key": config_key(rec.recorded("config") or rec.recorded("parameters") or {}), "error": rec.error,
        # the rest of the recipe, for describing a study (course.study_recipe); not in the runs table
        **{k: cfg.get(k) for k in RECIPE_FIELDS}, "machine": machine_name(rec),
        "method": rec.method, **{k: cfg.get(k) for k in METHOD_FIELDS if k != "method"},
    }
    if rec.results is not None:  # papermill mode: keep every scalar the notebook recorded
        row.update({f"result_{k}": v for k, v in res.items() if isinstance(v, (int, float, str, bool))})
    return row


def records_frame(records: list[dict]) -> pd.DataFrame:
    """One row per record with COLUMNS (numbers as floats, NaN where not applicable), sorted by run_id."""
    df = pd.DataFrame([record_row(r) for r in records], columns=None if records else COLUMNS)
    numeric = ["adapter_size", "top_k", "init_std", "lr", "epochs", "seed", "max_train_examples", "patience",
               "val_score", "dev_score", "selected_epoch", "epochs_run", "trainable", "percent_of_base",
               "percent_of_base_no_embedding", "frozen", "base", "wall_s",
               "s_per_step"]
    df[numeric] = df[numeric].apply(pd.to_numeric, errors="coerce").astype(float)
    return df.sort_values("run_id", ignore_index=True)


def _load(name_or_path, bad: list | None = None) -> list[RunRecord]:
    """The study's valid records; garbled or invalid ones are appended to `bad` as (path, reason)."""
    folder = runs_dir(name_or_path)
    bad = [] if bad is None else bad
    records = load_records(folder, bad) if folder.is_dir() else []
    if not records:
        raise FileNotFoundError(f"no run records (valid *.json with a run_id) in {folder}"
                                + (f" ({len(bad)} invalid, e.g. {bad[0][0]}: {bad[0][1]})" if bad else "")
                                + "; run the sweep first (python -m adapterlib sweep sweeps/<file>.yaml) "
                                "or pass a folder of records")
    return records


def load_study(name_or_path) -> pd.DataFrame:
    """Every valid run record of a study (a name under data/results/, or a folder) as one DataFrame.

    Invalid records (adapterlib.records.record_problem) are left out: `df.attrs["excluded"]` lists
    them as (path, reason).
    """
    bad: list = []
    df = records_frame(_load(name_or_path, bad))
    df.attrs["excluded"] = bad
    return df


def machine_name(record: dict) -> str:
    """Where a run trained, in words: its GPU, else "CPU (N cores)", with the CPU's name and whether it has native
    bf16 where the record says (records from before those fields: "CPU (N cores)")."""
    if accelerator(record):
        return accelerator(record)
    m = record.get("machine") or {}
    bf16 = {True: ", native bf16", False: ", no native bf16"}.get(m.get("cpu_bf16_native"), "")
    return f"CPU ({m['cpu_name'] + ', ' if m.get('cpu_name') else ''}{m.get('cpu_count', '?')} cores{bf16})"


def twin_setting(task: str, policy: str, adapter_size, lr: float) -> str:
    """A `twin_pairs` setting in words: "CoLA adapters m=256, lr 0.0006"."""
    size = "" if pd.isna(adapter_size) else f" m={adapter_size:.0f}"
    return f"{task_label(task)} {label(policy)}{size}, lr {lr:g}"


def twin_pairs(study, reference) -> pd.DataFrame:
    """Each ok run trained in `study` (not copied there, `reused_from`) next to its twin in `reference`: the
    record with the same run id, so the same settings and seed. The twin may be a copy that `reference` took
    from an earlier study (glue_v2's seed-0 runs are pilot_v2's); its record still says where it trained. A copy
    of the study's own run is no twin. One row per run id: the setting (and `twin_setting`'s name for it), both
    machines, both runs' dev score, (best) validation score and epochs run, and epoch by epoch over the epochs
    both ran (`same_epochs`): the largest difference of training loss and the mean difference of validation
    score (study - reference)."""
    def ok(name) -> list:
        return [r for r in _load(name) if r.status == "ok"]
    mine = {r.run_id: r for r in ok(study) if not r.reused_from}
    own = {study_dir(study).name}
    theirs = {r.run_id: r for r in ok(reference) if (r.reused_from or {}).get("study") not in own}
    rows = []
    for run_id in sorted(set(mine) & set(theirs)):
        a, b = record_row(mine[run_id]), record_row(theirs[run_id])
        rows.append({"run_id": run_id, **{k: a[k] for k in ("task", "policy", "adapter_size", "lr", "seed")},
                     "setting": twin_setting(a["task"], a["policy"], a["adapter_size"], a["lr"]),
                     "machine": machine_name(mine[run_id]), "reference_machine": machine_name(theirs[run_id]),
                     **{f"{side}{k}": row[k] for k in ("dev_score", "val_score", "epochs_run")
                        for side, row in (("", a), ("reference_", b))},
                     **_epoch_by_epoch(mine[run_id], theirs[run_id])})
    return pd.DataFrame(rows, columns=None if rows else ["run_id", "task", "policy", "adapter_size", "lr", "seed"])


def write_twin_tables(pairs: pd.DataFrame, diffs: pd.DataFrame, out_dir) -> dict[str, Path]:
    """`pairs` (from `twin_pairs`) and `diffs` (its `twin_differences`) as CSV files in `out_dir`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {"twin_pairs": out_dir / "twin_pairs.csv", "twin_differences": out_dir / "twin_differences.csv"}
    for table, stem in ((pairs, "twin_pairs"), (diffs, "twin_differences")):
        with replacing(written[stem]) as tmp:   # a failed write leaves the old table, never half of one
            table.to_csv(tmp, index=False, float_format=FLOAT_FORMAT)
    return written


def glue_table(df: pd.DataFrame, value: str = "dev_mean") -> pd.DataFrame:
    """Table 1 analog: methods x tasks of `value` (dev_mean; or dev_sem, dev_best_of_seeds, val_mean, n_seeds,
    lr, adapter_size), indexed by method key (adapterlib.vocab.TABLE1, in its order; vocab.display_labels names them).

    "average" is the mean over tasks (for dev_sem: the s.e.m. of that mean, NaN unless every task has
    2 seeds or more); it is NaN unless the method has every task. Parameter columns: trainable_per_task (mean over
    tasks), params_per_task_percent (of the base model), params_per_task_percent_no_embedding (of the base without
    embeddings: the paper's convention, its "3.6%" and "2.1%"), total_params_multiple = (frozen + sum over tasks
    of trainable) / base, i.e. the storage for all n_tasks relative to one pre-trained model.
    """
    long = glue_selection(df)
    if long.empty:
        return pd.DataFrame()
    tasks = _task_order(long["task"])
    wide = long.pivot(index="method", columns="task", values=value).reindex(columns=tasks)
    wide = wide.reindex([k for k in TABLE1 if k in set(long["method"])])
    complete = wide.notna().all(axis=1)
    if value == "dev_sem":  # NaN when a task has one seed (no s.e.m.): a sum without it would look too precise
        wide["average"] = np.sqrt((wide[tasks] ** 2).sum(axis=1, min_count=len(tasks))) / len(tasks)
    elif value in ("dev_mean", "val_mean", "dev_best_of_seeds"):
        wide["average"] = wide[tasks].mean(axis=1)
    else:
        wide["average"] = np.nan
    wide.loc[~complete, "average"] = np.nan
    by_method = long.groupby("method")
    wide["trainable_per_task"] = by_method["trainable"].mean().round()
    wide["params_per_task_percent"] = by_method["percent_of_base"].mean()
    wide["params_per_task_percent_no_embedding"] = by_method["percent_of_base_no_embedding"].mean()
    groups = [by_method.get_group(m) for m in wide.index]  # the frozen parameters once + every task's own
    wide["total_params_multiple"] = [
        storage_multiple(stored_params(g["frozen"].mean(), g["trainable"]), g["base"].mean()) for g in groups]
    wide["n_tasks"] = by_method["task"].nunique()
    wide.columns = [task_label(c) if c in tasks else c for c in wide.columns]
    wide.columns.name = None
    return wide


def size_curve(df: pd.DataFrame) -> pd.DataFrame:
    """Figs 3/4 analog: per task and method (`method`: the policy's key, adapterlib.vocab.CURVE), dev score vs
    trainable parameters (best lr on validation)."""
    runs = df[df["policy"].isin(["adapter", "top_k", "layernorm", "full", "head"])]
    chosen = select_best(runs, by=("task", "policy", "adapter_size", "top_k"))
    if chosen.empty:
        return chosen
    chosen.insert(1, "method", chosen["policy"])
    order = {p: i for i, p in enumerate(CURVE)}
    chosen["_t"], chosen["_p"] = chosen["task"].map({t: i for i, t in enumerate(_task_order(chosen["task"]))}), \
        chosen["policy"].map(order)
    return chosen.sort_values(["_t", "_p", "trainable"]).drop(columns=["_t", "_p"]).reset_index(drop=True)


def init_curve(df: pd.DataFrame) -> pd.DataFrame:
    """Fig 6 (right) analog: per task, dev score vs the adapters' initialisation std."""
    chosen = select_best(df[df["policy"] == "adapter"], by=("task", "init_std"))
    if chosen.empty:
        return chosen
    chosen["_t"] = chosen["task"].map({t: i for i, t in enumerate(_task_order(chosen["task"]))})
    return chosen.sort_values(["_t", "init_std"]).drop(columns="_t").reset_index(drop=True)


def study_summary(df: pd.DataFrame, records: list[dict], excluded: int = 0) -> pd.DataFrame:
    """Key/value provenance of a study, from its records: counts, total run time, machine, versions;
    `excluded_records` (invalid record files left out) when there are any."""
    machines = sorted({json.dumps(r.get("machine"), sort_keys=True) for r in records if r.get("machine")})
    versions = sorted({json.dumps(r.get("versions"), sort_keys=True) for r in records if r.get("versions")})
    commits = sorted({(r.get("git") or {}).get("commit") or "" for r in records} - {""})
    created = sorted(r["created"] for r in records if r.get("created"))
    items = [("runs", len(df)), ("ok", int((df["status"] == "ok").sum())),
             ("failed", int((df["status"] == "failed").sum())), ("total_run_wall_s", df["wall_s"].sum()),
             ("total_run_wall_h", df["wall_s"].sum() / 3600), ("first_created", created[0] if created else ""),
             ("last_created", created[-1] if created else ""), ("machines", " | ".join(machines)),
             ("versions", " | ".join(versions)), ("git_commits", " ".join(commits))]
    if excluded:
        items.insert(3, ("excluded_records", excluded))
    return pd.DataFrame([(k, FLOAT_FORMAT % v if isinstance(v, float) else str(v)) for k, v in items],
                        columns=["key", "value"])


RUN_COLUMNS = [c for c in COLUMNS if c not in ("config_key",)]


def build_tables(df: pd.DataFrame, records: list[dict], excluded: int = 0) -> dict[str, pd.DataFrame]:
    """Every table that applies to a study, by file stem: runs, best (lr and epochs chosen on
    validation for each task, policy, size, k, init std, head input, pooler training and precision) and
    summary always; glue_* when there
    are full and adapter runs; size_curve with top-k or LayerNorm-only runs; init_curve when
    adapter runs differ in init std."""
    best = select_best(df, by=("task", "policy", "adapter_size", "top_k", "init_std", "head_input", "train_pooler",
                               "mixed_precision"))
    tables = {"runs": df[RUN_COLUMNS], "best": best, "summary": study_summary(df, records, excluded)}
    policies = set(df.loc[df["status"] == "ok", "policy"])
    if {"full", "adapter"} <= policies:
        tables["glue_selection"] = glue_selection(df)
        for value in ("dev_mean", "dev_sem", "dev_best_of_seeds", "val_mean", "n_seeds"):
            tables[f"glue_table_{value}"] = glue_table(df, value).reset_index(names="method")
        gap = glue_gap(df)
        if not gap.empty:
            tables["glue_gap"] = gap
    if policies & {"top_k", "layernorm"}:
        tables["size_curve"] = size_curve(df)
    if df.loc[df["policy"] == "adapter", "init_std"].nunique() > 1:
        tables["init_curve"] = init_curve(df)
    return tables


MANIFEST = ".aggregate-manifest.json"  # in the out dir: the files aggregate wrote there, with their sha256


class OutDirError(AdapterlibError, ValueError):
    """aggregate would overwrite a file it did not write; nothing was written."""


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read_manifest(out: Path) -> dict[str, str]:
    """name -> sha256 of the files a previous aggregate wrote in `out` ({} without a readable manifest)."""
    try:
        data = json.loads((out / MANIFEST).read_text())
        ours = isinstance(data, dict) and data.get("written_by") == "adapterlib aggregate"
        files = data.get("files") if ours else None
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in files.items() if isinstance(k, str) and "/" not in k and isinstance(v, str)} \
        if isinstance(files, dict) else {}


def write_tables(name_or_path, out_dir=None, plots: bool = False, excluded: list | None = None) -> dict[str, Path]:
    """Recompute a study's tables from its records into <study>/tables/*.csv (or `out_dir`).

    Deterministic: rows sorted, numbers written with FLOAT_FORMAT, so the committed tables can be
    checked against a fresh aggregation byte for byte. Only files aggregate can prove it wrote are
    replaced or removed: `out_dir/.aggregate-manifest.json` lists them with their sha256; a table it
    no longer produces is removed only if it is listed there and unchanged since. In an explicit
    `out_dir`, an existing file of a table's name that the manifest does not list is never
    overwritten (OutDirError, before anything is written); the study's own tables/ folder may hold
    tables from before manifests, which are replaced. Invalid records are left out and appended to
    `excluded` as (path, reason); summary.csv counts them.
    """
    bad: list = []
    records = _load(name_or_path, bad)
    if excluded is not None:
        excluded.extend(bad)
    df = records_frame(records)
    default = study_dir(name_or_path) / "tables"
    out = Path(out_dir) if out_dir else default
    if out.exists() and not out.is_dir():
        raise OutDirError(f"--out-dir {out} is a file, not a folder")
    tables = build_tables(df, records, len(bad))
    owned = _read_manifest(out)
    names = [f"{stem}.csv" for stem in tables]
    if plots:
        names += [f"{stem}.png" for stem in ("size_curve", "init_curve") if stem in tables and not tables[stem].empty]
    legacy = out.resolve() == default.resolve()  # the study's own tables folder, from before manifests
    for name in names:
        if (out / name).exists() and name not in owned and not legacy:
            raise OutDirError(f"refusing to overwrite {out / name}: aggregate did not write it (not in "
                              f"{out / MANIFEST}); choose an empty --out-dir")
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    try:  # every file to a temp file first, then all renamed: a failed write (a full disk) leaves the old tables
        with contextlib.ExitStack() as stack:
            for stem, table in tables.items():
                written[stem] = out / f"{stem}.csv"
                tmp = stack.enter_context(replacing(written[stem]))
                table.to_csv(tmp, index=False, float_format=FLOAT_FORMAT, lineterminator="\n")
            if plots:
                written.update(_write_plots(tables, out, stack))
    except OSError as e:  # a full disk, a folder made read-only: one line naming the folder
        raise OutputWriteError(f"could not write the tables to {out}: {type(e).__name__}: {e}; "
                               "the tables there are as they were") from e
    ours = {p.name for p in written.values()}
    for name, digest in owned.items():  # stale: written by an earlier aggregate, not produced now
        stale = out / name
        if name not in ours and stale.is_file() and _sha256(stale) == digest:
            stale.unlink()
    from ..records import write_json_atomic
    write_json_atomic(out / MANIFEST, {"written_by": "adapterlib aggregate", "version": 1,
                                       "files": {p.name: _sha256(p) for p in sorted(written.values())}})
    return written


def _write_plots(tables: dict, out: Path, stack: contextlib.ExitStack) -> dict[str, Path]:
    import matplotlib
    import matplotlib.pyplot as plt

    from ..plots import plot_init_curve, plot_size_curve

    matplotlib.use("Agg")
    written = {}
    for stem, plot in (("size_curve", plot_size_curve), ("init_curve", plot_init_curve)):
        if stem in tables and not tables[stem].empty:
            axes = plot(tables[stem])
            fig = (axes[0] if isinstance(axes, list) else axes).figure
            written[f"{stem}_png"] = out / f"{stem}.png"
            fig.savefig(stack.enter_context(replacing(written[f"{stem}_png"])), dpi=90, bbox_inches="tight",
                        format="png")
            plt.close(fig)
    return written
