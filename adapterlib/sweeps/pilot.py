"""The v2 pilot's decision (sweeps/pilot_v2.yaml), computed from its run records by the rules the sweep
file wrote down before the results were in. Validation scores only; the GLUE dev set is never read here.

    python -m adapterlib pilot            # data/results/pilot_v2
    python -m adapterlib pilot STUDY_DIR

    A  epochs:      keep 20 at most with patience 3 unless a run reached epoch 20 without stopping
    B  head input:  the same for both methods: the input with the better mean validation score over the
                    tasks for adapters and for full fine-tuning; mean pooling if they disagree; training
                    the pooler under adapters only if it beats both
    C  lr x size:   a stage-2 run at the majority class (validation score at its floor) fails its size's grid
    D  precision:   bf16 if both bf16 CoLA runs are within 3 validation points of their fp32 twins, none failing
"""
from __future__ import annotations

import pandas as pd

BF16_TOLERANCE = 3.0     # validation points (about one standard error of MCC on CoLA's 855 sentences)
STAGE1 = {"adapter": 1e-3, "full": 1e-4}   # stage 1's rates: adapters m=64 at 1e-3, full fine-tuning at 1e-4
TASKS = ("cola", "mrpc", "rte")            # stage 1's tasks: B is decided over all of them
STAGE2_RUNS = 4                            # C: m=8 and m=256, two rates each


def _head(row) -> str:
    return "pooler trained" if row["train_pooler"] else str(row["head_input"])


def decide(df: pd.DataFrame, tasks=TASKS, stage2_runs: int = STAGE2_RUNS) -> dict:
    """The four decisions from a records frame (aggregate.records_frame) of the pilot: {"A": ..., "B": ...,
    "C": ..., "D": ...}, each {"decision": str or None (None: evidence missing), "evidence": [lines]}."""
    ok = df[df["status"] == "ok"].copy()
    ok["head"] = ok.apply(_head, axis=1)
    stage1 = ok[(ok["mixed_precision"] == "no") & (ok["adapter_size"].isna() | (ok["adapter_size"] == 64))
                & ok.apply(lambda r: r["lr"] == STAGE1.get(r["policy"]), axis=1)]
    out = {}

    # A: epochs
    full_length = ok[(ok["epochs_run"] >= ok["epochs"]) & ~ok["stopped_early"]]
    out["A"] = {"decision": ("raise the maximum: some runs used every epoch" if len(full_length)
                             else "keep 20 epochs at most, patience 3"),  # reset below while stage 1 is incomplete
                "evidence": [f"{len(ok)} runs; epochs run {int(ok['epochs_run'].min())}..{int(ok['epochs_run'].max())} "
                             f"(median {ok['epochs_run'].median():g}); best epoch {ok['selected_epoch'].min():g}.."
                             f"{ok['selected_epoch'].max():g}; runs that reached their last epoch without stopping: "
                             f"{len(full_length)}"] if len(ok) else []}

    # B: head input, per method: mean validation score over the tasks every variant of that method has run
    best, lines = {}, []
    for policy, heads in (("adapter", ("pooler", "mean", "pooler trained")), ("full", ("pooler", "mean"))):
        runs = stage1[stage1["policy"] == policy]
        done = [t for t in tasks if set(heads) <= set(runs.loc[runs["task"] == t, "head"])]
        if not done:
            lines.append(f"{policy}: no task has all of {', '.join(heads)} yet")
            continue
        means = {h: runs[(runs["head"] == h) & runs["task"].isin(done)]["val_score"].mean() for h in heads}
        todo = ", ".join(t for t in tasks if t not in done)
        lines.append(f"{policy}, mean over {', '.join(done)}: " + ", ".join(f"{h} {v:.1f}" for h, v in means.items())
                     + ("" if len(done) == len(tasks) else f" (still to run: {todo})"))
        if len(done) < len(tasks):
            continue
        best[policy] = max(("pooler", "mean"), key=lambda h: means[h])
        if policy == "adapter" and means["pooler trained"] > max(means["pooler"], means["mean"]):
            best["adapter_trained_pooler_wins"] = True
    if "adapter" in best and "full" in best:
        if best.get("adapter_trained_pooler_wins"):
            decision = "the pooler trained under adapters (it beats both other inputs)"
        elif best["adapter"] == best["full"]:
            decision = f"{best['adapter']} for both methods (both prefer it)"
        else:
            decision = "mean pooling for both methods (the methods disagree; the base was pre-trained with it)"
    else:
        decision = None
    out["B"] = {"decision": decision, "evidence": lines}
    if decision is None and not len(full_length):  # "no run reached its last epoch" needs every stage-1 run
        out["A"]["decision"] = None

    # C: stage 2 lr x size (bf16, mean pooling, not the m=64 / full twins of D)
    stage2 = ok[(ok["mixed_precision"] == "bf16") & (ok["policy"] == "adapter") & (ok["adapter_size"] != 64)]
    lines = [f"m={int(r.adapter_size)} lr {r.lr:g} ({r.task}): validation {r.val_score:.1f}"
             for r in stage2.sort_values(["adapter_size", "lr"]).itertuples()]
    failed = stage2[stage2["val_score"] <= 0.0]  # at the majority class (MCC, F1-free tasks: CoLA in the pilot)
    out["C"] = {"decision": (None if len(stage2) < stage2_runs else
                             "the size-shifted grids stand" if failed.empty else
                             "halve the grid of size(s) "
                             + ", ".join(str(int(m)) for m in sorted(set(failed["adapter_size"])))),
                "evidence": lines}

    # D: bf16 vs fp32 twins (same task, policy, size, lr, head input, seed)
    keys = ["task", "policy", "adapter_size", "lr", "head", "seed"]
    bf, fp = ok[ok["mixed_precision"] == "bf16"], ok[ok["mixed_precision"] == "no"]
    twins = bf.merge(fp, on=keys, suffixes=("_bf16", "_fp32"))
    lines = [f"{r.task} {r.policy}{'' if pd.isna(r.adapter_size) else f' m={int(r.adapter_size)}'} lr {r.lr:g}: "
             f"bf16 {r.val_score_bf16:.1f} vs fp32 {r.val_score_fp32:.1f}; "
             f"{r.wall_s_bf16 / r.epochs_run_bf16 / 60:.2f} vs "
             f"{r.wall_s_fp32 / r.epochs_run_fp32 / 60:.2f} min per epoch"
             for r in twins.itertuples()]
    if len(twins) < 2:
        decision = None
    elif ((twins["val_score_bf16"] - twins["val_score_fp32"]).abs() <= BF16_TOLERANCE).all() \
            and (twins["val_score_bf16"] > 0).all():
        decision = "bf16"
    else:
        decision = "fp32 (bf16 trained differently)"
    # the speed half of D holds only on hardware like the one that measured it (records' `machine`)
    machines = sorted(set(twins["machine_bf16"]) | set(twins["machine_fp32"])) if "machine_bf16" in twins else []
    if machines:
        lines.append(f"measured on: {'; '.join(machines)} (bf16 pays only where the hardware computes it natively: "
                     "AVX512-BF16 or AMX on a CPU; python -m adapterlib train refuses it elsewhere)")
    out["D"] = {"decision": decision, "evidence": lines, "machines": machines}
    return out


def decision_text(decisions: dict) -> str:
    names = {"A": "epochs", "B": "head input", "C": "lr x size", "D": "precision"}
    lines = []
    for key, d in decisions.items():
        lines.append(f"{key}. {names[key]}: {d['decision'] or 'not decided yet (its runs have not all finished)'}")
        lines += [f"   - {e}" for e in d["evidence"]]
    return "\n".join(lines)
