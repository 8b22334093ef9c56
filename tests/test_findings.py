"""Findings text generated from run records (adapterlib.course.findings), on hand-made records."""
from adapterlib.course.findings import study_setup


def record(**config):
    cfg = {"adapter_size": 64, "epochs": 3, "lr": 1e-3, "seed": 0, "head_input": "pooler", "train_pooler": False,
           "val_fraction": 0.1, "max_train_examples": None, "patience": None, **config}
    return {"config": cfg, "splits": {"sizes": {"train": 7696}}, "timing": {"epochs_run": 3}, "selected": {"epoch": 3.0}}


def test_study_setup_says_what_each_run_trained_from_its_record():
    v1 = study_setup({"cola": (None, record())})
    assert ("CoLA: adapters of size 64 trained on all of train.tsv (7,696 sentences after the 10% validation "
            "hold-out), 3 epochs, lr 0.001, seed 0; the classifier reads [CLS] through the frozen, untrained pooler") in v1
    v2 = record(epochs=20, patience=3, head_input="mean", val_fraction=0.03, max_train_examples=8000)
    v2.update(timing={"epochs_run": 11}, selected={"epoch": 8.0})
    text = study_setup({"sst2": (None, v2)})
    assert "a seeded 7,696-example subset of train.tsv" in text and "head input mean" in text
    assert "11 of at most 20 epochs (early stopping; validation chose epoch 8)" in text
    assert "after the 3% validation hold-out" in study_setup({"cola": (None, record(val_fraction=0.03))})


def test_size_findings_say_how_many_seeds_and_lrs_each_point_had():
    from adapterlib.course.findings import size_study_findings
    from adapterlib.sweeps.aggregate import load_study, size_curve
    one = size_study_findings(size_curve(load_study("size_cpu")))            # v1: one lr per method, one seed
    assert one[0].startswith("- **CoLA** (dev mcc, one seed, lr fixed per method)")
    assert "at the one learning rate per method and the one seed of this study" in one[0]
    glue = load_study("glue_cpu")                                             # 3 lrs per point, 3 seeds chosen
    many = size_study_findings(size_curve(glue[glue["task"] == "cola"]))
    assert many[0].startswith("- **CoLA** (dev mcc, mean of 3 seeds, the best of up to 3 lrs per point on validation)")
