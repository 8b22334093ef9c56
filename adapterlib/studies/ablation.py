"""Layer-span ablation (paper Fig. 6 left/centre): remove trained adapters at inference.

Take a model with trained adapters, switch off the adapters of every contiguous span of
layers first..last (no retraining), and score the task each time:

    df = span_ablation(model, tokenizer, "sst2")   # one row per span, plus "none removed"
    adapterlib.plots.plot_span_heatmap(df)         # first layer x last layer, score colour

The paper (BERT-base, size 64) finds that removing one layer's adapters costs at most 2%,
that the lower layers' adapters matter least, and that removing all of them falls to the
majority class. The data are tokenised and batched once; each span is one forward pass
over the same batches.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..data import get_task, load_glue, tokenize_glue
from ..errors import UsageError
from ..inject import adapter_slots, adapters_removed


def spans(n_layers: int) -> list[tuple[int, int]]:
    """Every contiguous span (first, last) of layers 0..n_layers-1, first <= last."""
    return [(first, last) for first in range(n_layers) for last in range(first, n_layers)]


def _span_name(first: int, last: int) -> str:
    return str(first) if first == last else f"{first}-{last}"


def span_ablation(model, tokenizer, task, split: str = "dev", glue_dir=None, max_examples: int | None = None,
                  progress: bool = False, max_length: int = 128, batch_size: int = 128) -> pd.DataFrame:
    """Score `model` with its adapters removed from every contiguous span of layers.

    Returns one row per span plus a first row with nothing removed. Columns:
    removed ("none", "3", "0-5"), first / last (layer indices; <NA> for "none"),
    n_removed (layers), metric (name of the task's primary metric), score (its value, %),
    drop (score with nothing removed minus this score, in points), then every metric the
    task reports and the mean loss. The span 0..L-1 is "all adapters removed".
    """
    spec = get_task(task)
    from ..train import evaluate, make_loader  # here, not at the top: reading a study (load_study) needs no trainer

    layers = sorted({i for i, _, _ in adapter_slots(model)})
    if not layers:
        raise UsageError("the model has no adapters to remove; call adapterlib.add_adapters or load_adapter first")
    ds = load_glue(spec, glue_dir, splits=[split])
    if max_examples:
        ds[split] = ds[split].select(range(min(max_examples, len(ds[split]))))
    data = tokenize_glue(ds, tokenizer, max_length=max_length)[split]
    batches = list(make_loader(data, tokenizer, batch_size, shuffle=False))  # collate once, reuse for every span

    n_layers = max(layers) + 1
    rows = [{"removed": "none", "first": None, "last": None, "n_removed": 0,
             **evaluate(model, batches, spec, desc="none removed")}]
    todo = spans(n_layers)
    for k, (first, last) in enumerate(todo, 1):
        with adapters_removed(model, range(first, last + 1)):
            scores = evaluate(model, batches, spec, desc=f"removed {first}-{last}")
        rows.append({"removed": _span_name(first, last), "first": first, "last": last,
                     "n_removed": last - first + 1, **scores})
        if progress:
            print(f"\r{k}/{len(todo)} spans scored", end="" if k < len(todo) else "\n", flush=True)

    df = pd.DataFrame(rows)
    df[["first", "last"]] = df[["first", "last"]].astype("Int64")
    df.insert(4, "metric", spec.metric)
    df.insert(5, "score", df[spec.metric])
    df.insert(6, "drop", df["score"].iloc[0] - df["score"])
    df.attrs.update(task=spec.display, split=split, metric=spec.metric, n_examples=len(data), n_layers=n_layers)
    return df


def span_matrix(df: pd.DataFrame, value: str = "score") -> np.ndarray:
    """`value` as an (L, L) array indexed [first, last]; NaN where last < first."""
    spans_only = df[df["n_removed"] > 0]
    n = int(spans_only["last"].max()) + 1
    grid = np.full((n, n), np.nan)
    for first, last, v in zip(spans_only["first"], spans_only["last"], spans_only[value], strict=True):
        grid[int(first), int(last)] = v
    return grid


def _span_score(df: pd.DataFrame, first: int, last: int) -> float:
    return float(df.loc[(df["first"] == first) & (df["last"] == last), "score"].iloc[0])


def layer_drops(df: pd.DataFrame, value: str = "score") -> pd.Series:
    """Points lost per layer when only that layer's adapters are removed: `value` with nothing removed
    minus `value` with layer i's adapters removed (index: layer). `value`: "score" (the task's metric)
    or any metric column of the ablation, e.g. "accuracy"."""
    single = df[df["n_removed"] == 1].set_index("first")[value]
    drops = float(df[value].iloc[0]) - single
    drops.index = drops.index.astype(int)
    drops.name = f"drop ({df['metric'].iloc[0] if value == 'score' else value}, points)"
    return drops


def span_summary(df: pd.DataFrame) -> dict:
    """Headline numbers of an ablation: nothing removed, all removed, each half removed, single layers."""
    single = df[df["n_removed"] == 1].set_index("first")["score"]
    base = float(df["score"].iloc[0])
    top = int(df["last"].max())
    half = (top + 1) // 2
    return {"metric": df["metric"].iloc[0], "none_removed": base, "all_removed": _span_score(df, 0, top),
            "lower_half_removed": _span_score(df, 0, half - 1), "upper_half_removed": _span_score(df, half, top),
            "halves": (f"0-{half - 1}", f"{half}-{top}"),
            "single_layer_scores": {int(i): float(s) for i, s in single.items()},
            "max_single_layer_drop": float((base - single).max()),
            "least_important_layer": int((base - single).idxmin()),
            "most_important_layer": int((base - single).idxmax())}


def load_study(folder) -> dict:
    """A stored layer-ablation study: {task: (span table, run record)} from `folder`.

    `folder` is a sweep's results folder (data/results/ablation_cpu): its run records are in runs/,
    the span tables that `sweeps/layer_ablation.py` wrote in layer_ablation/layer_ablation_<task>.csv
    (one row per span, a run_id column naming the record). Empty dict when there are none yet.
    """

    from ..record import RunRecord

    folder = Path(folder)
    study = {}
    for path in sorted((folder / "layer_ablation").glob("layer_ablation_*.csv")):
        table = pd.read_csv(path)
        for col in ("first", "last"):
            table[col] = table[col].astype("Int64")
        spec = get_task(path.stem.removeprefix("layer_ablation_"))
        record_path = folder / "runs" / f"{table['run_id'].iloc[0]}.json"
        record = RunRecord.from_json(record_path) if record_path.is_file() else None
        table.attrs.update(task=spec.display, split="dev", metric=spec.metric, n_layers=int(table["last"].max()) + 1)
        study[spec.name] = (table, record)
    return study

