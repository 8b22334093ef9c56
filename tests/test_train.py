"""The training engine end to end on a tiny model and toy GLUE files, and the CLI's bad-input lines."""
import json
import math

import pytest
import torch

import adapterlib as al
from adapterlib.cli import main
from adapterlib.train import build_model, run_id

RECORD_KEYS = {"run_id", "status", "task", "policy", "config", "seed", "base_model", "params", "metric", "splits",
               "history", "selected", "dev", "dev_score", "timing", "memory", "versions", "git", "machine",
               "data_source", "created", "path"}


def cfg(tiny_model_dir, tiny_glue_dir, **kw):
    base = dict(task="sst2", model=str(tiny_model_dir), glue_dir=str(tiny_glue_dir), batch_size=8, epochs=2,
                lr=1e-2, max_length=32)
    return al.TrainConfig(**{**base, **kw})


@pytest.mark.parametrize("policy,extra", [("adapter", {}), ("full", {}), ("top_k", {"top_k": 1}),
                                          ("layernorm", {}), ("head", {})])
def test_train_each_policy_record_and_frozen_weights(tiny_model_dir, tiny_glue_dir, tmp_path, policy, extra):
    config = cfg(tiny_model_dir, tiny_glue_dir, policy=policy, adapter_size=4, max_train_examples=100, **extra)
    model0, _ = build_model(config)
    before = {n: p.detach().clone() for n, p in model0.named_parameters()}
    frozen = {n for n, p in model0.named_parameters() if not p.requires_grad}
    record = al.train(config, output_dir=tmp_path, progress=False)
    assert RECORD_KEYS <= set(record)
    saved = json.loads((tmp_path / f"{record['run_id']}.json").read_text())
    assert saved["run_id"] == record["run_id"] == run_id(config)
    assert [h["step"] for h in record["history"]] == [13, 26]        # 100 train examples / 8 -> 13 steps/epoch
    assert record["selected"] in record["history"]
    assert all(math.isfinite(h["train_loss"]) for h in record["history"])
    assert 0 <= record["dev"]["dev"]["accuracy"] <= 100
    assert record["params"]["trainable"] == sum(p.numel() for n, p in model0.named_parameters() if n not in frozen)
    assert record["splits"]["sizes"] == {"train": 100, "validation": 32, "dev": 40}
    assert record["timing"]["s_per_step"] > 0 and record["timing"]["tokens_per_s"] > 0
    if policy in ("adapter", "layernorm", "head"):
        model1, _ = al.load_base_model(str(tiny_model_dir))
        al.load_adapter(model1, tmp_path / record["checkpoint"])
        for n, p in model1.named_parameters():
            if n in frozen:
                assert torch.equal(p, before[n]), f"frozen {n} changed"
        changed = [n for n, p in model1.named_parameters() if n not in frozen and not torch.equal(p, before[n])]
        assert changed, "no trainable parameter changed"


@pytest.mark.slow
def test_training_is_deterministic_and_learns(tiny_model_dir, tiny_glue_dir):
    config = cfg(tiny_model_dir, tiny_glue_dir, policy="full", lr=3e-3, epochs=4)
    a, b = al.train(config, progress=False), al.train(config, progress=False)
    assert a["history"] == b["history"] and a["dev"] == b["dev"]
    assert a["dev"]["dev"]["accuracy"] > 75          # toy signal: "good"/"bad" decides the label


def test_regression_task_and_max_steps(tiny_model_dir, tiny_glue_dir):
    record = al.train(cfg(tiny_model_dir, tiny_glue_dir, task="stsb", max_steps=5, eval_every=2), progress=False)
    assert [h["step"] for h in record["history"]] == [2, 4, 5]
    assert {"spearman", "pearson"} <= set(record["dev"]["dev"]) and record["metric"] == "spearman"


def test_cli_train_and_evaluate(tiny_model_dir, tiny_glue_dir, tmp_path, capsys):
    rc = main(["train", "--task", "rte", "--model", str(tiny_model_dir), "--glue-dir", str(tiny_glue_dir),
               "--adapter-size", "4", "--epochs", "1", "--batch-size", "16", "--max-length", "32",
               "--output-dir", str(tmp_path), "--quiet"])
    out = capsys.readouterr().out
    assert rc == 0 and "record:" in out
    record = json.loads(open(out.split("record: ")[1].strip()).read())
    assert f"; dev accuracy {record['dev']['dev']['accuracy']:.2f}" in out and "dev dev" not in out  # summary line
    rc = main(["evaluate", "--checkpoint", str(tmp_path / record["checkpoint"]), "--glue-dir", str(tiny_glue_dir)])
    scores = json.loads(capsys.readouterr().out)
    assert rc == 0 and scores["accuracy"] == pytest.approx(record["dev"]["dev"]["accuracy"])


@pytest.mark.parametrize("args,message", [
    (["--task", "mnli2"], "unknown GLUE task 'mnli2'; known tasks: cola"),
    (["--task", "rte", "--adapter-size", "0"], "adapter-size must be a positive integer"),
    (["--task", "rte", "--lr=-1e-3"], "lr must be a finite number"),
    (["--task", "rte", "--epochs", "0"], "epochs must be a positive integer"),
    (["--task", "rte", "--glue-dir", "/nonexistent/glue"], "looked for /nonexistent/glue"),
    (["--task", "rte", "--model", "/nonexistent/model"], "model path /nonexistent/model does not exist"),
    (["--task", "rte", "--policy", "bogus"], "unknown policy 'bogus'"),
    (["--task", "rte", "--policy", "top_k"], "needs --top-k"),
])
def test_cli_bad_input_is_one_clear_line(args, message, tiny_glue_dir, capsys, tmp_path):
    if "--glue-dir" not in args:
        args = args + ["--glue-dir", str(tiny_glue_dir)]
    rc = main(["train", *args, "--output-dir", str(tmp_path), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and err.startswith("error: ") and message in err, err


def test_fast_wiring_is_on_by_default_and_can_be_switched_off(tiny_model_dir, tiny_glue_dir):
    """train() uses adapterlib.fast unless fast=False; both learn, the record says which ran, and the
    deterministic parts (no dropout: evaluation of the initial model) agree exactly."""
    config = cfg(tiny_model_dir, tiny_glue_dir, policy="adapter", adapter_size=4, max_train_examples=100)
    fast_model, _ = build_model(config)
    stock_model, _ = build_model(config, fast=False)
    assert any(type(m) is al.fast.ExactDropout for m in fast_model.modules())
    assert fast_model.config._attn_implementation == al.fast.ATTENTION
    assert not any(type(m) is al.fast.ExactDropout for m in stock_model.modules())
    assert stock_model.config._attn_implementation == "sdpa"
    batch = {"input_ids": torch.tensor([[2, 5, 6, 7, 3, 0]]), "attention_mask": torch.tensor([[1, 1, 1, 1, 1, 0]])}
    stock_model.load_state_dict(fast_model.state_dict())  # same weights (the adapters' init is random)
    with torch.no_grad():
        assert torch.equal(fast_model.eval()(**batch).logits, stock_model.eval()(**batch).logits)
    fast_run = al.train(config, progress=False)
    stock_run = al.train(config, progress=False, fast=False)
    assert fast_run["speedups"]["fast_modules"] is True and stock_run["speedups"]["fast_modules"] is False
    # a recorded setting: part of the config and the run id (only dropout's random stream differs)
    assert fast_run["config"]["fast"] is True and stock_run["config"]["fast"] is False
    assert fast_run["run_id"] != stock_run["run_id"]
    for run in (fast_run, stock_run):
        assert all(math.isfinite(h["train_loss"]) for h in run["history"])


def test_train_cli_is_generated_from_train_config():
    import dataclasses

    from adapterlib.cli import build_parser, field_help
    args = build_parser().parse_args(["train", "--task", "rte"])
    fields = dataclasses.fields(al.TrainConfig)
    # method: None until TrainConfig resolves it from the policy; adapter_size: None unless given (cmd_train
    # refuses it for a method without bottleneck adapters even at its default value)
    assert {f.name: getattr(args, f.name) for f in fields} == {**al.TrainConfig().to_dict(), "task": "rte",
                                                                "method": None, "adapter_size": None}
    assert (args.output_dir, args.no_checkpoint, args.threads, args.quiet) == ("runs", False, None, False)  # CLI-only
    helps = field_help(al.TrainConfig)
    assert set(helps) == {f.name for f in fields} and all(helps.values())  # every field documented by its comment
    assert helps["patience"].endswith("(None = run every epoch)")           # continuation lines joined
    parsed = build_parser().parse_args(["train", "--task", "sst2", "--no-fast", "--train-pooler", "--lr", "1e-3",
                                        "--adapter-layers", "0", "2", "--warmup-ratio", "0.2"])
    assert (parsed.fast, parsed.train_pooler, parsed.lr, parsed.adapter_layers, parsed.warmup_ratio) == \
        (False, True, 1e-3, [0, 2], 0.2)


def test_dev_scores_text_names_splits_only_when_several():
    from adapterlib.cli import dev_scores_text

    assert dev_scores_text({"dev": {"accuracy": 85.0, "f1": 88.125, "loss": 0.3}}) == "dev accuracy 85.00, f1 88.12"
    assert dev_scores_text({"dev_matched": {"accuracy": 80.1}, "dev_mismatched": {"accuracy": 80.5}}) == \
        "dev_matched: accuracy 80.10; dev_mismatched: accuracy 80.50"
