"""How a stored study trained, in words, read from its run records: the recipe a notebook prints beside
the study's numbers, so no recipe detail is typed in prose and pointing a notebook at another study
(v1 -> v2) changes its description with its numbers.

    runs = adapterlib.sweeps.aggregate.load_study("glue_v2")
    display(Markdown(study_recipe(runs, "glue_v2")))
"""
from __future__ import annotations

import pandas as pd

from .. import vocab
from ..data import get_task

POLICY_ORDER = vocab.CURVE
POLICY_NAMES = {**{k: vocab.label(k) for k in vocab.CURVE}, "head": "the classifier alone"}  # in a sentence


def short_number(v: float) -> str:
    """0.0003 -> '3e-4', 0.0015 -> '1.5e-3', 0.01 -> '0.01', 8 -> '8'."""
    if 0 < abs(v) < 0.01:
        mantissa, exponent = f"{v:e}".split("e")
        return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
    return f"{v:g}"


_number = short_number


def head_text(cfg: dict) -> str:
    """What the classifier of a run with config `cfg` reads, in words."""
    if cfg.get("head_input", "pooler") == "mean":
        return ("the classifier reads the mean of the last hidden states over the real tokens (no pooler; MiniLM "
                "was pre-trained with mean pooling)")
    if cfg.get("train_pooler"):
        return "the classifier reads [CLS] through MiniLM's untrained pooler, which trains with the adapters"
    return "the classifier reads [CLS] through the frozen, untrained pooler"


def _numbers(values) -> str:
    return ", ".join(_number(v) for v in sorted({float(v) for v in values if pd.notna(v)}))


def _ints(values) -> str:
    """Seeds or counts 0, 1, 2, 3, 4 -> '0-4'; 0, 2 -> '0, 2'."""
    xs = sorted({int(v) for v in values if pd.notna(v)})
    if len(xs) > 2 and xs == list(range(xs[0], xs[-1] + 1)):
        return f"{xs[0]}-{xs[-1]}"
    return ", ".join(map(str, xs))


def _span(values) -> str:
    xs = sorted(int(v) for v in values if pd.notna(v))
    return str(xs[0]) if xs[0] == xs[-1] else f"{xs[0]}-{xs[-1]}"


def _col(df: pd.DataFrame, name: str, default=None) -> pd.Series:
    return df[name] if name in df else pd.Series(default, index=df.index)


def _data_line(ok: pd.DataFrame) -> str:
    """Which part of train.tsv each task trained on and how much of it was held out for validation."""
    groups: dict[str, list[str]] = {}
    for task, rows in ok.groupby("task", sort=False):
        subset = _col(rows, "max_train_examples").dropna()
        fraction = _col(rows, "val_fraction", 0.1).dropna()
        held = f"a seeded {_numbers(fraction * 100)}% of train.tsv held out for validation" if len(fraction) else ""
        if len(subset):
            text = f"a seeded {int(subset.iloc[0]):,}-example subset of the rest of train.tsv" if held else \
                f"a seeded {int(subset.iloc[0]):,}-example subset of train.tsv"
        else:
            text = "the rest of train.tsv" if held else "all of train.tsv"
        groups.setdefault(f"{held}, training on {text}" if held else f"training on {text}", []).append(
            get_task(task).display)
    return "; ".join(f"{', '.join(tasks)}: {text}" for text, tasks in groups.items())


def _grid_lines(ok: pd.DataFrame) -> list[tuple[str, str]]:
    """(method, text) per method: the learning rates of each adapter size / k it was trained at."""
    out = []
    for policy in [p for p in POLICY_ORDER if p in set(ok["policy"])] + sorted(set(ok["policy"]) - set(POLICY_ORDER)):
        rows = ok[ok["policy"] == policy]
        key = {"adapter": "adapter_size", "top_k": "top_k"}.get(policy)
        parts = []
        for value, group in (rows.groupby(key, sort=True) if key else [(None, rows)]):
            label = "" if key is None else f"{'m' if key == 'adapter_size' else 'k'}={value:g}"
            per_task = {t: frozenset(g["lr"].round(12)) for t, g in group.groupby("task")}
            common = frozenset.intersection(*per_task.values())
            only = {lr: [get_task(t).display for t, lrs in per_task.items() if lr in lrs]
                    for lr in sorted(frozenset.union(*per_task.values()) - common)}
            # an lr some tasks have and others not (e.g. one added past a grid's edge): name its tasks
            parts.append(f"{label + ': ' if label else ''}lr {_numbers(group['lr'])}"
                         + (" (" + "; ".join(f"{_number(lr)} on {', '.join(ts)} only" for lr, ts in only.items()) + ")"
                            if only else ""))
        stds = _col(rows, "init_std").dropna()
        init = f"; init std {_numbers(stds)}" if stds.nunique() > 1 else ""
        out.append((POLICY_NAMES.get(policy, policy), "; ".join(parts) + init))
    return out


def _seed_line(ok: pd.DataFrame) -> str:
    setting = [c for c in ("task", "policy", "adapter_size", "top_k", "init_std", "lr", "head_input", "train_pooler",
                           "mixed_precision", "max_train_examples") if c in ok]
    counts = ok.fillna({c: -1 for c in setting}).groupby(setting, dropna=False)["seed"].nunique()
    if counts.max() == 1:
        return f"one seed per setting (seed {_ints(ok['seed'])})"
    by_count = counts.value_counts().sort_index(ascending=False)
    return (f"seeds {_ints(ok['seed'])}; "
            + ", ".join(f"{n} setting{'s' if n > 1 else ''} with {k} seed{'s' if k > 1 else ''}"
                        for k, n in by_count.items())
            + " (settings differ in task, method, size, lr or init)")


def _epoch_line(ok: pd.DataFrame) -> str:
    epochs = _col(ok, "epochs").dropna()
    patience = _col(ok, "patience").dropna()
    ran, chosen = _col(ok, "epochs_run").dropna(), _col(ok, "selected_epoch").dropna()
    if len(patience):
        text = (f"up to {_span(epochs)} epochs with early stopping on validation (patience {_span(patience)}); "
                f"runs stopped after {_span(ran)} epochs" if len(ran) else f"up to {_span(epochs)} epochs")
    else:
        text = f"{_span(epochs)} epochs"
    if len(chosen):
        text += f"; each run keeps its epoch with the best validation score (epochs {_span(chosen)} were kept)"
    return text


def _head(policy: str, head_input: str, train_pooler: bool) -> str:
    if head_input != "mean" and policy == "full":  # full fine-tuning trains the pooler with everything else
        return "the classifier reads [CLS] through MiniLM's pooler, untrained at the start, which trains with the model"
    return head_text({"head_input": head_input, "train_pooler": train_pooler})


def _head_lines(ok: pd.DataFrame) -> list[str]:
    """What the classifier reads, said once when every method reads the same, else per method."""
    texts: dict[str, list[str]] = {}
    frame = ok.assign(train_pooler=_col(ok, "train_pooler", False).astype(bool),
                      head_input=_col(ok, "head_input", "pooler").fillna("pooler"))
    for (policy, head_input, train_pooler), _ in frame.groupby(["policy", "head_input", "train_pooler"], sort=False):
        texts.setdefault(_head(policy, head_input, train_pooler), []).append(POLICY_NAMES.get(policy, policy))
    if len(texts) == 1:
        return [f"for every method, {next(iter(texts))}"]
    return [f"{', '.join(dict.fromkeys(methods))}: {text}" for text, methods in texts.items()]


def _precision_line(ok: pd.DataFrame) -> str:
    words = {"no": "full precision (fp32)", "bf16": "bf16 autocast", "fp16": "fp16 autocast"}
    kinds = list(dict.fromkeys(_col(ok, "mixed_precision", "no").fillna("no")))
    return " and ".join(words.get(k, k) for k in kinds)


def _machine_line(ok: pd.DataFrame) -> str | None:
    """Where the runs trained (each record's machine), with the tasks of each when there are several."""
    if "machine" not in ok:
        return None
    machines = list(dict.fromkeys(ok["machine"].dropna()))
    if len(machines) < 2:
        return f"{machines[0]}, every run" if machines else None
    parts = []
    for machine in machines:
        mine = ok[ok["machine"] == machine]
        tasks = ", ".join(get_task(t).display for t in sorted(set(mine["task"])))
        parts.append(f"{machine}: {len(mine)} runs ({tasks})")
    return "; ".join(parts) + (" (what the machine changes in a run's scores: `python sweeps/hardware_check.py`,"
                               " book/reproduction.md, \"Does the machine change the numbers?\")")


def study_recipe(runs: pd.DataFrame, name: str | None = None) -> str:
    """Markdown: how the finished runs of a study (aggregate.load_study's frame) trained: data, learning rates
    per method and size, seeds, epochs, what the classifier reads, precision, batch and length."""
    ok = runs[runs["status"] == "ok"] if "status" in runs else runs
    title = f"`{name}`" if name else "the stored study"
    if ok.empty:
        return f"**How {title} trained**: no finished run records yet."
    batch, length = _col(ok, "batch_size").dropna(), _col(ok, "max_length").dropna()
    lines = [f"**How {title} trained** (read from its {len(ok)} finished run records):",
             f"- **Data**: {_data_line(ok)}; the GLUE dev set is scored, never used to choose.",
             *[f"- **{method[0].upper() + method[1:]}**: {text}." for method, text in _grid_lines(ok)],
             f"- **Seeds**: {_seed_line(ok)}.",
             f"- **Epochs**: {_epoch_line(ok)}.",
             f"- **Classifier**: {'; '.join(_head_lines(ok))}.",
             f"- **Precision**: {_precision_line(ok)}"
             + (f"; batch {_span(batch)}, at most {_span(length)} tokens per example." if len(batch) and len(length)
                else ".")]
    machines = _machine_line(ok)
    if machines:
        lines.append(f"- **Machine{'s' * (';' in machines)}**: {machines}.")
    return "\n".join(lines)
