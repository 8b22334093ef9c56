"""Cost beside score (issue 29, item 3): each method's train step, peak memory and inference overhead.

    flock /tmp/adapterlib-cpu.lock python benchmarks/methods_cost.py            # the bundled MiniLM, 1 thread
    python benchmarks/methods_cost.py --tiny --out /tmp/m.json                   # tiny random BERT: the script works

Measured on this machine in one interleaved run, as ratios:
  step    one optimizer step of each method through adapterlib's training code (train.build_model +
          make_optimizer + train._train_step, as `train` runs it), against the same code's full fine-tuning;
  memory  peak resident memory (VmHWM) of a child process that builds one method and trains a few steps,
          against full fine-tuning's child;
  infer   a forward pass (eval, no_grad, as train.evaluate runs it) of each method against the frozen base
          alone, unmerged and, for LoRA and (IA)3, merged into the weights with peft's merge_and_unload
          (bottleneck adapters and prefixes cannot merge: an adapter is nonlinear, a prefix lengthens every
          attention; BitFit changes only biases the base already has, so it costs nothing to begin with).
The step and infer configurations alternate, the order rotating every round; each reports the median of
its repetitions, and ratios are ratios of medians measured side by side. Results: a JSON file with the
machine (lscpu's model name, whether the CPU has avx512_bf16) and library versions.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench import interleave  # noqa: E402  the main benchmark's timer: configs alternate, order rotating

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

METHODS = ("full", "houlsby", "pfeiffer", "bitfit", "lora", "ia3", "prefix", "layernorm", "head")
MERGEABLE = ("lora", "ia3")
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "methods_cost.json"


def train_config(method: str, args):
    from adapterlib import TrainConfig
    sizes = {"houlsby": dict(adapter_size=args.adapter_size), "pfeiffer": dict(adapter_size=args.adapter_size),
             "top_k": dict(top_k=1)}
    return TrainConfig(task="sst2", method=method, model=args.model, batch_size=args.batch_size,
                       max_length=args.seq_len, **sizes.get(method, {}))


def random_batch(vocab_size: int, args, labels: bool = True) -> dict:
    """A fixed batch of full-length random token sequences (no padding)."""
    import torch
    g = torch.Generator().manual_seed(0)
    shape = (args.batch_size, args.seq_len)
    batch = {"input_ids": torch.randint(min(1000, vocab_size // 2), vocab_size, shape, generator=g),
             "attention_mask": torch.ones(shape, dtype=torch.long),
             "token_type_ids": torch.zeros(shape, dtype=torch.long)}
    if labels:
        batch["labels"] = torch.randint(0, 2, (args.batch_size,), generator=g)
    return batch


def build_step(method: str, args, batch):
    """One optimizer step of `method` as `train` runs it, and the model's ParamReport."""
    import torch
    from accelerate import Accelerator

    from adapterlib.params import param_report
    T = importlib.import_module("adapterlib.train")
    torch.manual_seed(0)
    cfg = train_config(method, args)
    model, _ = T.build_model(cfg)
    optimizer, scheduler = T.make_optimizer(model, cfg, total_steps=10 ** 6)
    accelerator = Accelerator()
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    model.train()
    report = param_report(model)
    return (lambda: T._train_step(model, batch, optimizer, scheduler, accelerator, cfg.max_grad_norm)), report


def build_forward(name: str, args, batch):
    """One eval forward pass of `name`: "base" (the frozen base alone), a method, or "<method>_merged"."""
    import torch

    T = importlib.import_module("adapterlib.train")
    torch.manual_seed(0)
    method = name.removesuffix("_merged")
    model, _ = T.build_model(train_config("head" if name == "base" else method, args))
    if name.endswith("_merged"):
        model = merged(model, args)
    model.eval()

    def forward():
        with torch.no_grad():
            return model(**batch).logits
    return forward


def merged(model, args):
    """The same method on a fresh base through peft's own PeftModel, merged into the weights (merge_and_unload)."""
    import peft

    from adapterlib.models import load_base_model
    settings = {k: v for k, v in model.peft_settings.items() if k != "method"}
    config = (peft.LoraConfig if model.peft_settings["method"] == "lora" else peft.IA3Config)(**settings)
    base, _ = load_base_model(args.model, num_labels=2)
    return peft.get_peft_model(base, config).merge_and_unload()


def ratios(times: dict, baseline: str) -> dict:
    med = {k: statistics.median(v) for k, v in times.items()}
    return {k: {"median_s": med[k], "ratio": med[k] / med[baseline], "times_s": v} for k, v in times.items()}


def vocab_size(args) -> int:
    from transformers import AutoConfig

    from adapterlib.models import resolve_model
    return AutoConfig.from_pretrained(resolve_model(args.model)).vocab_size


def part_step(args) -> dict:
    batch = random_batch(vocab_size(args), args)
    built = {m: build_step(m, args, batch) for m in args.methods}
    times = interleave({m: step for m, (step, _) in built.items()}, args.warmup, args.reps)
    out = ratios(times, "full")
    for m, (_, report) in built.items():
        out[m].update(trainable=report.trainable, percent_of_base=report.percent_of_base,
                      percent_of_base_no_embedding=report.percent_of_base_no_embedding)
    return out


def part_infer(args) -> dict:
    batch = random_batch(vocab_size(args), args, labels=False)
    names = ["base", *[m for m in args.methods if m != "full"],
             *[f"{m}_merged" for m in MERGEABLE if m in args.methods]]
    forwards = {name: build_forward(name, args, batch) for name in names}
    return ratios(interleave(forwards, args.warmup, args.infer_reps), "base")


def worker_memory(args) -> dict:
    """One method alone in this (child) process: its peak resident set size after a few steps."""
    from adapterlib.records import peak_rss
    step, _ = build_step(args.method, args, random_batch(vocab_size(args), args))
    for _ in range(args.mem_steps):
        step()
    return {"method": args.method, "peak_rss_mb": peak_rss()[0]}


def part_memory(args) -> dict:
    runs = {m: [] for m in args.methods}
    for r in range(args.mem_reps):
        for m in args.methods[r % len(args.methods):] + args.methods[:r % len(args.methods)]:
            runs[m].append(run_worker(args, m)["peak_rss_mb"])
    med = {m: statistics.median(v) for m, v in runs.items()}
    return {m: {"peak_rss_mb": med[m], "ratio": med[m] / med["full"], "runs_mb": runs[m]} for m in runs}


def run_worker(args, method: str) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--method", method, *shared_flags(args)]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.run(cmd, stdout=out, stderr=err)
        out.seek(0), err.seek(0)
        if proc.returncode != 0:
            raise RuntimeError(f"worker failed: {' '.join(cmd)}\n{err.read()[-3000:]}")
        return json.loads(out.read().strip().splitlines()[-1])


def shared_flags(args) -> list[str]:
    flags = ["--threads", str(args.threads), "--batch-size", str(args.batch_size), "--seq-len", str(args.seq_len),
             "--mem-steps", str(args.mem_steps), "--adapter-size", str(args.adapter_size)]
    return flags + (["--model", args.model] if args.model else [])


def machine() -> dict:
    """lscpu's model name and flags (avx512_bf16: whether this CPU has bf16 dot products), cores, versions."""
    info = {}
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout.splitlines():
            key, _, value = line.partition(":")
            info[key.strip()] = value.strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    records = importlib.import_module("adapterlib.records")
    return {"cpu": info.get("Model name"), "avx512_bf16": "avx512_bf16" in info.get("Flags", "").split(),
            "cores": os.cpu_count(), "gpu": records.this_accelerator(), "versions": records.versions(),
            "git": records.git_revision()}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--methods", nargs="+", default=list(METHODS),
                   help="methods to measure (full is always the baseline)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--batch-size", type=int, default=8, help="training/inference batch (default 8)")
    p.add_argument("--seq-len", type=int, default=64, help="tokens per sequence, no padding (default 64)")
    p.add_argument("--adapter-size", type=int, default=16, help="bottleneck m of houlsby and pfeiffer (default 16)")
    p.add_argument("--warmup", type=int, default=2, help="untimed rounds first (default 2)")
    p.add_argument("--reps", type=int, default=6, help="timed training steps per method (default 6)")
    p.add_argument("--infer-reps", type=int, default=10, help="timed forward passes per configuration (default 10)")
    p.add_argument("--mem-steps", type=int, default=3, help="training steps of each memory child (default 3)")
    p.add_argument("--mem-reps", type=int, default=1, help="memory children per method (default 1)")
    p.add_argument("--model", help="base model (default: the bundled all-MiniLM-L6-v2)")
    p.add_argument("--tiny", action="store_true", help="a tiny random BERT (checks that the script works)")
    p.add_argument("--out", default=str(DEFAULT_OUT), help=f"JSON results (default: {DEFAULT_OUT.relative_to(ROOT)})")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--method", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.methods = ["full", *[m for m in args.methods if m != "full"]]
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    import torch
    torch.set_num_threads(args.threads)
    if args.worker:
        print(json.dumps(worker_memory(args)))
        return {}
    if args.tiny and not args.model:
        from transformers import BertForSequenceClassification, BertTokenizerFast

        from adapterlib import tiny_config
        root = Path(tempfile.mkdtemp(prefix="methods-cost-"))
        BertTokenizerFast(vocab={w: i for i, w in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a"])}
                          ).save_pretrained(root)
        torch.manual_seed(0)
        BertForSequenceClassification(tiny_config("bert")).save_pretrained(root)
        args.model = str(root)
        args.seq_len = min(args.seq_len, 32)  # its 64 positions hold the tokens after prefix tuning's 20
    start = time.time()
    results = {"machine": machine(), "settings": {k: v for k, v in vars(args).items() if k not in ("worker", "method")}}
    results["step"] = part_step(args)
    results["infer"] = part_infer(args)
    results["memory"] = part_memory(args)
    results["wall_s"] = time.time() - start
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    importlib.import_module("adapterlib.records").write_json_atomic(out, results)
    print(report(results))
    print(f"results: {out}")
    return results


def report(results: dict) -> str:
    lines = [f"{'method':<16} {'trainable':>10} {'step/full':>10} {'memory/full':>12} {'forward/base':>13}"]
    for m, step in results["step"].items():
        infer = results["infer"].get(m if m != "full" else "base", {}).get("ratio", float("nan"))
        lines.append(f"{m:<16} {step['trainable']:>10,} {step['ratio']:>10.2f} "
                     f"{results['memory'][m]['ratio']:>12.2f} {infer:>13.2f}")
    for name, r in results["infer"].items():
        if name.endswith("_merged"):
            lines.append(f"{name:<16} {'':>10} {'':>10} {'':>12} {r['ratio']:>13.2f}")
    m = results["machine"]
    lines.append(f"machine: {m['cpu']} ({m['cores']} cores, avx512_bf16: {m['avx512_bf16']}), "
                 f"{results['settings']['threads']} thread(s)")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
