"""Learning curves drawn as runs train (adapterlib.course.live): the callback sees each validation as it
happens, the figure draws exactly the run's history, and the selection table says which step was kept."""
import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

import adapterlib as al
from adapterlib.course.live import LiveCurves, selection_table
from adapterlib.course.shared import train_once
from adapterlib.errors import UsageError


def cfg(tiny_model_dir, tiny_glue_dir, **kw):
    base = dict(task="sst2", model=str(tiny_model_dir), glue_dir=str(tiny_glue_dir), batch_size=8, epochs=2,
                lr=1e-2, max_length=32, max_train_examples=100, eval_every=5)
    return al.TrainConfig(**{**base, **kw})


def test_on_eval_sees_every_validation_as_it_happens(tiny_model_dir, tiny_glue_dir, tmp_path):
    seen = []
    record = al.train(cfg(tiny_model_dir, tiny_glue_dir), output_dir=tmp_path, progress=False,
                      on_eval=lambda history: seen.append(list(history)))
    assert [len(h) for h in seen] == list(range(1, len(record["history"]) + 1))  # one call per validation
    assert seen[-1] == record["history"] and [h["step"] for h in record["history"]] == [5, 10, 15, 20, 25, 26]


def test_on_eval_must_be_callable(tiny_model_dir, tiny_glue_dir):
    with pytest.raises(UsageError):
        al.train(cfg(tiny_model_dir, tiny_glue_dir), progress=False, on_eval="plot")


def test_curves_draw_the_history_live_and_then_from_the_record(tiny_model_dir, tiny_glue_dir, tmp_path):
    curves = LiveCurves("accuracy", show=False)
    config = cfg(tiny_model_dir, tiny_glue_dir, patience=1)
    drawn = []  # what the score panel shows after each validation
    callback = curves.on_eval("adapters", "adapter")

    def watch(history):
        callback(history)
        drawn.append(list(curves.axes[1].lines[0].get_ydata()))

    record = train_once(config, folder=tmp_path, progress=False, quiet=True, on_eval=watch)
    curves.add_record("adapters", record)
    scores = [h["validation_accuracy"] for h in record["history"]]
    assert drawn == [scores[:i] for i in range(1, len(scores) + 1)]
    line, ring = curves.axes[1].lines[:2]
    assert list(line.get_xdata()) == [h["step"] for h in record["history"]]
    assert list(ring.get_xdata()) == [record["selected"]["step"]]
    # a reused run (read from its record, no training) draws the same curve
    again = LiveCurves("accuracy", show=False)
    reused = train_once(config, folder=tmp_path, progress=False, quiet=True,
                        on_eval=lambda h: pytest.fail("a reused run does not train"))
    assert reused["reused"] is True
    again.add_record("adapters", reused)
    assert np.array_equal(again.axes[1].lines[0].get_ydata(), line.get_ydata())

    table = selection_table(curves.records)
    row = table.loc["adapters"]
    assert row["kept step"] == record["selected"]["step"] and row["validations"] == len(record["history"])
    assert row["stopped early"] == record["timing"]["stopped_early"]
    assert row["kept validation_accuracy"] == max(scores)
    assert row["dev accuracy"] == record["dev_score"]


def test_a_run_asked_for_twice_at_once_trains_once(tiny_model_dir, tiny_glue_dir, tmp_path):
    """Two kernels asking train_once for the same run at the same time: the second waits, then reads the record."""
    import threading

    config = cfg(tiny_model_dir, tiny_glue_dir, epochs=1)
    inside, go, results, trained = threading.Event(), threading.Event(), {}, []

    def first_on_eval(history):
        trained.append("first")
        inside.set()
        go.wait(timeout=60)

    def call(name, on_eval):
        results[name] = train_once(config, folder=tmp_path, progress=False, quiet=True, on_eval=on_eval)

    a = threading.Thread(target=call, args=("first", first_on_eval))
    a.start()
    assert inside.wait(timeout=120)  # the first is training, inside its lock
    b = threading.Thread(target=call, args=("second", lambda h: trained.append("second")))
    b.start()
    b.join(timeout=1.0)
    assert b.is_alive()  # waiting on the lock, not training beside the first
    go.set()
    a.join(timeout=120)
    b.join(timeout=120)
    assert "second" not in trained
    assert results["first"]["reused"] is False and results["second"]["reused"] is True
    assert results["second"]["run_id"] == results["first"]["run_id"]
