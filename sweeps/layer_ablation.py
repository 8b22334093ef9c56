"""Fig. 6 left/centre analog: layer-span ablation of the adapters trained by a sweep.

For every run record in a study that kept its adapter checkpoint (sweeps/ablation_cpu.yaml has
`save_checkpoint: true`), load the base model and the checkpoint, remove the adapters from every
contiguous span of layers at inference (no retraining) and score the GLUE dev set, at the run's own
max_length and under its own precision (a bf16 run is scored under bf16 autocast, as `train` scored it),
so the "nothing removed" score is the record's dev score; the script prints both. Writes
<study>/layer_ablation/layer_ablation_<task>.csv and a heat map PNG next to it.

    python sweeps/layer_ablation.py data/results/ablation_cpu
"""
from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from adapterlib import load_adapter, load_base_model  # noqa: E402
from adapterlib.data import get_task  # noqa: E402
from adapterlib.paths import replacing  # noqa: E402
from adapterlib.plots import plot_span_heatmap  # noqa: E402
from adapterlib.records import load_records  # noqa: E402
from adapterlib.studies.ablation import span_ablation  # noqa: E402

AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}


def scored_as_trained(config: dict):
    """The autocast the run's own evaluation ran under (none for full precision)."""
    dtype = AUTOCAST.get(config.get("mixed_precision") or "no")
    return torch.autocast("cpu", dtype=dtype) if dtype else contextlib.nullcontext()


def save_heatmap(df, spec, out: Path) -> None:
    fig, ax = plt.subplots(figsize=(4.5, 4.0))
    plot_span_heatmap(df, ax=ax)
    ax.set_title(f"{spec.display} dev {spec.metric}:\nadapters removed from layers first..last", fontsize=10)
    fig.tight_layout()
    with replacing(out / f"layer_ablation_{spec.name}.png") as tmp:   # atomically: the old plot or the new one
        fig.savefig(tmp, dpi=80, format="png")
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study", help="study folder, e.g. data/results/ablation_cpu")
    parser.add_argument("--glue-dir", help="GLUE data folder (default: $GLUE_DIR)")
    parser.add_argument("--replot", action="store_true",
                        help="only redraw the heat maps from the CSVs already there (no checkpoints needed)")
    args = parser.parse_args(argv)
    study = Path(args.study)
    out = study / "layer_ablation"  # not tables/: those are only what `aggregate` writes
    if args.replot:
        import pandas as pd
        for csv in sorted(out.glob("layer_ablation_*.csv")):
            save_heatmap(pd.read_csv(csv), get_task(csv.stem.removeprefix("layer_ablation_")), out)
        return 0
    out.mkdir(parents=True, exist_ok=True)
    for record in load_records(study / "runs"):
        ckpt = study / "runs" / str(record.get("checkpoint", ""))
        if record.get("status") != "ok" or not record.get("checkpoint") or not ckpt.is_dir():
            continue
        spec = get_task(record["task"])
        model, tokenizer = load_base_model(record["config"]["model"], num_labels=spec.num_labels)
        load_adapter(model, ckpt)
        cfg = record["config"]
        with scored_as_trained(cfg):
            df = span_ablation(model, tokenizer, spec, split="dev", glue_dir=args.glue_dir or cfg["glue_dir"],
                               max_length=cfg.get("max_length") or 128)
        df.insert(0, "run_id", record["run_id"])
        with replacing(out / f"layer_ablation_{spec.name}.csv") as tmp:   # atomically: the old table or the new one
            df.to_csv(tmp, index=False, float_format="%.4f")
        save_heatmap(df, spec, out)
        print(f"{spec.display}: {len(df)} rows -> {out / f'layer_ablation_{spec.name}.csv'}; nothing removed: dev "
              f"{spec.metric} {df['score'].iloc[0]:.2f} "
              f"(the run record's dev score: {record.get('dev_score', float('nan')):.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
