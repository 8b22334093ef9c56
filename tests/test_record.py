"""RunRecord: every committed record reads and writes back unchanged; legacy defaults are applied once, on read."""
import json
from pathlib import Path

import pytest

from adapterlib.paths import RESULTS_DIR
from adapterlib.record import Machine, RecordError, RunRecord, Timing, as_record
from adapterlib.records import RECORD_SCHEMA, load_records, read_record_file

COMMITTED = sorted(RESULTS_DIR.glob("*/runs/*.json"))


def old_record(**extra) -> dict:
    """A record as the first studies wrote it: no head_input, train_pooler, patience, method, schema, ..."""
    return {"run_id": "rte-adapter-x", "status": "ok", "task": "rte", "policy": "adapter",
            "config": {"task": "rte", "policy": "adapter", "adapter_size": 64, "lr": 1e-3, "seed": 0, "epochs": 3},
            "metric": "accuracy", "selected": {"epoch": 2, "step": 10, "validation_accuracy": 60.0},
            "dev_score": 55.0, "params": {"trainable": 10, "frozen": 90, "base": 90, "total": 100,
                                          "percent_of_base": 11.1, "percent_of_base_no_embedding": 20.0},
            "timing": {"wall_s": 12.5, "epochs_run": 3}, "machine": {"cpu_count": 2, "torch_threads": 1}, **extra}


def test_every_committed_record_round_trips_byte_for_byte():
    assert len(COMMITTED) > 100
    bad: list = []
    read = [r for folder in sorted({p.parent for p in COMMITTED}) for r in load_records(folder, bad)]
    assert bad == [] and len(read) == len(COMMITTED)
    for rec in read:
        assert isinstance(rec, RunRecord) and rec.schema_version == RECORD_SCHEMA
        assert json.dumps(rec.to_json(), indent=2) == Path(rec.source).read_text(), rec.source
        assert RunRecord.from_json(rec.to_json()) == rec


def test_legacy_defaults_are_applied_on_read_and_never_written():
    raw = old_record()
    rec = RunRecord.from_json(raw)
    assert rec.config["head_input"] == "pooler" and rec.config["train_pooler"] is False
    assert rec.config["method"] == rec.method == "houlsby" and rec.config["mixed_precision"] == "no"
    assert rec.config["val_fraction"] == 0.1 and rec.config["batch_size"] == 32 and rec.config["max_length"] == 128
    assert rec.seed == 0 and rec.mode == "api" and rec.timing.stopped_early is False and rec.machine.gpu is None
    assert rec.to_json() == raw and list(rec.to_json()) == list(raw)
    assert rec.recorded("config") == raw["config"]


def test_a_changed_value_is_written_and_the_rest_kept():
    rec = RunRecord.from_json(old_record(extra_key={"kept": [1, 2]}))
    rec.timing.wall_s = 99.0
    rec.machine.gpu = "H100"
    rec.reused_from = {"study": "s", "sha256": "0" * 64}
    out = rec.to_json()
    assert out["timing"] == {"wall_s": 99.0, "epochs_run": 3}
    assert out["machine"] == {"cpu_count": 2, "torch_threads": 1, "gpu": "H100"}
    assert out["reused_from"] == {"study": "s", "sha256": "0" * 64} and out["extra_key"] == {"kept": [1, 2]}
    assert "head_input" not in out["config"] and "stopped_early" not in out["timing"]


def test_nested_parts_are_typed():
    rec = RunRecord.from_json(old_record())
    assert isinstance(rec.timing, Timing) and rec.timing.wall_s == 12.5
    assert isinstance(rec.machine, Machine) and rec.machine.torch_threads == 1
    assert rec.params.trainable == 10 and rec.params.percent_of_base_no_embedding == 20.0


@pytest.mark.parametrize("change, bad_key", [
    ({"timing": {"wall_s": "12 s"}}, "timing.wall_s"),
    ({"machine": ["cpu"]}, "machine"),
    ({"history": [{"step": "one"}]}, "history[0].step"),
    ({"config": {"task": "rte", "policy": "adapter", "lr": "fast"}}, "config.lr"),
    ({"schema": RECORD_SCHEMA + 1}, "schema"),
])
def test_a_nested_field_of_the_wrong_type_is_refused(change, bad_key, tmp_path):
    raw = {**old_record(), **change}
    with pytest.raises(RecordError, match=bad_key.replace("[", r"\[").replace("]", r"\]")):
        RunRecord.from_json(raw)
    path = tmp_path / "rte-adapter-x.json"
    path.write_text(json.dumps(raw))
    rec, reason = read_record_file(path)
    assert rec is None and bad_key in reason


def test_an_unreadable_file_is_one_line(tmp_path):
    path = tmp_path / "rte-adapter-x.json"
    path.write_text("{not json")
    with pytest.raises(RecordError) as info:
        RunRecord.from_json(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_a_record_reads_as_a_mapping_of_its_json():
    rec = RunRecord.from_json(old_record())
    assert rec["dev_score"] == 55.0 and rec.get("timing") == {"wall_s": 12.5, "epochs_run": 3}
    assert "reused" not in rec and "error" not in rec
    rec.reused = True
    assert rec["reused"] is True and "reused" not in rec.to_json()
    assert as_record(rec) is rec and as_record(old_record()) == rec


def test_the_typed_parts_are_the_validated_ones():
    """Timing, Machine and Params have exactly the fields records.NESTED checks, so no typed field goes unchecked."""
    import dataclasses

    from adapterlib.record import Params
    from adapterlib.records import NESTED
    for part, cls in (("timing", Timing), ("machine", Machine), ("params", Params)):
        assert {f.name for f in dataclasses.fields(cls)} - {"extra"} == set(NESTED[part]), part


@pytest.mark.parametrize("raw", [
    {"run_id": "x", "status": "ok", "mode": "papermill", "parameters": {"task": "rte"},
     "results": {"dev_score": 50.0, "trainable": 3, "metric": "acc"}},
    {"run_id": "x", "status": "failed", "mode": "papermill", "parameters": {}, "error": "boom", "config": [1, 2]},
    {"run_id": "x", "status": "failed", "task": "rte", "policy": "full", "config": {"policy": "full"}, "error": "boom",
     "timing": {"wall_s": None}},
])
def test_papermill_and_failed_records_round_trip(raw):
    rec = RunRecord.from_json(raw)
    assert rec.to_json() == raw and isinstance(rec.config, dict)
    if rec.mode == "papermill" and rec.status == "ok":  # a notebook's scores, where the readers look for them
        assert (rec.task, rec.metric, rec.dev_score, rec.params.trainable) == ("rte", "acc", 50.0, 3)
