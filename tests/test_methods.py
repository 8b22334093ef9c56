"""Houlsby's successors under one protocol (issue 29): TrainConfig.method, exact parameter counts, checkpoints,
run ids of earlier records, bad input."""
import json
from pathlib import Path

import pytest
import torch

import adapterlib as al
from adapterlib.checkpoint import load_adapter, save_adapter, trainable_groups
from adapterlib.cli import main
from adapterlib.config import TRAIN_METHODS, TrainConfigError
from adapterlib.errors import UnsupportedModelError
from adapterlib.methods import add_method, trained_summary
from adapterlib.studies.multitask import task_logits
from adapterlib.train import run_id

ROOT = Path(__file__).resolve().parents[1]
NEW = ("pfeiffer", "bitfit", "lora", "ia3", "prefix")
# tiny_config: hidden d = 32, L = 2 layers, intermediate 64, 3 labels below
D, L, FF, LABELS = 32, 2, 64, 3
HEAD = D * LABELS + LABELS


def config(method, **kw):
    return al.TrainConfig(task="mnli", method=method, **{"max_length": 32, **kw})  # the tiny model has 64 positions


def tiny_with(make_tiny, method, seed=0, **kw):
    model = make_tiny(num_labels=LABELS, seed=seed)
    torch.manual_seed(seed + 1)
    return add_method(model, config(method, **kw)).eval()


# ------------------------------------------------------------------ run ids of earlier records

@pytest.mark.committed
@pytest.mark.parametrize("policy", ["adapter", "full", "top_k", "layernorm"])
def test_committed_records_of_every_policy_keep_their_run_ids_and_read_as_their_method(policy):
    files = [f for f in sorted((ROOT / "data" / "results").glob("*/runs/*.json"))
             if f"-{policy}-" in f.name][:5]
    assert files
    for f in files:
        rec = json.loads(f.read_text())
        assert "method" not in rec["config"]  # made before `method` existed
        cfg = al.TrainConfig.from_record(rec["config"])
        assert run_id(cfg) == rec["run_id"], f
        assert cfg.method == {"adapter": "houlsby"}.get(policy, policy)
        assert run_id(al.TrainConfig(**{**rec["config"], "method": cfg.method})) == rec["run_id"]  # said explicitly


@pytest.mark.committed
def test_aggregate_reads_an_old_record_as_its_method_and_keeps_its_config_key():
    from adapterlib.sweeps.aggregate import config_key, record_row
    f = next((ROOT / "data" / "results" / "glue_v2" / "runs").glob("*-adapter-*.json"))
    rec = json.loads(f.read_text())
    row = record_row(rec)
    assert row["method"] == "houlsby" and row["nonlinearity"] == "gelu" and row["train_layernorm"] is None
    new = al.TrainConfig(**rec["config"]).to_dict()  # what a new run of the same setting records
    assert new["method"] == "houlsby" and config_key(new) == config_key(rec["config"])


def test_new_options_enter_the_run_id_only_when_set():
    plain = al.TrainConfig(task="rte")
    assert run_id(al.TrainConfig(task="rte", method="houlsby")) == run_id(plain)
    assert run_id(al.TrainConfig(task="rte", policy="adapter", method="houlsby", nonlinearity="gelu")) == run_id(plain)
    changes = [dict(nonlinearity="swish"), dict(train_layernorm=False), dict(train_layernorm=True),
               *[dict(method=m) for m in NEW], dict(method="lora", lora_r=4), dict(method="prefix", prefix_length=5)]
    ids = {run_id(plain)} | {run_id(al.TrainConfig(task="rte", **c)) for c in changes}
    assert len(ids) == len(changes) + 1
    assert run_id(al.TrainConfig(task="rte", method="lora")).startswith("rte-lora-r8-lr0.0003-s0-")
    assert run_id(al.TrainConfig(task="rte", method="pfeiffer", adapter_size=16)).startswith("rte-pfeiffer-m16-")
    assert run_id(al.TrainConfig(task="rte", nonlinearity="swish", train_layernorm=False)).startswith(
        "rte-adapter-m64-swish-noln-")
    lora = al.TrainConfig(task="rte", method="lora")
    assert (lora.policy, lora.lora_r, lora.to_dict()["method"]) == ("lora", 8, "lora")  # recorded, default resolved


# ------------------------------------------------------------------ what each method trains, counted exactly

def test_param_report_counts_every_method_exactly(make_tiny):
    ln = (2 * L + 1) * 2 * D  # every LayerNorm's weight and bias (two per layer + the embeddings')
    m = 4
    expected = {
        "houlsby": 2 * L * (2 * m * D + D + m) + ln + HEAD,
        "pfeiffer": L * (2 * m * D + D + m) + HEAD,                   # L (2md + d + m)
        "bitfit": L * (3 * D + D + FF + D) + (2 * L + 1) * D + HEAD,  # q k v, attn out, ffn in, ffn out; LN biases
        "lora": L * 2 * 8 * (D + D) + HEAD,                           # r (d_in + d_out) per wrapped Linear (q, v)
        "ia3": L * (D + D + D + FF) + HEAD,                           # key, value outputs; attn-out, ffn-out inputs
        "prefix": 20 * L * 2 * D + HEAD,                              # a key and a value vector per token and layer
        "layernorm": ln + HEAD, "head": HEAD,
    }
    base = None
    for method, trainable in expected.items():
        model = tiny_with(make_tiny, method, **({"adapter_size": m} if method in ("houlsby", "pfeiffer") else {}))
        report = al.param_report(model)
        assert report.trainable == trainable, method
        assert report.trainable == sum(trained_summary(model)["groups"].values())
        assert report.head == HEAD
        base = base or report.base
        assert report.base == base, method  # the pre-trained network, whatever was added to it
        if method in ("lora", "ia3", "prefix", "pfeiffer"):
            assert report.adapter == trainable - HEAD and report.adapter_total == report.adapter
    assert al.adapter_param_formula(D, m, L, per_layer=1) == expected["pfeiffer"] - HEAD


def test_each_method_trains_what_its_authors_train(make_tiny):
    trained = {m: {n for n, p in tiny_with(make_tiny, m).named_parameters() if p.requires_grad} for m in NEW}
    head = {"classifier.weight", "classifier.bias"}
    assert all(head <= names for names in trained.values())
    assert all(n.endswith(".bias") for n in trained["bitfit"] - head)
    assert "bert.pooler.dense.bias" not in trained["bitfit"]
    assert {n.split(".")[-4] for n in trained["lora"] - head} == {"query", "value"}  # peft's BERT defaults
    assert {n.rsplit(".ia3_l", 1)[0].split("layer.0.")[-1] for n in trained["ia3"] - head if "layer.0." in n} == \
        {"attention.self.key", "attention.self.value", "attention.output.dense", "output.dense"}
    assert not any("LayerNorm" in n for m in ("pfeiffer", "lora", "ia3", "prefix") for n in trained[m])
    pfeiffer = tiny_with(make_tiny, "pfeiffer")
    assert [(i, pos) for i, pos, _ in al.adapter_slots(pfeiffer)] == [(i, "ffn") for i in range(L)]


def test_the_implementation_dial(make_tiny):
    """Paper (LayerNorms trained, GELU) against AdapterHub's Houlsby (LayerNorms frozen, swish, std 0.02)."""
    hub = tiny_with(make_tiny, "houlsby", train_layernorm=False, nonlinearity="swish", init_std=0.02)
    assert not any(p.requires_grad for n, p in hub.named_parameters() if "LayerNorm" in n)
    assert all(isinstance(slot.adapter.act, torch.nn.SiLU) for _, _, slot in al.adapter_slots(hub))
    assert hub.adapter_config.std == 0.02
    paper = tiny_with(make_tiny, "houlsby")
    assert all(p.requires_grad for n, p in paper.named_parameters() if "LayerNorm" in n)
    lnp = tiny_with(make_tiny, "pfeiffer", train_layernorm=True)
    assert all(p.requires_grad for n, p in lnp.named_parameters() if "LayerNorm" in n)


def test_prefix_tuning_is_peft_s_own(make_tiny, tiny_batch):
    """Our prefix hook computes exactly what peft's PeftModelForSequenceClassification computes."""
    from peft import PrefixTuningConfig, TaskType, get_peft_model
    ours = tiny_with(make_tiny, "prefix", prefix_length=5)
    with torch.no_grad():
        ours.prefix_encoder.default.embedding.weight.normal_()
    theirs = get_peft_model(make_tiny(num_labels=LABELS), PrefixTuningConfig(task_type=TaskType.SEQ_CLS,
                                                                            num_virtual_tokens=5)).eval()
    theirs.prompt_encoder.default.embedding.weight.data.copy_(ours.prefix_encoder.default.embedding.weight)
    with torch.no_grad():
        assert torch.equal(ours(**tiny_batch).logits, theirs(**tiny_batch).logits)


# ------------------------------------------------------------------ checkpoints

@pytest.mark.parametrize("method", ["houlsby", "pfeiffer", "bitfit", "lora", "ia3", "prefix", "layernorm"])
@pytest.mark.parametrize("head_input", ["pooler", "mean"])
def test_adapter_only_checkpoint_reloads_every_method_exactly(method, head_input, make_tiny, tiny_batch, tmp_path):
    model = make_tiny(num_labels=LABELS)
    al.set_head_input(model, head_input)
    add_method(model, config(method, head_input=head_input))
    with torch.no_grad():  # trained values (LoRA's B and the prefix start at zero or near it)
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.1)
    save_adapter(model, tmp_path / "ckpt", groups=trainable_groups(model), only_trainable=True)
    saved = json.loads((tmp_path / "ckpt" / "adapter_config.json").read_text())
    assert saved["method"] == method
    assert len(saved["tensors"]) == sum(1 for p in model.parameters() if p.requires_grad)  # nothing frozen saved
    fresh = load_adapter(make_tiny(num_labels=LABELS), tmp_path / "ckpt").eval()
    assert torch.equal(task_logits(fresh, tiny_batch), task_logits(model, tiny_batch))
    assert not torch.equal(task_logits(make_tiny(num_labels=LABELS), tiny_batch), task_logits(model, tiny_batch))


def test_a_peft_checkpoint_refuses_a_model_with_other_peft_modules(make_tiny, tmp_path):
    lora = tiny_with(make_tiny, "lora")
    save_adapter(lora, tmp_path / "lora", groups=trainable_groups(lora), only_trainable=True)
    with pytest.raises(al.CheckpointError, match="peft"):
        load_adapter(tiny_with(make_tiny, "lora", lora_r=4), tmp_path / "lora")
    with pytest.raises(al.CheckpointError, match="peft"):
        load_adapter(tiny_with(make_tiny, "ia3"), tmp_path / "lora")


# ------------------------------------------------------------------ train + evaluate, end to end

@pytest.mark.parametrize("method", NEW)
def test_train_records_the_method_and_evaluate_reproduces_it(method, tiny_model_dir, tiny_glue_dir, tmp_path, capsys):
    cfg = al.TrainConfig(task="sst2", method=method, model=str(tiny_model_dir), glue_dir=str(tiny_glue_dir),
                         batch_size=16, epochs=1, lr=1e-2, max_length=32, max_train_examples=64,
                         **({"adapter_size": 4} if method == "pfeiffer" else {}))
    record = al.train(cfg, output_dir=tmp_path, progress=False)
    assert record["config"]["method"] == record["method"] == method and record["policy"] == method
    assert record["versions"]["peft"] == __import__("peft").__version__
    assert record["trained"]["groups"]["head"] == 2 * D + 2
    assert sum(record["trained"]["groups"].values()) == record["params"]["trainable"]
    assert record["checkpoint"] == record["run_id"]
    from safetensors.torch import load_file
    saved = load_file(str(tmp_path / record["checkpoint"] / "adapter_model.safetensors"))
    zero_init = {"lora": "lora_B", "pfeiffer": "adapter.up.weight"}.get(method)
    if zero_init:  # they start at (near) zero; training moved them
        assert any(t.abs().max() > 0.01 for n, t in saved.items() if zero_init in n)
    rc = main(["evaluate", "--checkpoint", str(tmp_path / record["checkpoint"]), "--glue-dir", str(tiny_glue_dir)])
    scores = json.loads(capsys.readouterr().out)
    assert rc == 0 and scores["accuracy"] == record["dev"]["dev"]["accuracy"]
    assert scores["loss"] == pytest.approx(record["dev"]["dev"]["loss"], rel=1e-6)


# ------------------------------------------------------------------ bad input

def test_unknown_method_and_nonsense_combinations_are_refused():
    with pytest.raises(TrainConfigError) as e:
        al.TrainConfig(method="adalora")
    assert all(m in str(e.value) for m in TRAIN_METHODS)
    for kw, names in [(dict(method="lora", adapter_size=16), ("adapter-size", "lora")),
                      (dict(method="houlsby", lora_r=4), ("lora-r", "houlsby")),
                      (dict(method="ia3", nonlinearity="swish"), ("nonlinearity", "ia3")),
                      (dict(method="full", train_layernorm=False), ("train-layernorm", "full")),
                      (dict(method="lora", policy="full"), ("lora", "full")),
                      (dict(method="prefix", prefix_length=0), ("prefix-length",)),
                      (dict(method="lora", top_k=2), ("top-k", "lora")),
                      (dict(method="pfeiffer", top_k=2), ("top-k", "pfeiffer"))]:
        with pytest.raises(TrainConfigError) as e:
            al.TrainConfig(**kw)
        assert all(n in str(e.value) for n in names), (kw, str(e.value))


def test_a_peft_method_on_a_base_peft_cannot_wrap_is_refused(make_tiny):
    for method in ("lora", "ia3"):
        with pytest.raises(UnsupportedModelError, match="distilbert"):
            add_method(make_tiny("distilbert", num_labels=2), config(method))


@pytest.fixture(scope="module")
def distilbert_dir(tmp_path_factory, tiny_model_dir):
    from transformers import AutoModelForSequenceClassification, BertTokenizerFast
    root = tmp_path_factory.mktemp("tiny-distilbert")
    BertTokenizerFast.from_pretrained(str(tiny_model_dir)).save_pretrained(root)
    AutoModelForSequenceClassification.from_config(al.tiny_config("distilbert", vocab_size=64)).save_pretrained(root)
    return root


@pytest.mark.parametrize("args,names", [
    (["--method", "adalora"], ["adalora", *TRAIN_METHODS]),
    (["--method", "lora", "--adapter-size", "64"], ["--adapter-size", "lora"]),   # even at its default value
    (["--method", "bitfit", "--adapter-size", "8"], ["--adapter-size", "bitfit"]),
    (["--method", "houlsby", "--lora-r", "4"], ["--lora-r", "houlsby"]),
    (["--method", "lora", "--no-train-layernorm"], ["train-layernorm", "lora"]),
    (["--method", "ia3", "--policy", "full"], ["ia3", "full"]),
    (["--method", "bitfit", "--top-k", "2"], ["--top-k", "bitfit"]),
    (["--method", "ia3", "--model", "DISTILBERT", "--max-length", "32"], ["ia3", "distilbert"]),
    (["--method", "prefix", "--prefix-length", "500", "--max-length", "32"], ["--prefix-length", "--max-length"]),
    (["--method", "lora", "--model", "DISTILBERT", "--max-length", "32"], ["lora", "distilbert"]),
])
def test_cli_bad_method_input_is_one_line_naming_both(args, names, tiny_glue_dir, distilbert_dir, tmp_path, capsys):
    args = [str(distilbert_dir) if a == "DISTILBERT" else a for a in args]
    rc = main(["train", "--task", "sst2", "--glue-dir", str(tiny_glue_dir), *args, "--output-dir", str(tmp_path),
               "--quiet", "--max-train-examples", "16"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and err.startswith("error: "), err
    assert all(n in err for n in names), err
    assert not list(tmp_path.glob("*.json"))


def test_cli_help_lists_the_methods(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert all(flag in out for flag in ("--method", "--lora-r", "--prefix-length", "--nonlinearity",
                                        "--train-layernorm", "--no-train-layernorm"))
    assert all(m in out for m in NEW)


# ------------------------------------------------------------------ mixed-task batched inference (issue 29, item 4)

MIXED_TASKS = {"sst2": 2, "mnli": 3, "stsb": 1}  # heads of 2, 3 and 1 (regression) outputs


def _task_checkpoints(make_tiny, method, tmp_path):
    """One checkpoint per task, each with its own trained values and label count, on one frozen base."""
    paths = {}
    for i, (task, labels) in enumerate(MIXED_TASKS.items()):
        model = make_tiny(num_labels=labels)
        add_method(model, config(method, **({"adapter_size": 4} if method in ("houlsby", "pfeiffer") else {})))
        torch.manual_seed(10 + i)
        with torch.no_grad():
            for p in model.parameters():
                if p.requires_grad:
                    p.add_(torch.randn_like(p) * 0.2)
        paths[task] = save_adapter(model, tmp_path / task, groups=trainable_groups(model), only_trainable=True)
    return paths


def _examples(n=12, seed=3):
    """n examples of random length, each with its task, in a mixed order."""
    g = torch.Generator().manual_seed(seed)
    tasks = [list(MIXED_TASKS)[i % 3] for i in torch.randperm(n, generator=g).tolist()]
    seqs = [torch.randint(5, 120, (int(torch.randint(3, 14, (1,), generator=g)),), generator=g) for _ in range(n)]
    return tasks, seqs


def _pad(seqs):
    width = max(len(s) for s in seqs)
    ids = torch.zeros(len(seqs), width, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, s in enumerate(seqs):
        ids[i, :len(s)], mask[i, :len(s)] = s, 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}


@pytest.mark.parametrize("method", ["houlsby", "pfeiffer", "bitfit", "lora", "prefix"])
def test_mixed_task_inference_is_bit_identical_to_per_task_inference(method, make_tiny, tmp_path):
    from adapterlib.studies.mixed import MixedTaskModel
    paths = _task_checkpoints(make_tiny, method, tmp_path)
    tasks, seqs = _examples()
    base = make_tiny(num_labels=2)  # the one frozen base, with the method's modules (a bank's model)
    add_method(base, config(method, **({"adapter_size": 4} if method in ("houlsby", "pfeiffer") else {})))
    mixed = MixedTaskModel(base, paths)
    got = mixed(_pad(seqs), tasks)
    for task, labels in MIXED_TASKS.items():  # per-task inference: the base + this task's checkpoint, its own batch
        rows = [i for i, t in enumerate(tasks) if t == task]
        alone = load_adapter(make_tiny(num_labels=labels), paths[task])
        want = task_logits(alone, _pad([seqs[i] for i in rows]))
        assert want.shape == (len(rows), labels)
        for row, i in enumerate(rows):
            assert torch.equal(got[i], want[row]), (method, task, i)
    # and the routing matters: another task's modules give other logits
    other = load_adapter(make_tiny(num_labels=2), paths["sst2"])
    i = tasks.index("mnli")
    assert got[i].shape == (3,) and not torch.equal(task_logits(other, _pad([seqs[i]]))[0], got[i][:2])


def test_mixed_task_inference_throughput_is_measured_not_asserted(make_tiny, tmp_path):
    from adapterlib.studies.mixed import MixedTaskModel, MixedThroughput, mixed_throughput
    paths = _task_checkpoints(make_tiny, "houlsby", tmp_path)
    base = add_method(make_tiny(num_labels=2), config("houlsby", adapter_size=4))
    alone = {t: load_adapter(make_tiny(num_labels=k), paths[t]) for t, k in MIXED_TASKS.items()}
    tasks, seqs = _examples(n=9)
    result = mixed_throughput(MixedTaskModel(base, paths), alone, _pad(seqs), tasks, repeats=2)
    assert isinstance(result, MixedThroughput) and (result.examples, result.tasks) == (9, 3)
    assert result.mixed_s > 0 and result.per_task_s > 0 and result.to_dict()["speedup"] == result.speedup


def test_mixed_task_inference_refuses_what_it_cannot_route(make_tiny, tmp_path):
    from adapterlib.studies.mixed import MixedTaskModel
    paths = _task_checkpoints(make_tiny, "houlsby", tmp_path)
    mixed = MixedTaskModel(add_method(make_tiny(num_labels=2), config("houlsby", adapter_size=4)), paths)
    tasks, seqs = _examples(n=3)
    with pytest.raises(al.AdapterlibError, match="qnli"):
        mixed(_pad(seqs), ["qnli", *tasks[1:]])
    with pytest.raises(al.AdapterlibError, match="lacks"):  # LoRA checkpoints on a base with Houlsby adapters
        MixedTaskModel(add_method(make_tiny(num_labels=2), config("houlsby", adapter_size=4)),
                       _task_checkpoints(make_tiny, "lora", tmp_path / "lora"))


def test_prefix_tuning_refuses_sequences_its_shifted_positions_cannot_hold(make_tiny):
    """The tiny model has 64 positions; prefix tuning moves the tokens to positions 20.. (peft on BERT)."""
    add_method(make_tiny(), config("prefix", max_length=44))
    with pytest.raises(UnsupportedModelError, match="max-length"):
        add_method(make_tiny(), config("prefix", max_length=45))


def test_the_course_reuses_a_stored_run_made_before_method_existed(tmp_path):
    from adapterlib.course.shared import stored_run
    cfg = al.TrainConfig(task="rte", adapter_size=8)
    old = {k: v for k, v in cfg.to_dict().items()
           if k not in ("method", "nonlinearity", "train_layernorm", "lora_r", "prefix_length")}
    record = {"run_id": run_id(cfg), "status": "ok", "task": "rte", "policy": "adapter", "config": old,
              "metric": "accuracy", "selected": {"validation_accuracy": 60.0}, "dev_score": 58.0, "params": {}}
    (tmp_path / f"{run_id(cfg)}.json").write_text(json.dumps(record))
    assert stored_run(cfg, tmp_path)["dev_score"] == 58.0
    assert stored_run(al.TrainConfig(task="rte", adapter_size=8, nonlinearity="swish"), tmp_path) is None


def test_a_sweep_file_names_methods_and_their_options():
    from adapterlib.sweeps.spec import expand, parse_spec
    spec = parse_spec({"name": "m", "base": {"task": "rte"}, "runs": [
        {"method": "lora", "lora_r": 4}, {"method": "pfeiffer", "adapter_size": 16},
        {"method": "houlsby", "adapter_size": 16, "nonlinearity": "swish", "train_layernorm": False, "init_std": 0.02},
        {"policy": "adapter", "adapter_size": 16}, {"method": "bitfit"}]})
    runs = expand(spec)
    assert [r.fields["method"] for r in runs] == ["lora", "pfeiffer", "houlsby", "houlsby", "bitfit"]
    assert runs[0].run_id.startswith("rte-lora-r4-") and runs[1].run_id.startswith("rte-pfeiffer-m16-")
    assert runs[2].run_id.startswith("rte-adapter-m16-swish-noln-")
    assert runs[3].run_id == run_id(al.TrainConfig(task="rte", adapter_size=16))  # the paper's adapters: as before
    # a grid crosses methods with sizes: a size means nothing to LoRA there and is dropped, as for full fine-tuning
    grid = expand(parse_spec({"name": "m", "base": {"task": "rte"},
                              "grid": {"method": ["lora", "houlsby"], "adapter_size": [8, 64]}}))
    assert sorted(r.run_id.split("-lr")[0] for r in grid) == ["rte-adapter-m64", "rte-adapter-m8", "rte-lora-r8"]
