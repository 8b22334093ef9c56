"""Findings text generated from run records (adapterlib.course.findings), on hand-made records."""
import pytest

from adapterlib.course.findings import study_setup


def record(**config):
    cfg = {"adapter_size": 64, "epochs": 3, "lr": 1e-3, "seed": 0, "head_input": "pooler", "train_pooler": False,
           "val_fraction": 0.1, "max_train_examples": None, "patience": None, **config}
    return {"config": cfg, "splits": {"sizes": {"train": 7696}}, "timing": {"epochs_run": 3},
            "selected": {"epoch": 3.0}}


def test_study_setup_says_what_each_run_trained_from_its_record():
    v1 = study_setup({"cola": (None, record())})
    assert v1.startswith("- CoLA: adapters") and "size 64" in v1 and "(7,696 sentences" in v1 and "10% validation" in v1
    assert "3 epochs, lr 0.001, seed 0;" in v1 and "[CLS] through" in v1 and "untrained pooler" in v1
    v2 = record(epochs=20, patience=3, head_input="mean", val_fraction=0.03, max_train_examples=8000)
    v2.update(timing={"epochs_run": 11}, selected={"epoch": 8.0})
    text = study_setup({"sst2": (None, v2)})
    assert "seeded 7,696-example subset" in text
    assert "last hidden states" in text and "(no pooler" in text   # head_input mean
    assert "autocast" not in text
    assert "seed 0, bf16 autocast; " in study_setup({"cola": (None, record(mixed_precision="bf16"))})
    assert "11 of" in text and "20 epochs" in text and "chose epoch 8)" in text   # early stopping, from the record
    assert "3% validation hold-out" in study_setup({"cola": (None, record(val_fraction=0.03))})


@pytest.mark.committed
def test_size_findings_say_how_many_seeds_and_lrs_each_point_had():
    from adapterlib.course.findings import size_study_findings
    from adapterlib.sweeps.aggregate import load_study, size_curve
    one = size_study_findings(size_curve(load_study("size_cpu")))            # v1: one lr per method, one seed
    assert one[0].startswith("- **CoLA** (dev mcc,") and "one seed," in one[0]
    assert "one learning rate" in one[0] and "one seed of" in one[0]
    glue = load_study("glue_cpu")                                             # 3 lrs per point, 3 seeds chosen
    many = size_study_findings(size_curve(glue[glue["task"] == "cola"]))
    assert many[0].startswith("- **CoLA** (dev mcc,") and "3 seeds," in many[0] and "3 lrs per point" in many[0]


@pytest.mark.committed
def test_size_findings_say_when_every_point_beats_the_majority_class():
    """issue 14: size_v2 tunes each point's lr so that no point is a recipe failure; the findings say whether
    that held (size_cpu: CoLA's m=1, top-1 and LayerNorm-only stayed at the majority class)."""
    from adapterlib.course.findings import size_study_findings
    from adapterlib.sweeps.aggregate import load_study, size_curve
    v1 = size_study_findings(size_curve(load_study("size_cpu")))
    assert "not above" in v1[0] and "majority-class score (0.0)" in v1[0] and "every point" not in v1[0]
    curve = size_curve(load_study("size_v2"))
    v2 = size_study_findings(curve)
    cola = curve[curve["task"] == "cola"]
    low = cola.loc[cola["dev_mean"].idxmin()]
    assert low["policy"] == "top_k" and low["dev_mean"] > 5.0                 # top-1: the lowest, yet above 0.0
    assert "every point" in v2[0] and f"(k = {low['top_k']:g}) by {low['dev_mean']:.1f} points" in v2[0]
    assert all("not above" not in line for line in v2)


@pytest.mark.committed
def test_init_study_findings_with_seeds_give_the_sem_and_the_study_name():
    from adapterlib.course.findings import init_findings
    from adapterlib.sweeps.aggregate import init_curve, load_study
    curve = init_curve(load_study("init_cpu"))
    drift = {1e-3: 0.001, 1e-2: 0.1, 1.0: 50.0}
    from adapterlib.paths import RESULTS_DIR
    from adapterlib.records import load_records
    rec = next(r for r in load_records(RESULTS_DIR / "init_cpu" / "runs") if r["task"] == "cola")
    text = init_findings([rec], [1e-3], drift, curve, {"cola": 0.0, "sst2": 50.9})
    assert "(`init_cpu`): CoLA (mcc, lr 0.001)" in text and "±" not in text   # one seed
    three = curve.assign(dev_sem=1.25, n_seeds=3)
    text = init_findings([rec], [1e-3], drift, three, {"cola": 0.0, "sst2": 50.9}, study="init_v2")
    assert "(`init_v2`, mean of 3 seeds" in text and "± s.e.m.): CoLA (mcc, lr 0.001)" in text
    assert text.count("± 1.2 at") == 4   # the two stds above the robust range, on both tasks
    assert "one seed" not in text
    cola_small = (three["task"] == "cola") & (three["init_std"] == 1e-4)
    hidden = three.assign(dev_mean=three["dev_mean"].where(~cola_small, 20.0),
                          dev_min=three["dev_mean"].where(~cola_small, 0.0))   # CoLA floor: MCC 0
    text = init_findings([rec], [1e-3], drift, hidden, {"cola": 0.0, "sst2": 50.9}, study="init_v2")
    assert "std 1e-4 the mean" in text and "one seed stays" in text
    small = three[three["init_std"] <= 1e-2]  # a study (so far) without stds above the robust range
    text = init_findings([rec], [1e-3], drift, small, {"cola": 0.0, "sst2": 50.9}, study="init_v2")
    assert "; ;" not in text and "stds 1e-7 … 1e-2; every std" in text and "(50.9)" in text


def test_fit_text_reads_the_kept_epoch_under_early_stopping():
    from adapterlib.course.findings import fit_text

    def run(loss_at, chosen, last, patience=3):
        rec = record(epochs=20, patience=patience)
        rec.update(task="cola", selected={"epoch": float(chosen)},
                   history=[{"epoch": float(e), "train_loss": loss_at(e)} for e in range(1, last + 1)])
        return rec

    one = fit_text([run(lambda e: 0.7 - 0.05 * e, chosen=4, last=7)])
    assert "(epoch 4; stopped after 7" in one and "20) is 0.500" in one   # the kept epoch's loss, not the last's 0.35
    assert "somewhat" in one   # it fit the training set somewhat
    two = fit_text([run(lambda e: 0.62, chosen=1, last=4), run(lambda e: 0.60, chosen=2, last=5)])
    assert two.startswith("averaged over 2 seeds,") and "(epoch 1-2; stopped after 4-5" in two and "0.610" in two
    assert "did not fit" in two   # CoLA's class-frequency loss is 0.608 (bundled train.tsv)
    fixed = fit_text([run(lambda e: 0.5, chosen=2, last=3, patience=None)])
    assert fixed.startswith("training loss after 3 epoch(s)") and fixed.split(" is ")[1].startswith("0.500")


@pytest.mark.committed
def test_study_recipe_is_read_from_the_records():
    """The recipe a notebook prints beside a stored study: every item from the committed records."""
    import pandas as pd

    from adapterlib.course.recipe import study_recipe
    from adapterlib.sweeps.aggregate import load_study

    glue = study_recipe(load_study("glue_cpu"), "glue_cpu")
    n_ok = int((load_study("glue_cpu")["status"] == "ok").sum())   # the committed records, counted
    assert glue.startswith("**How `glue_cpu` trained**") and f"its {n_ok} finished" in glue.split("\n")[0]
    assert "- **Full fine-tuning**: lr 2e-5, 5e-5, 1e-4.\n" in glue
    assert "- **Adapters**: " + "; ".join(f"m={m}: lr 3e-4, 1e-3, 3e-3" for m in (8, 64, 256)) + ".\n" in glue
    assert "SST-2: a seeded 10% of train.tsv" in glue and "seeded 8,000-example subset" in glue
    assert "- **Seeds**: seeds 0-2; 20 settings" in glue and "with 3 seeds, 40" in glue
    assert "- **Epochs**: 3 epochs;" in glue
    classifier = next(line for line in glue.split("\n") if line.startswith("- **Classifier**"))
    assert classifier.count("[CLS] through") == 2 and "frozen, untrained pooler" in classifier   # both methods
    assert "full precision (fp32); batch 32," in glue and "128 tokens" in glue
    pilot = study_recipe(load_study("pilot_v2"), "pilot_v2")
    assert ("(patience 3)" in pilot and "after 5-15 epochs" in pilot and "up to 20 epochs" in pilot
            and "bf16 autocast and full precision (fp32)" in pilot and "m=8: lr 3e-3, 0.01;" in pilot)
    # an lr only some tasks have (one added past the edge of a grid) names them; pilot_v2 ran m=64 at 1e-3 on
    # CoLA, MRPC and RTE; dropping RTE's leaves 1e-3 to the other two
    runs = load_study("pilot_v2")
    cut = runs[~((runs["task"] == "rte") & (runs["policy"] == "full"))]
    assert "lr 1e-4 (1e-4 on" not in study_recipe(runs)
    grids = study_recipe(pd.concat([cut, runs[(runs["task"] == "rte") & (runs["policy"] == "full")].assign(lr=9e-6)]))
    assert "- **Full fine-tuning**: lr 9e-6, 1e-4 (9e-6 on RTE only; 1e-4 on CoLA, MRPC" in grids
    init = study_recipe(load_study("init_cpu"))
    assert "init std 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 0.01, 0.1, 1." in init and "**How the stored" in init
    assert "no finished run" in study_recipe(pd.DataFrame({"status": ["failed"], "task": ["rte"]}))
    assert glue.endswith("\n- **Machine**: CPU (2 cores), every run.")   # where the runs trained, from the records
    mixed = study_recipe(runs.assign(machine=runs["machine"].where(runs["task"] != "rte", "NVIDIA H200")))
    n_rte = int((runs["task"] == "rte").sum())
    assert (f"- **Machines**: CPU (2 cores): {len(runs) - n_rte} runs (CoLA, MRPC); NVIDIA H200: {n_rte} runs (RTE)"
            in mixed)


@pytest.mark.committed
def test_v1_layer_ablation_findings_say_where_and_why_they_contradict_the_paper():
    """issue 15 (notebook 05 showed ablation_cpu until 2026-12-04): v1's CoLA MCC drops (up to 13.9) contradict the
    paper's 2; the findings say so, and why."""
    from adapterlib.course.findings import study_findings
    from adapterlib.paths import RESULTS_DIR
    from adapterlib.studies.ablation import layer_drops, load_study, span_summary
    study = load_study(RESULTS_DIR / "ablation_cpu")
    text = study_findings(study)
    cola = text.split("**CoLA**")[1].split("**SST-2**")[0]
    s = span_summary(study["cola"][0])     # the committed numbers, read from the study
    assert s["max_single_layer_drop"] > 2 and s["lower_half_removed"] == s["upper_half_removed"] == 0.0
    drop, most, least = s["max_single_layer_drop"], s["most_important_layer"], s["least_important_layer"]
    assert f"{drop:.1f} mcc points (layer {most}; least: layer {least})" in cola and "contradicts the paper**" in cola
    accuracy = layer_drops(study["cola"][0], "accuracy").max()    # CoLA's accuracy: within the paper's 2
    assert round(accuracy, 1) <= 2 and f"at most {accuracy:.1f} points" in cola
    assert "**Why MCC contradicts" in cola and "the majority class (0.0)" in cola   # either half alone drops to it
    assert text.split("\n")[-1].startswith("**What may explain") and "MiniLM has 6 layers" in text.split("\n")[-1]

