"""adapterlib.metrics against scikit-learn / scipy on fixed inputs, plus degenerate cases."""
import math

import numpy as np
import pytest
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from adapterlib.metrics import compute_metrics, majority_baseline, primary_metric

GOLD = [0, 1, 1, 0, 1, 1, 0, 1, 0, 0]
PRED = [0, 1, 0, 0, 1, 1, 1, 1, 0, 1]


def test_cola_mcc_and_accuracy_match_sklearn():
    m = compute_metrics("cola", PRED, GOLD)
    assert set(m) == {"mcc", "accuracy"}
    assert m["mcc"] == pytest.approx(100 * matthews_corrcoef(GOLD, PRED))
    assert m["accuracy"] == pytest.approx(100 * accuracy_score(GOLD, PRED))
    assert all(type(v) is float for v in m.values())


@pytest.mark.parametrize("task", ["mrpc", "qqp", "MRPC"])
def test_f1_tasks(task):
    m = compute_metrics(task, np.array(PRED), np.array(GOLD))
    assert set(m) == {"f1", "accuracy"}
    assert m["f1"] == pytest.approx(100 * f1_score(GOLD, PRED))
    assert m["accuracy"] == pytest.approx(70.0)


@pytest.mark.parametrize("task", ["sst2", "rte", "qnli", "wnli", "mnli"])
def test_accuracy_tasks(task):
    assert compute_metrics(task, PRED, GOLD) == {"accuracy": pytest.approx(70.0)}


def test_mnli_three_classes_and_logits_are_argmaxed():
    gold = [0, 1, 2, 2]
    logits = np.array([[3, 0, 0], [0, 2, 1], [0, 1, 0], [0, 0, 5]], dtype=float)
    assert compute_metrics("mnli", logits, gold)["accuracy"] == pytest.approx(75.0)


def test_stsb_correlations_match_scipy():
    gold = np.array([0.0, 1.2, 2.5, 3.1, 4.8, 5.0, 2.2])
    pred = np.array([0.3, 1.0, 2.9, 2.8, 4.1, 4.9, 1.1])
    m = compute_metrics("STS-B", pred, gold)
    assert set(m) == {"spearman", "pearson"}
    assert m["spearman"] == pytest.approx(100 * spearmanr(pred, gold)[0])
    assert m["pearson"] == pytest.approx(100 * pearsonr(pred, gold)[0])
    assert compute_metrics("stsb", pred.reshape(-1, 1), gold) == m  # (n, 1) regression head output


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
    assert b["all_positive_f1"] == pytest.approx(100 * f1_score([1, 1, 1, 0], [1, 1, 1, 1]))
    tie = majority_baseline("rte", [0, 1])
    assert tie["majority_class"] == 0 and tie["accuracy"] == pytest.approx(50.0)
    assert majority_baseline("cola", [1, 1, 0])["mcc"] == 0.0
    assert majority_baseline("stsb", [1.0, 3.0])["mean_score"] == pytest.approx(2.0)
