"""adapterlib.metrics against values computed by hand on fixed inputs, plus degenerate cases.

F1, MCC, Pearson and Spearman are symmetric in (predictions, labels), so a swap cannot show in their values;
what is asymmetric is checked instead: F1 is the positive class's (not the negative class's), logits and
(n, 1) regression outputs are accepted as predictions only, and Spearman differs from Pearson.
"""
import math

import numpy as np
import pytest

from adapterlib.metrics import compute_metrics, majority_baseline, primary_metric

GOLD = [0, 1, 1, 0, 1, 1, 0, 1, 0, 0]
PRED = [0, 1, 0, 0, 1, 1, 1, 1, 0, 1]
# confusion of PRED against GOLD (positive class 1): TP 4, FN 1, FP 2, TN 3
TP, FN, FP, TN = 4, 1, 2, 3


def test_cola_mcc_and_accuracy_by_hand():
    m = compute_metrics("cola", PRED, GOLD)
    assert set(m) == {"mcc", "accuracy"}
    # (TP*TN - FP*FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)) = (12 - 2) / sqrt(6*5*5*4)
    assert m["mcc"] == pytest.approx(100 * 10 / math.sqrt(600)) == pytest.approx(40.8248290)
    assert m["accuracy"] == pytest.approx(70.0)
    assert all(type(v) is float for v in m.values())


@pytest.mark.parametrize("task", ["mrpc", "qqp", "MRPC"])
def test_f1_is_the_positive_class_by_hand(task):
    m = compute_metrics(task, np.array(PRED), np.array(GOLD))
    assert set(m) == {"f1", "accuracy"}
    assert m["f1"] == pytest.approx(100 * 2 * TP / (2 * TP + FP + FN)) == pytest.approx(800 / 11)
    assert m["accuracy"] == pytest.approx(70.0)
    # the negative class's F1 (2*3 / (2*3 + 1 + 2) = 66.7) is a different number: relabelling must change it
    flipped = compute_metrics(task, 1 - np.array(PRED), 1 - np.array(GOLD))
    assert flipped["f1"] == pytest.approx(100 * 6 / 9) and flipped["accuracy"] == pytest.approx(70.0)


def test_logits_are_accepted_as_predictions_only():
    logits = np.eye(2)[PRED] * 3.0                       # (10, 2), argmax == PRED
    assert compute_metrics("mrpc", logits, GOLD)["f1"] == pytest.approx(800 / 11)
    with pytest.raises(ValueError, match="20 labels"):   # swapped: the logits would be read as 20 labels
        compute_metrics("mrpc", GOLD, logits)


@pytest.mark.parametrize("task", ["sst2", "rte", "qnli", "wnli", "mnli"])
def test_accuracy_tasks(task):
    assert compute_metrics(task, PRED, GOLD) == {"accuracy": pytest.approx(70.0)}


def test_mnli_three_classes_and_logits_are_argmaxed():
    gold = [0, 1, 2, 2]
    logits = np.array([[3, 0, 0], [0, 2, 1], [0, 1, 0], [0, 0, 5]], dtype=float)
    assert compute_metrics("mnli", logits, gold)["accuracy"] == pytest.approx(75.0)


def test_stsb_spearman_and_pearson_by_hand():
    gold = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    pred = np.array([0.1, 3.0, 2.0, 50.0, 4.0])          # ranks 1 3 2 5 4: one outlier, so the two differ
    m = compute_metrics("STS-B", pred, gold)
    assert set(m) == {"spearman", "pearson"}
    # Spearman: 1 - 6 * sum(d^2) / (n (n^2 - 1)) = 1 - 6 * 4 / 120
    assert m["spearman"] == pytest.approx(80.0)
    # Pearson: sum(dx dy) / sqrt(sum dx^2 sum dy^2) = 54.8 / sqrt(10 * 1830.448)
    assert m["pearson"] == pytest.approx(100 * 54.8 / math.sqrt(10 * 1830.448)) == pytest.approx(40.504368)
    assert compute_metrics("stsb", pred.reshape(-1, 1), gold) == m  # (n, 1) regression head output
    with pytest.raises(ValueError, match="1-D"):          # labels are flattened, predictions are not
        compute_metrics("stsb", np.stack([pred, pred], axis=1), gold)


def test_constant_predictions_give_zero_not_nan():
    m = compute_metrics("cola", [1] * 10, GOLD)
    assert m["mcc"] == 0.0 and m["accuracy"] == pytest.approx(50.0)
    s = compute_metrics("stsb", [2.5] * 4, [0.0, 1.0, 4.0, 5.0])
    assert s == {"spearman": 0.0, "pearson": 0.0}
    assert compute_metrics("mrpc", [0] * 10, GOLD)["f1"] == 0.0
    assert not any(math.isnan(v) for v in (*m.values(), *s.values()))


def test_bad_inputs_raise():
    with pytest.raises(ValueError):
        compute_metrics("rte", [0, 1], [0, 1, 1])
    with pytest.raises(ValueError):
        compute_metrics("rte", [], [])
    with pytest.raises(ValueError):
        compute_metrics("nope", [0], [0])


def test_primary_metric():
    assert [primary_metric(t) for t in ("cola", "mrpc", "qqp", "stsb", "sst2", "rte")] == [
        "mcc", "f1", "f1", "spearman", "accuracy", "accuracy"]


def test_majority_baseline():
    b = majority_baseline("mrpc", [1, 1, 1, 0])
    assert b["majority_class"] == 1 and b["accuracy"] == pytest.approx(75.0)
    assert b["all_positive_f1"] == pytest.approx(100 * 6 / 7)  # TP 3, FP 1, FN 0
    tie = majority_baseline("rte", [0, 1])
    assert tie["majority_class"] == 0 and tie["accuracy"] == pytest.approx(50.0)
    assert majority_baseline("cola", [1, 1, 0])["mcc"] == 0.0
    assert majority_baseline("stsb", [1.0, 3.0])["mean_score"] == pytest.approx(2.0)
