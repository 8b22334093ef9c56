#!/usr/bin/env python
"""Speed and memory of adapter training and inference on a small CPU machine.

Measures the five targets of the "Performance" issue in one script and prints a table:

  step     one training step, adapterlib's adapters (m=64, adapters + LayerNorms + head, fp32)
           vs plain transformers full fine-tuning of the same model (the baseline)   target <= 0.72
  infer    forward pass with adapters (m=64) vs the plain base model                 target <= 1.07
  memory   peak resident memory (OS, one child process per configuration)            target <= 0.80
  sst2     one epoch of SST-2 + evaluation, dynamic padding vs every batch padded to 128,
           same final score within noise                                             target >= 3x faster
  tokcache a second run on the same task does not tokenise again                     target: 0 re-tokenised

Method: warm-up steps first, then the configurations alternate step by step (the order
rotating every round) and each reports the median of its repetitions; ratios are ratios of
medians measured side by side in one process, never absolute times from different runs. Peak
memory is the OS's peak resident set size (VmHWM) of a child process that runs one
configuration only, its repetitions interleaved across configurations.

Usage (each part under the project's CPU lock; merge into one JSON file):
    flock /tmp/adapterlib-cpu.lock python benchmarks/bench.py --parts step,infer,memory
    flock /tmp/adapterlib-cpu.lock python benchmarks/bench.py --parts sst2,tokcache
    python benchmarks/bench.py --report                    # the table of benchmarks/results/latest.json
    python benchmarks/bench.py --tiny --out /tmp/tiny.json # tiny random BERT, CI smoke run, seconds
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

PARTS = ("step", "infer", "memory", "sst2", "tokcache")
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "latest.json"

# Training-step configurations: name -> what it is. "full_ft" is the baseline of every ratio.
TRAIN_CONFIGS = {
    "full_ft": "plain transformers full fine-tuning: AutoModelForSequenceClassification, torch AdamW, "
               "clip 1.0, linear schedule (baseline)",
    "adapter": "adapterlib's training code as train() runs it: train.build_model (adapters m=64 + LayerNorms + "
               "head, with adapterlib.fast) + make_optimizer + train._train_step",
    "adapter_stock": "adapter with build_model(fast=False): stock torch dropout and SDPA attention",
    "adapter_fast_dropout": "adapter_stock + adapterlib.speed_up(model, attention=False): "
                            "cheaper masks in nn.Dropout only",
    "adapter_fast_attention": "adapter_stock + adapterlib.speed_up(model, dropout=False): exact SDPA attention only",
    "adapter_fused_adamw": "adapter with torch.optim.AdamW(fused=True)",
    "adapter_foreach_adamw": "adapter with torch.optim.AdamW(foreach=True)",
    "full_ft_fast": "full_ft + adapterlib.speed_up(model) (for information)",
    "adapter_malloc": "adapter + fast.tune_malloc(), as train() tunes it while training "
                      "(process-wide, so memory part only)",
    "adapter_store_probs": "adapter keeping the attention probabilities for backward (no recompute)",
}
INFER_CONFIGS = {
    "base": "plain transformers base model, eval, torch.no_grad (baseline)",
    "adapter": "adapterlib model with adapters m=64, eval, torch.no_grad (as train.evaluate runs it)",
    "adapter_inference_mode": "adapter under torch.inference_mode instead of no_grad",
    "adapter_fused_residual": "adapter with Adapter.forward = up(act(down(h))).add_(h) (one buffer less)",
}
MEMORY_CONFIGS = ("full_ft", "adapter_stock", "adapter", "adapter_malloc")
INFER_TARGET_CONFIG = "adapter"  # how adapterlib runs inference (train.evaluate)
TARGETS = {  # key: (description, comparison, threshold)
    "step": ("adapter training step / full fine-tuning step", "<=", 0.72),
    "infer": ("inference with adapters / base model", "<=", 1.07),
    "sst2": ("SST-2 epoch+eval: padded-to-128 time / dynamic time", ">=", 3.0),
    "memory": ("peak RSS adapter training / full fine-tuning", "<=", 0.80),
    "tokcache": ("splits tokenised again by a second run", "<=", 0),
}


# ----------------------------------------------------------------------------- setup

def _train_module():
    return importlib.import_module("adapterlib.train")  # `adapterlib.train` the attribute is the function


def _setup_torch(threads: int):
    import torch
    torch.set_num_threads(threads)
    return torch


def make_tiny_assets(root: Path) -> tuple[str, str]:
    """A tiny random BERT + tokenizer and a tiny SST-2 in GLUE layout, for --tiny runs."""
    import random

    import torch
    from transformers import BertForSequenceClassification, BertTokenizerFast

    from adapterlib import tiny_config
    words = ("the a cat dog sat on mat good bad movie film great awful loved hated not very").split()
    model_dir, glue_dir = root / "tiny-bert", root / "glue"
    model_dir.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words, "."]
    BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)}).save_pretrained(model_dir)
    torch.manual_seed(0)
    BertForSequenceClassification(tiny_config("bert", vocab_size=len(vocab))).save_pretrained(model_dir)
    rng = random.Random(0)
    (glue_dir / "SST-2").mkdir(parents=True, exist_ok=True)
    for split, n in (("train", 160), ("dev", 24)):
        rows = [(" ".join(rng.choice(words[:10]) for _ in range(rng.randint(2, 12)))
                 + (" good ." if i % 2 else " bad ."), i % 2) for i in range(n)]
        (glue_dir / "SST-2" / f"{split}.tsv").write_text("sentence\tlabel\n" + "".join(f"{s}\t{y}\n" for s, y in rows))
    return str(model_dir), str(glue_dir)


def random_batch(vocab_size: int, batch_size: int, seq_len: int, labels: bool = True) -> dict:
    """A fixed batch of full-length random token sequences (no padding), as in the issue's figures."""
    import torch
    g = torch.Generator().manual_seed(0)
    low = min(1000, vocab_size // 2)
    batch = {"input_ids": torch.randint(low, vocab_size, (batch_size, seq_len), generator=g),
             "attention_mask": torch.ones(batch_size, seq_len, dtype=torch.long),
             "token_type_ids": torch.zeros(batch_size, seq_len, dtype=torch.long)}
    if labels:
        batch["labels"] = torch.randint(0, 2, (batch_size,), generator=g)
    return batch


def _plain_model(args, train: bool):
    from transformers import AutoModelForSequenceClassification

    from adapterlib.models import _quiet_transformers, resolve_model
    with _quiet_transformers():
        model = AutoModelForSequenceClassification.from_pretrained(resolve_model(args.model), num_labels=2)
    return model.train(train)


def _adapterlib_model(args, train: bool, fast: bool = True):
    from adapterlib import TrainConfig
    cfg = TrainConfig(task="sst2", policy="adapter", adapter_size=64, model=args.model,
                      batch_size=args.batch_size, max_length=args.seq_len)
    model, _ = _train_module().build_model(cfg, fast=fast)
    return model.train(train), cfg


# ----------------------------------------------------------------------------- training steps

def build_train_step(name: str, args, batch):
    """Return a zero-argument callable running one optimizer step of configuration `name`."""
    import torch
    from accelerate import Accelerator
    from transformers import get_linear_schedule_with_warmup

    import adapterlib as al
    from adapterlib import fast
    T = _train_module()
    torch.manual_seed(0)
    if name.startswith("full_ft"):
        model = _plain_model(args, train=True)
        if name == "full_ft_fast":
            al.speed_up(model)  # the public speed path, as a user's own loop would call it
        optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5)
        scheduler = get_linear_schedule_with_warmup(optimizer, 0, 10 ** 6)

        def step():  # what a transformers user runs (the Trainer's inner step, without the Trainer)
            model(**batch).loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
        return step
    stock = name == "adapter_stock" or name.startswith("adapter_fast_")
    model, cfg = _adapterlib_model(args, train=True, fast=not stock)
    if name.startswith("adapter_fast_"):
        al.speed_up(model, dropout=name != "adapter_fast_attention", attention=name != "adapter_fast_dropout")
    if name == "adapter_malloc":
        fast.tune_malloc()  # for the rest of this (child) process, which runs this configuration only
    if name == "adapter_store_probs":
        for module in model.modules():
            module.adapterlib_store_probs = True
    optimizer, scheduler = T.make_optimizer(model, cfg, total_steps=10 ** 6)
    if name in ("adapter_fused_adamw", "adapter_foreach_adamw"):
        kind = {"fused": True} if name == "adapter_fused_adamw" else {"foreach": True}
        optimizer = torch.optim.AdamW([{k: v for k, v in g.items() if k in ("params", "weight_decay")}
                                       for g in optimizer.param_groups], lr=cfg.lr, eps=cfg.adam_eps, **kind)
        scheduler = get_linear_schedule_with_warmup(optimizer, 10 ** 5, 10 ** 6)
    accelerator = Accelerator(mixed_precision=cfg.mixed_precision)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    model.train()
    return lambda: T._train_step(model, batch, optimizer, scheduler, accelerator, cfg.max_grad_norm)


def build_infer_step(name: str, args, batch):
    """Return a zero-argument callable running one forward pass of inference configuration `name`."""
    import torch

    from adapterlib.modules import Adapter
    torch.manual_seed(0)
    model = _plain_model(args, train=False) if name == "base" else _adapterlib_model(args, train=False)[0]
    if name == "adapter_fused_residual":
        for module in model.modules():
            if isinstance(module, Adapter):
                module.forward = (lambda m: lambda h: m.up(m.act(m.down(h))).add_(h))(module)
    mode = torch.inference_mode if name == "adapter_inference_mode" else torch.no_grad

    def step():
        with mode():
            return model(**batch).logits
    return step


def interleave(steps: dict, warmup: int, reps: int) -> dict:
    """Time the callables alternately (rotating order each round); returns per-config seconds lists."""
    names = list(steps)
    for _ in range(warmup):
        for name in names:
            steps[name]()
    times = {name: [] for name in names}
    for r in range(reps):
        for name in names[r % len(names):] + names[:r % len(names)]:
            t = time.perf_counter()
            steps[name]()
            times[name].append(time.perf_counter() - t)
    return times


def summarise_times(times: dict, baseline: str) -> dict:
    med = {k: statistics.median(v) for k, v in times.items()}
    out = {}
    for name, ts in times.items():
        paired = [t / b for t, b in zip(ts, times[baseline], strict=True)]
        out[name] = {"median_s": med[name], "ratio": med[name] / med[baseline],
                     "paired_ratio_median": statistics.median(paired), "times_s": ts}
    return out


def part_timed(args, kind: str) -> dict:
    torch = _setup_torch(args.threads)
    if args.tune_malloc:  # the whole process, every configuration (the baseline too)
        importlib.import_module("adapterlib.fast").tune_malloc()
    configs = args.step_configs if kind == "step" else args.infer_configs
    table = TRAIN_CONFIGS if kind == "step" else INFER_CONFIGS
    baseline = "full_ft" if kind == "step" else "base"
    if configs[0] != baseline:
        configs = [baseline, *[c for c in configs if c != baseline]]
    batch = random_batch(_vocab_size(args), args.batch_size, args.seq_len, labels=kind == "step")
    build = build_train_step if kind == "step" else build_infer_step
    steps = {name: build(name, args, batch) for name in configs}
    reps = args.reps if kind == "step" else args.infer_reps
    times = interleave(steps, args.warmup, reps)
    del steps, torch
    return {"configs": {k: {"what": table[k], **v} for k, v in summarise_times(times, baseline).items()},
            "baseline": baseline, "warmup": args.warmup, "reps": reps, "tune_malloc": args.tune_malloc}


# ----------------------------------------------------------------------------- memory (child processes)

def peak_rss_mb() -> float:
    """This process's peak resident set size (VmHWM) from the OS, in MiB.

    Not ru_maxrss: Linux carries the parent's peak into a child's ru_maxrss across fork/exec,
    so a child started by a process holding models would report at least the parent's size.
    VmHWM belongs to the child's own address space. The same measurement as run records'
    (`adapterlib.records.peak_rss`).
    """
    from adapterlib.records import peak_rss
    return peak_rss()[0]


def worker_memory(args) -> dict:
    """One configuration alone in this process: peak RSS, and step times as a cross-check of `step`."""
    import resource
    _setup_torch(args.threads)
    after_imports = peak_rss_mb()
    step = build_train_step(args.config, args, random_batch(_vocab_size(args), args.batch_size, args.seq_len))
    after_setup = peak_rss_mb()
    times, faults = [], []
    for _ in range(args.mem_steps):
        f, t = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f)
    return {"config": args.config, "peak_rss_mb_after_imports": after_imports, "peak_rss_mb_after_setup": after_setup,
            "peak_rss_mb": peak_rss_mb(), "step_s": times, "median_step_s": statistics.median(times[1:] or times),
            "page_faults_per_step": statistics.median(faults[1:] or faults)}


def _vocab_size(args) -> int:
    from transformers import AutoConfig

    from adapterlib.models import resolve_model
    return AutoConfig.from_pretrained(resolve_model(args.model)).vocab_size


def run_worker(args, kind: str, extra: list[str]) -> dict:
    """Run this script as a child doing one job; returns its JSON plus its peak RSS as the OS reports it."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", kind, *_shared_flags(args), *extra]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        if proc.returncode != 0:
            raise RuntimeError(f"worker failed: {' '.join(cmd)}\n{err.read()[-3000:]}")
        result = json.loads(out.read().strip().splitlines()[-1])
    result["ru_maxrss_mb"] = usage.ru_maxrss / 1024  # includes this (parent) process's peak, see peak_rss_mb
    return result


def _shared_flags(args) -> list[str]:
    flags = ["--threads", str(args.threads), "--batch-size", str(args.batch_size), "--seq-len", str(args.seq_len),
             "--mem-steps", str(args.mem_steps), "--sst2-examples", str(args.sst2_examples),
             "--sst2-eval-examples", str(args.sst2_eval_examples), "--sst2-lr", str(args.sst2_lr)]
    if args.model:
        flags += ["--model", args.model]
    if args.glue_dir:
        flags += ["--glue-dir", args.glue_dir]
    if not args.fast:
        flags.append("--no-fast")
    return flags


def part_memory(args) -> dict:
    configs = args.mem_configs
    runs = {name: [] for name in configs}
    for r in range(args.mem_reps):
        order = configs[r % len(configs):] + configs[:r % len(configs)]
        for name in order:
            runs[name].append(run_worker(args, "memory", ["--config", name]))
    med = {name: statistics.median(run["peak_rss_mb"] for run in rs) for name, rs in runs.items()}
    setup = {name: statistics.median(run["peak_rss_mb_after_setup"] for run in rs) for name, rs in runs.items()}
    step = {name: statistics.median(run["median_step_s"] for run in rs) for name, rs in runs.items()}
    faults = {name: statistics.median(run["page_faults_per_step"] for run in rs) for name, rs in runs.items()}
    return {"configs": {name: {"what": TRAIN_CONFIGS[name], "peak_rss_mb": med[name],
                               "ratio": med[name] / med["full_ft"],
                               "peak_rss_mb_after_setup": setup[name], "isolated_step_s": step[name],
                               "isolated_step_ratio": step[name] / step["full_ft"],
                               "page_faults_per_step": faults[name], "runs": runs[name]}
                        for name in runs},
            "baseline": "full_ft", "steps_per_run": args.mem_steps, "reps": args.mem_reps}


# ----------------------------------------------------------------------------- SST-2 end to end

def _sst2_config(args):
    from adapterlib import TrainConfig
    return TrainConfig(task="sst2", policy="adapter", adapter_size=64, lr=args.sst2_lr, epochs=1,
                       max_train_examples=args.sst2_examples, max_eval_examples=args.sst2_eval_examples,
                       batch_size=args.batch_size, max_length=args.seq_len, seed=0, model=args.model,
                       glue_dir=args.glue_dir)


@contextlib.contextmanager
def padded_training(pad_to: int | None):
    """adapterlib.train with every batch padded to `pad_to` tokens (None: unchanged, dynamic padding)."""
    from torch.utils.data import DataLoader
    from transformers import DataCollatorWithPadding

    T = _train_module()
    make_loader = T.make_loader

    def padded_loader(ds, tokenizer, batch_size, shuffle, seed=0):  # same batches, padded like run_glue's default
        loader = make_loader(ds, tokenizer, batch_size, shuffle, seed)
        return DataLoader(loader.dataset, batch_size=batch_size, sampler=loader.sampler,
                          collate_fn=DataCollatorWithPadding(tokenizer, padding="max_length", max_length=pad_to))
    try:
        if pad_to:
            T.make_loader = padded_loader
        yield T
    finally:
        T.make_loader = make_loader


def worker_sst2(args) -> dict:
    _setup_torch(args.threads)
    from transformers import AutoTokenizer

    from adapterlib import data
    from adapterlib.models import resolve_model
    cfg = _sst2_config(args)
    T = _train_module()
    T._load_data(cfg, AutoTokenizer.from_pretrained(resolve_model(cfg.model)))  # cached: timing is a 2nd run
    calls = data.TOKENIZE_CALLS
    pad_to = cfg.max_length if args.padding == "max_length" else None
    with padded_training(pad_to) as T:
        record = T.train(cfg, progress=False, save_checkpoint=False, fast=args.fast)
    t = record["timing"]
    return {"padding": args.padding, "fast": args.fast, "wall_s": t["wall_s"], "train_s": t["train_s"],
            "steps": t["steps"], "s_per_step": t["s_per_step"], "tokens_per_s": t["tokens_per_s"],
            "padded_tokens_per_s": t["padded_tokens_per_s"], "dev_score": record["dev_score"],
            "metric": record["metric"], "dev_n": record["splits"]["sizes"]["dev"],
            "train_n": record["splits"]["sizes"]["train"], "selected": record["selected"],
            "tokenized_during_train": data.TOKENIZE_CALLS - calls}


def part_sst2(args) -> dict:
    runs = {p: run_worker(args, "sst2", ["--padding", p]) for p in ("dynamic", "max_length")}
    dyn, pad = runs["dynamic"], runs["max_length"]
    acc = dyn["dev_score"] / 100
    se = 100 * math.sqrt(max(acc * (1 - acc), 1e-12) / dyn["dev_n"])  # binomial s.e. of one dev accuracy
    return {"runs": runs, "speedup": pad["wall_s"] / dyn["wall_s"], "train_speedup": pad["train_s"] / dyn["train_s"],
            "score_diff": pad["dev_score"] - dyn["dev_score"], "score_se": se,
            "within_noise": abs(pad["dev_score"] - dyn["dev_score"]) <= 2 * math.sqrt(2) * se,
            "config": _sst2_config(args).to_dict()}


# ----------------------------------------------------------------------------- tokenisation cache

def worker_tokenize(args) -> dict:
    from transformers import AutoTokenizer

    from adapterlib import data
    from adapterlib.models import resolve_model
    t = time.perf_counter()
    ds = data.load_glue("sst2", args.glue_dir)
    tokenizer = AutoTokenizer.from_pretrained(resolve_model(args.model))
    out = data.tokenize_glue(ds, tokenizer, max_length=args.seq_len, cache_dir=args.cache_dir)
    return {"seconds": time.perf_counter() - t, "tokenized_splits": data.TOKENIZE_CALLS,
            "cache_hit": data.tokenize_glue.last_cache_hit, "examples": {k: len(v) for k, v in out.items()}}


def part_tokcache(args) -> dict:
    with tempfile.TemporaryDirectory(prefix="adapterlib-tokcache-") as cache:
        first = run_worker(args, "tokenize", ["--cache-dir", cache])
        second = run_worker(args, "tokenize", ["--cache-dir", cache])
    return {"first": first, "second": second, "retokenized": second["tokenized_splits"],
            "speedup": first["seconds"] / second["seconds"]}


# ----------------------------------------------------------------------------- report

def machine_info(args) -> dict:
    import torch
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    return {"cpu": cpu, "cores": os.cpu_count(), "threads": args.threads, "platform": platform.platform(),
            "python": platform.python_version(), "torch": torch.__version__,
            "transformers": importlib.import_module("transformers").__version__,
            "git": importlib.import_module("adapterlib.records").git_revision()}


def target_rows(results: dict) -> list[tuple]:
    """(target, measured, threshold, met) for every target whose part is in `results`."""
    configs = lambda part: results.get(part, {}).get("configs", {})  # noqa: E731
    measured = {
        "step": configs("step").get("adapter", {}).get("ratio"),
        "infer": configs("infer").get(INFER_TARGET_CONFIG, {}).get("ratio"),
        "memory": configs("memory").get("adapter", {}).get("ratio"),
        "sst2": results.get("sst2", {}).get("speedup"),
        "tokcache": results.get("tokcache", {}).get("retokenized"),
    }
    rows = []
    for key, value in measured.items():
        if value is None:
            continue
        what, op, threshold = TARGETS[key]
        met = value <= threshold if op == "<=" else value >= threshold
        if key == "sst2":
            met = met and results["sst2"]["within_noise"]
        rows.append((what, value, f"{op} {threshold}", met))
    return rows


def format_report(results: dict) -> str:
    lines = [f"machine: {results.get('machine', {}).get('cpu', '?')}, {results.get('machine', {}).get('threads')} "
             f"threads; {'TINY (numbers meaningless)' if results.get('tiny') else 'real model'}"]
    for kind, unit in (("step", "s"), ("infer", "s")):
        if kind in results:
            lines.append(f"\n{kind}: median of {results[kind]['reps']} interleaved repetitions"
                         + (" (tune_malloc for every configuration)" if results[kind].get("tune_malloc") else ""))
            for name, v in results[kind]["configs"].items():
                lines.append(f"  {name:24s} {v['median_s']:8.3f} {unit}   x{v['ratio']:.3f}  "
                             f"(paired x{v['paired_ratio_median']:.3f})")
    if "memory" in results:
        lines.append(f"\nmemory: peak RSS, median of {results['memory']['reps']} child processes")
        for name, v in results["memory"]["configs"].items():
            lines.append(f"  {name:24s} {v['peak_rss_mb']:8.0f} MB   x{v['ratio']:.3f}  "
                         f"(before training: {v['peak_rss_mb_after_setup']:.0f} MB; step alone in its process "
                         f"{v['isolated_step_s']:.3f} s, x{v['isolated_step_ratio']:.3f}, "
                         f"{v['page_faults_per_step']:.0f} page faults)")
    if "sst2" in results:
        s = results["sst2"]
        lines.append("\nsst2: one epoch + validation + dev")
        for name, v in s["runs"].items():
            lines.append(f"  {name:24s} {v['wall_s']:8.1f} s wall ({v['train_s']:.1f} s training, {v['steps']} steps)"
                         f"   dev {v['metric']} {v['dev_score']:.2f}")
        lines.append(f"  speed-up x{s['speedup']:.2f}; score difference {s['score_diff']:+.2f} "
                     f"(s.e. of one score {s['score_se']:.2f})")
    if "tokcache" in results:
        t = results["tokcache"]
        lines.append(f"\ntokcache: first run {t['first']['seconds']:.1f} s ({t['first']['tokenized_splits']} splits "
                     f"tokenised), second run {t['second']['seconds']:.1f} s ({t['retokenized']} tokenised)")
    lines.append("\ntargets:")
    for what, value, threshold, met in target_rows(results):
        lines.append(f"  {'MET ' if met else 'MISS'} {what:58s} {value:8.3f}  (target {threshold})")
    return "\n".join(lines)


def format_markdown(results: dict) -> str:
    """The same numbers as format_report, as the markdown tables benchmarks/README.md shows."""
    m = results["machine"]
    lines = [f"Measured {results.get('step', results.get('sst2', {})).get('measured', '?')} on {m['cpu']}, "
             f"{m['cores']} cores, {m['threads']} torch threads; Python {m['python']}, torch {m['torch']}, "
             f"transformers {m['transformers']}; adapterlib {str((m.get('git') or {}).get('commit'))[:10]}"
             f"{' (uncommitted changes)' if (m.get('git') or {}).get('dirty') else ''}.", "",
             "| target | measured | target | met |", "|---|---|---|---|"]
    for what, value, threshold, met in target_rows(results):
        lines.append(f"| {what} | {value:.3f} | {threshold} | {'yes' if met else 'NO'} |")
    for kind in ("step", "infer"):
        if kind in results:
            lines += ["", f"**{kind}**: median seconds of {results[kind]['reps']} interleaved repetitions, "
                      "ratio to the first row", "", "| configuration | median s | ratio | what |", "|---|---|---|---|"]
            lines += [f"| `{n}` | {v['median_s']:.3f} | {v['ratio']:.3f} | {v['what']} |"
                      for n, v in results[kind]["configs"].items()]
    if "memory" in results:
        lines += ["", f"**memory**: peak resident set (VmHWM) of one child process per configuration, median of "
                  f"{results['memory']['reps']}", "",
                  "| configuration | peak RSS MB | ratio | before training MB | step s (alone) | page faults / step |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| `{n}` | {v['peak_rss_mb']:.0f} | {v['ratio']:.3f} | {v['peak_rss_mb_after_setup']:.0f} | "
                  f"{v['isolated_step_s']:.3f} | {v['page_faults_per_step']:.0f} |"
                  for n, v in results["memory"]["configs"].items()]
    if "sst2" in results:
        s = results["sst2"]
        lines += ["", f"**sst2**: one epoch on {s['runs']['dynamic']['train_n']} training sentences + validation + "
                  f"dev ({s['runs']['dynamic']['dev_n']} sentences), adapters m=64", "",
                  "| batches | wall s | training s | steps | dev accuracy |", "|---|---|---|---|---|"]
        lines += [f"| {n} | {v['wall_s']:.1f} | {v['train_s']:.1f} | {v['steps']} | {v['dev_score']:.2f} |"
                  for n, v in s["runs"].items()]
        lines += ["", f"Speed-up x{s['speedup']:.2f}; dev accuracy difference {s['score_diff']:+.2f} points "
                  f"(standard error of one score {s['score_se']:.2f}; within noise: {s['within_noise']})."]
    if "tokcache" in results:
        t = results["tokcache"]
        lines += ["", f"**tokcache**: first run {t['first']['seconds']:.1f} s ({t['first']['tokenized_splits']} splits "
                  f"tokenised), second run {t['second']['seconds']:.1f} s ({t['retokenized']} splits tokenised)."]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- main

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--parts", default=",".join(PARTS),
                   help=f"comma-separated subset of {','.join(PARTS)} (default: all)")
    p.add_argument("--tiny", action="store_true",
                   help="tiny random BERT, tiny batches and data: checks the script works in seconds (CI); "
                   "no speed claims")
    p.add_argument("--out", type=Path, default=None,
                   help=f"JSON file to write; parts already in it are kept unless re-measured (default: {DEFAULT_OUT}, "
                        "or a temporary file with --tiny)")
    p.add_argument("--report", action="store_true", help="print the table of --out and exit (no measurement)")
    p.add_argument("--markdown", action="store_true", help="with --report: print the markdown of benchmarks/README.md")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2, as in the issue)")
    p.add_argument("--batch-size", type=int, default=None, help="batch size (default 32; tiny 8)")
    p.add_argument("--seq-len", type=int, default=None,
                   help="sequence length of step/infer/memory batches and max_length (default 128; tiny 16)")
    p.add_argument("--warmup", type=int, default=None, help="warm-up steps per configuration (default 2; tiny 1)")
    p.add_argument("--reps", type=int, default=None, help="timed training steps per configuration (default 10; tiny 2)")
    p.add_argument("--infer-reps", type=int, default=None,
                   help="timed forward passes per configuration (default 24; tiny 2)")
    p.add_argument("--step-configs", default="full_ft,adapter,adapter_stock",
                   help="training configurations to time, comma-separated; known: " + ", ".join(TRAIN_CONFIGS))
    p.add_argument("--infer-configs", default="base,adapter",
                   help="inference configurations to time, comma-separated; known: " + ", ".join(INFER_CONFIGS))
    p.add_argument("--mem-configs", default=None,
                   help="training configurations of the memory part, comma-separated, full_ft first "
                        f"(default {','.join(MEMORY_CONFIGS)}; tiny full_ft,adapter)")
    p.add_argument("--mem-reps", type=int, default=None,
                   help="child processes per memory configuration (default 2; tiny 1)")
    p.add_argument("--mem-steps", type=int, default=None,
                   help="training steps in each memory child; the median of all but the first is its step time "
                        "(default 4; tiny 2)")
    p.add_argument("--sst2-examples", type=int, default=None,
                   help="SST-2 training examples for the end-to-end comparison (default 4000 of 60,614; tiny 160)")
    p.add_argument("--sst2-eval-examples", type=int, default=None,
                   help="cap on validation and dev examples (default 872 = the whole SST-2 dev set)")
    p.add_argument("--sst2-lr", type=float, default=1e-3, help="learning rate of the SST-2 runs (default 1e-3)")
    p.add_argument("--tune-malloc", action="store_true",
                   help="step/infer: call adapterlib.fast.tune_malloc() for the whole process first, baseline included "
                        "(removes page-fault noise; default: glibc's default behaviour)")
    p.add_argument("--no-fast", dest="fast", action="store_false",
                   help="SST-2 runs with train(fast=False): stock dropout and attention "
                   "(default: as train() runs, fast)")
    p.add_argument("--model", default=None, help="base model id/path (default: bundled all-MiniLM-L6-v2)")
    p.add_argument("--glue-dir", default=None, help="GLUE folder (default: $GLUE_DIR)")
    # internal: one job in a child process
    p.add_argument("--worker", choices=("memory", "sst2", "tokenize"), help=argparse.SUPPRESS)
    p.add_argument("--config", help=argparse.SUPPRESS)
    p.add_argument("--padding", help=argparse.SUPPRESS)
    p.add_argument("--cache-dir", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    tiny = dict(batch_size=8, seq_len=16, warmup=1, reps=2, infer_reps=2, mem_reps=1, mem_steps=2,
                mem_configs="full_ft,adapter",
                sst2_examples=160, sst2_eval_examples=24)
    real = dict(batch_size=32, seq_len=128, warmup=2, reps=10, infer_reps=24, mem_reps=2, mem_steps=4,
                mem_configs=",".join(MEMORY_CONFIGS),
                sst2_examples=4000, sst2_eval_examples=872)
    for key, value in (tiny if args.tiny else real).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.parts = [x for x in args.parts.split(",") if x]
    args.step_configs = [x for x in args.step_configs.split(",") if x]
    args.infer_configs = [x for x in args.infer_configs.split(",") if x]
    args.mem_configs = ["full_ft", *[x for x in args.mem_configs.split(",") if x and x != "full_ft"]]
    for name, known in ((args.parts, PARTS), (args.step_configs, TRAIN_CONFIGS), (args.infer_configs, INFER_CONFIGS),
                        (args.mem_configs, TRAIN_CONFIGS)):
        bad = [x for x in name if x not in known]
        if bad:
            p.error(f"unknown {bad}; known: {', '.join(known)}")
    if "adapter_malloc" in args.step_configs:
        p.error("adapter_malloc changes the whole process's allocator; it is measured in the memory part")
    args.glue_dir = args.glue_dir or os.environ.get("GLUE_DIR")
    return args


WORKERS = {"memory": worker_memory, "sst2": worker_sst2, "tokenize": worker_tokenize}
RUNNERS = {"step": lambda a: part_timed(a, "step"), "infer": lambda a: part_timed(a, "infer"),
           "memory": part_memory, "sst2": part_sst2, "tokcache": part_tokcache}


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(WORKERS[args.worker](args)))
        return {}
    out = args.out or (Path(tempfile.gettempdir()) / "adapterlib-bench-tiny.json" if args.tiny else DEFAULT_OUT)
    if args.report:
        results = json.loads(out.read_text())
        print(format_markdown(results) if args.markdown else format_report(results), end="" if args.markdown else "\n")
        return {}
    with tempfile.TemporaryDirectory(prefix="adapterlib-bench-") as tmp:
        if args.tiny and not args.model:
            args.model, args.glue_dir = make_tiny_assets(Path(tmp))
        results = json.loads(out.read_text()) if out.exists() else {}
        if results.get("tiny", args.tiny) != args.tiny:
            results = {}  # never mix tiny and real measurements in one file
        for part in args.parts:
            t = time.perf_counter()
            results[part] = {**RUNNERS[part](args), "seconds": time.perf_counter() - t,
                             "measured": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            print(f"[{part} done in {results[part]['seconds']:.0f} s]", file=sys.stderr)
    results.update(tiny=args.tiny, machine=machine_info(args),
                   settings={k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                             if k not in ("worker", "config", "padding", "cache_dir", "report", "out")})
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    out.with_suffix(".md").write_text(format_markdown(results))
    print(format_report(results))
    print(f"\nwrote {out}")
    return results


if __name__ == "__main__":
    main()
