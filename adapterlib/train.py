"""Training and evaluation: the paper's recipe in a loop you can read top to bottom.

train(cfg) -> record:  load data and base model, insert adapters, freeze by policy,
AdamW + linear warm-up/decay + clipping, validate on the held-out slice of train after each
epoch (or every N steps), keep the best, then score the GLUE dev set once and write a record.
`accelerate` places the model and batches on the device and handles mixed precision.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from accelerate.utils import set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import DataCollatorWithPadding, get_linear_schedule_with_warmup
from transformers.trainer_pt_utils import LengthGroupedSampler

from . import fast as speedups
from . import records
from . import resume as snapshots
from .checkpoint import save_adapter, trainable_groups
from .config import TrainConfig
from .data import data_source, get_task, load_glue, tokenize_glue
from .errors import OutputWriteError, TrainingDiverged, UsageError  # defined there; importable from here as before
from .heads import set_head_input
from .methods import add_method, trained_summary
from .metrics import compute_metrics, majority_baseline
from .models import check_max_length, load_base_model, max_tokens, resolve_model
from .params import param_report
from .policies import param_groups
from .precision import check_precision
from .record import RunRecord
from .resume import LoopState
from .runids import method_label, run_id  # noqa: F401 (moved there; importable from here as before)

MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids", "labels")


def build_model(cfg: TrainConfig, fast: bool | None = None):
    """Base model + head input + the method's modules (adapters, peft's) with its trainable set (adapterlib.methods).

    cfg.head_input / cfg.train_pooler: what the classifier reads (adapterlib.heads).
    cfg.fast (or `fast`, which overrides it): apply `adapterlib.fast.speed_up` (cheaper dropout
    masks with torch's exact keep probability, an attention backward that stores 1-byte masks
    instead of probabilities). It computes what the plain model computes given the same dropout
    masks, only faster on CPU; evaluation and non-CPU devices are untouched.
    """
    spec = get_task(cfg.task)
    model, tokenizer = load_base_model(cfg.model, num_labels=spec.num_labels)
    check_max_length(model, cfg.max_length, resolve_model(cfg.model))
    set_head_input(model, cfg.head_input)
    add_method(model, cfg)  # adapters (houlsby, pfeiffer) or peft's modules, then the method's trainable set
    if cfg.fast if fast is None else fast:
        speedups.speed_up(model)  # adapterlib.speed_up: the public speed path, as in a user's own loop
    return model, tokenizer


def make_loader(ds, tokenizer, batch_size: int, shuffle: bool, seed: int = 0) -> DataLoader:
    """Dynamic padding; training batches grouped by length (shuffled), evaluation sorted by length."""
    lengths = ds["length"]
    ds = ds.with_format("torch", columns=[c for c in MODEL_INPUTS if c in ds.column_names])
    if shuffle:
        g = torch.Generator().manual_seed(seed)
        sampler = LengthGroupedSampler(batch_size, lengths=lengths, generator=g)
    else:
        sampler = sorted(range(len(lengths)), key=lengths.__getitem__)
    return DataLoader(ds, batch_size=batch_size, sampler=sampler, collate_fn=DataCollatorWithPadding(tokenizer))


def warmup_steps(cfg: TrainConfig, total_steps: int) -> int:
    """Steps of the linear warm-up: the first `warmup_ratio` of all planned steps."""
    return math.ceil(cfg.warmup_ratio * total_steps)


def make_optimizer(model, cfg: TrainConfig, total_steps: int):
    """AdamW, no weight decay on LayerNorm and biases (adapter-bert's AdamWeightDecay)."""
    groups = param_groups(model)
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if groups[name] == "layernorm" or name.endswith("bias") else decay).append(p)
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, eps=cfg.adam_eps)
    scheduler = get_linear_schedule_with_warmup(optimizer, warmup_steps(cfg, total_steps), total_steps)
    return optimizer, scheduler


@torch.no_grad()
def evaluate(model, loader, task, progress: bool = False, desc: str = "eval") -> dict:
    """Scores of `model` on `loader` with the task's official metrics (percent), plus mean loss."""
    model.eval()
    device = next(model.parameters()).device
    preds, labels, loss_sum, n = [], [], 0.0, 0
    for batch in tqdm(loader, desc=desc, disable=not progress, leave=False):
        batch = {k: v.to(device) for k, v in batch.items()}
        out = model(**batch)
        loss_sum += out.loss.item() * len(batch["labels"])
        n += len(batch["labels"])
        logits = out.logits.float()
        preds.append(logits.squeeze(-1) if logits.shape[-1] == 1 else logits.argmax(-1))
        labels.append(batch["labels"])
    scores = compute_metrics(task, torch.cat(preds).cpu().numpy(), torch.cat(labels).cpu().numpy())
    return {**scores, "loss": loss_sum / max(n, 1)}


def _trainable_state(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def _load_data(cfg: TrainConfig, tokenizer):
    spec = get_task(cfg.task)
    ds = load_glue(spec, cfg.glue_dir, val_fraction=cfg.val_fraction, max_train_examples=cfg.max_train_examples,
                   splits=["train", "validation", *spec.dev_files])
    if cfg.max_eval_examples:
        ds = ds.__class__({k: v if k == "train" else v.select(range(min(len(v), cfg.max_eval_examples)))
                           for k, v in ds.items()})
    return tokenize_glue(ds, tokenizer, max_length=cfg.max_length)


def train(cfg: TrainConfig, output_dir=None, progress: bool = True, save_checkpoint: bool = True,
          fast: bool | None = None, on_eval=None) -> RunRecord:
    """Train one configuration; returns the run record (also written to `output_dir` if given).

    cfg.fast: the exact CPU speed-ups of `adapterlib.speed_up` (see `build_model`), plus
    `fast.malloc_tuned()`, which makes this process keep freed memory for reuse while it trains
    (restored afterwards). The record says which were on (`speedups`). `fast` (if given)
    replaces cfg.fast, so the run id, the config and the record always agree.
    With `output_dir`, every epoch's end leaves a snapshot there, and a run stopped part-way resumes from
    it at the next call with the same config (adapterlib.resume); it is deleted with the record.
    on_eval: called with the history so far (a list of dicts) after each validation, e.g. to draw curves live.
    """
    if on_eval is not None and not callable(on_eval):
        raise UsageError(f"on_eval must be a function or None, got {on_eval!r}")
    _check_train_arguments(cfg, output_dir, progress, save_checkpoint, fast)
    if fast is not None and fast != cfg.fast:
        cfg = dataclasses.replace(cfg, fast=fast)
    # fp16 autocast on a CPU would train in fp32 under an fp16 label: refused (bf16 is the commands' choice)
    check_precision(cfg.mixed_precision, allow_slow_bf16=True)
    if output_dir is not None:
        check_writable(output_dir)  # before minutes of training, not after
    start = time.time()
    set_seed(cfg.seed)  # python, numpy, torch: head init, dropout masks, batch order
    spec = get_task(cfg.task)
    with quiet_libraries(not progress):
        model, tokenizer = build_model(cfg)
    # with an output folder, each epoch's end leaves a snapshot the run resumes from if it is stopped
    snapshot = snapshots.snapshot_path(output_dir, run_id(cfg)) if output_dir is not None else None
    with speedups.malloc_tuned(cfg.fast) as malloc_tuned, quiet_libraries(not progress):  # both restored afterwards
        try:
            result = fit(model, tokenizer, cfg, progress, snapshot=snapshot, on_eval=on_eval)
        except TrainingDiverged:  # it would diverge again from its snapshot: a rerun starts afresh
            if snapshot is not None:
                snapshots.remove(snapshot)
            raise
    model = result.model
    record = run_record(cfg, result, start - result.resumed_wall_s)
    record["speedups"] = {"fast_modules": cfg.fast, "malloc_tuned": malloc_tuned, **speedups.active(model)}
    if output_dir is not None:
        out = Path(output_dir)
        try:
            record["path"] = str(out / f"{record['run_id']}.json")
            if save_checkpoint and cfg.method not in ("full", "top_k"):
                unwrapped = result.accelerator.unwrap_model(model)
                save_adapter(unwrapped, out / record["run_id"], groups=trainable_groups(unwrapped),
                             metadata={"task": spec.name, "model": cfg.model, "run_id": record["run_id"]},
                             only_trainable=True)
                record["checkpoint"] = record["run_id"]
            records.write_json_atomic(record["path"], record)
            snapshots.remove(snapshot)
        except Exception as e:  # noqa: BLE001 - full disk, permissions changed mid-run, in whichever library
            # (safetensors raises its own SafetensorError, not OSError): one line that keeps the scores on screen
            raise OutputWriteError(f"could not write the results of {record['run_id']} to {out}: "
                                   f"{type(e).__name__}: {_one_line(e)}. "
                                   f"Scores (not saved): dev {record['dev_score']:.2f} {record['metric']}, "
                                   f"validation {record['selected']['validation_' + record['metric']]:.2f}") from e
    return RunRecord.from_json(record)


def _check_train_arguments(cfg, output_dir, progress, save_checkpoint, fast) -> None:
    """train()'s own arguments (TrainConfig checks its fields): a wrong type is one line, not a TypeError."""
    if not isinstance(cfg, TrainConfig):
        raise UsageError(f"train() takes a TrainConfig, got {type(cfg).__name__}")
    if output_dir is not None and not isinstance(output_dir, (str, os.PathLike)):
        raise UsageError(f"output_dir must be a folder path or None, got {output_dir!r}")
    for name, value, none_ok in (("progress", progress, False), ("save_checkpoint", save_checkpoint, False),
                                 ("fast", fast, True)):
        if not isinstance(value, bool) and not (none_ok and value is None):
            raise UsageError(f"{name} must be true or false{' or None' if none_ok else ''}, got {value!r}")


@contextlib.contextmanager
def quiet_libraries(quiet: bool = True):
    """Within: no progress bars and no info logs from datasets (tokenising, casting, saving a cold cache) and
    transformers (progress=False, `train --quiet`); each library's settings are restored afterwards."""
    if not quiet:
        yield
        return
    import datasets
    from transformers.utils import logging as hf_logging
    bars, level = not datasets.are_progress_bars_disabled(), datasets.logging.get_verbosity()
    hf_bars, hf_level = hf_logging.is_progress_bar_enabled(), hf_logging.get_verbosity()
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        datasets.logging.set_verbosity(level)
        hf_logging.set_verbosity(hf_level)
        if bars:
            datasets.enable_progress_bars()
        if hf_bars:
            hf_logging.enable_progress_bar()


def _one_line(error: BaseException) -> str:
    return " ".join(line.strip() for line in str(error).splitlines() if line.strip()) or type(error).__name__


def check_writable(output_dir) -> Path:
    """Create `output_dir` if needed and prove a file can be written there; a clear error if not."""
    out = Path(output_dir)
    if out.exists() and not out.is_dir():
        raise OutputWriteError(f"output dir {out} is a file, not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write-check-"):
            pass
    except OSError as e:
        raise OutputWriteError(f"output dir {out} is not writable: {e.strerror or e}") from e
    return out


@dataclasses.dataclass
class FitResult:
    """What `fit` returns: the model at the point chosen on validation, its dev scores, and the loop's account."""

    model: torch.nn.Module         # as prepared by accelerate (the same object on one device)
    accelerator: Accelerator
    data: Any                      # the tokenised splits (a datasets.DatasetDict)
    dev: dict[str, dict]           # dev split -> scores (percent) and loss
    history: list[dict]            # one entry per validation
    selected: dict | None          # the history entry chosen on validation
    steps: int
    train_time: float              # seconds inside the training steps
    tokens: int                    # real (unpadded) tokens trained on
    padded_tokens: int
    epochs_run: int
    stopped_early: bool
    steps_per_epoch: int
    resumed_wall_s: float          # wall time of the segments before a resume (0.0 when it ran in one go)
    earlier_segments: list[dict]   # those segments: until_epoch and the code that trained them

    @classmethod
    def from_loop(cls, state: LoopState, stopped_early: bool, steps_per_epoch: int, **outputs) -> FitResult:
        """The loop's counters, with `outputs` (model, accelerator, data, dev)."""
        return cls(**outputs, history=state.history, selected=state.best, steps=state.step,
                   train_time=state.train_time, tokens=state.tokens, padded_tokens=state.padded,
                   epochs_run=math.ceil(state.step / steps_per_epoch), stopped_early=stopped_early,
                   steps_per_epoch=steps_per_epoch, resumed_wall_s=state.wall_s, earlier_segments=state.segments)


def fit(model, tokenizer, cfg: TrainConfig, progress: bool = True, snapshot: Path | None = None,
        on_eval=None) -> FitResult:
    """Train `model` (its trainable parameters as they are set) with the recipe, then score it.

    The middle of `train`, for a model you already hold (e.g. one shared by many tasks): load
    and tokenise the data, AdamW + schedule, the training loop with validation, restore the
    point chosen on validation, score the GLUE dev set. Returns a `FitResult` (the model as prepared
    by accelerate, the accelerator, data, dev scores, history, selected point, steps, timings).
    Call `accelerate.utils.set_seed` first for reproducibility.
    `snapshot` (a file path, see adapterlib.resume): resume from it if it holds this run's state, and
    write it at the end of every epoch (`train` passes one when it has an output folder).
    `on_eval(history)` (if given) runs after each validation.
    """
    spec = get_task(cfg.task)
    data = _load_data(cfg, tokenizer)
    # accelerate keeps one process-wide state and refuses a second precision in the same process (a sweep
    # worker trains fp32 and bf16 runs one after the other); start from a fresh state, as transformers'
    # TrainingArguments does for every Trainer
    AcceleratorState._reset_state(reset_partial_state=True)
    accelerator = Accelerator(mixed_precision=cfg.mixed_precision)
    train_loader = make_loader(data["train"], tokenizer, cfg.batch_size, shuffle=True, seed=cfg.seed)
    val_loader = make_loader(data["validation"], tokenizer, 128, shuffle=False)
    total_steps = cfg.max_steps or cfg.epochs * len(train_loader)
    optimizer, scheduler = make_optimizer(model, cfg, total_steps)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    snapshot = snapshot if accelerator.scaler is None else None  # fp16's loss scaler is not snapshotted
    state, best_state, stopped_early = _fit(model, optimizer, scheduler, accelerator, train_loader, val_loader, cfg,
                                            total_steps, progress, snapshot, on_eval=on_eval)
    model.load_state_dict(best_state, strict=False)  # the epoch chosen on validation
    dev = {split: evaluate(model, make_loader(data[split], tokenizer, 128, shuffle=False), spec, progress, desc=split)
           for split in spec.dev_files}
    return FitResult.from_loop(state, stopped_early, len(train_loader), model=model, accelerator=accelerator,
                               data=data, dev=dev)


def _train_step(model, batch, optimizer, scheduler, accelerator, max_grad_norm: float) -> float:
    """One optimizer step: forward, backward, clip the global norm, AdamW, schedule."""
    loss = model(**batch).loss
    accelerator.backward(loss)
    accelerator.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], max_grad_norm)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return loss.item()


def _fit(model, optimizer, scheduler, accelerator, train_loader, val_loader, cfg, total_steps, progress,
         snapshot=None, on_eval=None) -> tuple[LoopState, dict | None, bool]:
    """The training loop. Returns its counters (history, best validation point, timings), the best point's
    weights, and whether patience stopped it early. `on_eval(history)` (if given) runs after each validation."""
    spec = get_task(cfg.task)
    state, best_state, stopped_early = LoopState(), None, False
    warmup = warmup_steps(cfg, total_steps)
    segment_start = time.time()
    sampler_generator = train_loader.sampler.generator
    restored = snapshots.load(snapshot, run_id(cfg), model, optimizer, scheduler, sampler_generator) \
        if snapshot else None
    if restored:
        state, best_state = restored
        # what trained the epochs before this stop (snapshots older than `segments` listed the epochs alone)
        state.resume(until_epoch=state.step // len(train_loader))
    bar = tqdm(total=total_steps, initial=state.step, desc=f"train {spec.display} ({cfg.policy})",
               disable=not progress)
    while state.step < total_steps:
        model.train()
        for batch in train_loader:  # our own samplers, so batches are moved here, not by prepare()
            batch = {k: v.to(accelerator.device) for k, v in batch.items()}
            t = time.perf_counter()
            loss = _train_step(model, batch, optimizer, scheduler, accelerator, cfg.max_grad_norm)
            state.train_time += time.perf_counter() - t
            if not math.isfinite(loss):
                bar.close()
                std = f", adapter init std {cfg.adapter_config().std:g}" if cfg.policy == "adapter" else ""
                raise TrainingDiverged(f"training loss became {loss} at step {state.step + 1} (lr {cfg.lr:g}{std}); "
                                       "the run stopped and counts as failed")
            state.step, state.loss_sum = state.step + 1, state.loss_sum + loss
            state.tokens += int(batch["attention_mask"].sum())
            state.padded += batch["input_ids"].numel()
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}")
            step = state.step
            end_of_epoch = step % len(train_loader) == 0
            if step == total_steps or (step % cfg.eval_every == 0 if cfg.eval_every else end_of_epoch):
                scores = evaluate(model, val_loader, spec, progress, desc="validation")
                state.history.append({"step": step, "epoch": round(step / len(train_loader), 3),
                                      "train_loss": state.loss_sum / step,
                                      **{f"validation_{k}": v for k, v in scores.items()}})
                if state.best is None or scores[spec.metric] > state.best[f"validation_{spec.metric}"]:
                    # ties keep the earlier
                    state.best, best_state, state.since_best = state.history[-1], _trainable_state(model), 0
                elif step > warmup:
                    state.since_best += 1  # patience counts only after the warm-up: the lr has not peaked before
                stopped_early = bool(cfg.patience) and state.since_best >= cfg.patience and step < total_steps
                if on_eval is not None:
                    on_eval(list(state.history))
                if snapshot is not None and end_of_epoch and not stopped_early and step < total_steps:
                    state.writer = state.writer or {"git": records.git_revision(), "versions": records.versions()}
                    snapshots.save(snapshot, run_id(cfg), model, optimizer, scheduler, sampler_generator, state,
                                   best_state, segment_s=time.time() - segment_start)
                model.train()
            if step == total_steps or stopped_early:
                break
        if stopped_early:
            break
    bar.close()
    return state, best_state, stopped_early


def run_record(cfg, result: FitResult, start) -> dict:
    """The JSON of a finished run's record (RunRecord.from_json reads it): train() and AdapterBank.train_task."""
    spec = get_task(cfg.task)
    model, data, dev = result.model, result.data, result.dev
    steps, train_time = result.steps, result.train_time
    return {
        "run_id": run_id(cfg), "status": "ok", "task": spec.name, "policy": cfg.policy,
        "config": cfg.to_dict(), "seed": cfg.seed,
        "base_model": {"name": cfg.model or "all-MiniLM-L6-v2 (bundled)", "path": resolve_model(cfg.model),
                       "model_type": model.config.model_type},
        "adapter_config": cfg.adapter_config().to_dict() if cfg.method in ("houlsby", "pfeiffer") else None,
        "method": cfg.method, "trained": trained_summary(model, cfg.method),
        "params": param_report(model).to_dict(),
        "metric": spec.metric,
        "splits": {"validation": f"held-out {cfg.val_fraction:.0%} of train.tsv (seeded), used for model selection",
                   **{s: "GLUE dev set, reported only, never used for selection" for s in spec.dev_files},
                   "sizes": {k: len(v) for k, v in data.items()}},
        "history": result.history, "selected": result.selected,
        "dev": dev, "dev_score": dev[next(iter(spec.dev_files))][spec.metric],
        # the floor every score is read against: always predicting the majority class of the scored examples
        "majority": {s: majority_baseline(spec, data[s]["labels"])
                     for s in ("validation", *spec.dev_files) if s in data},
        "timing": {"wall_s": time.time() - start, "train_s": train_time, "steps": steps,
                   "epochs_run": result.epochs_run, "stopped_early": result.stopped_early,
                   **({"resumed_at_epochs": [s["until_epoch"] for s in result.earlier_segments]}
                      if result.earlier_segments else {}),
                   "planned_steps": cfg.max_steps or cfg.epochs * result.steps_per_epoch,
                   "steps_per_s": steps / train_time if train_time else None,
                   "s_per_step": train_time / steps if steps else None,
                   "tokens_per_s": result.tokens / train_time if train_time else None,
                   "padded_tokens_per_s": result.padded_tokens / train_time if train_time else None},
        "memory": records.peak_memory_mb(), "data_source": data_source(spec, cfg.glue_dir), **records.provenance(),
        # a resumed run: the code and library versions that trained its epochs before each stop
        **({"earlier_segments": result.earlier_segments} if result.earlier_segments else {}),
    }


def evaluate_task(model, tokenizer, task, split: str = "dev", glue_dir=None, max_examples: int | None = None,
                  max_length: int = 128, progress: bool = False) -> dict:
    """Score `model` on one split of a GLUE task (tokenisation is cached); metrics in percent."""
    spec = get_task(task)
    ds = load_glue(spec, glue_dir, splits=[split])
    if max_examples:
        ds[split] = ds[split].select(range(min(max_examples, len(ds[split]))))
    data = tokenize_glue(ds, tokenizer, max_length=min(max_length, max_tokens(model) or max_length))
    return evaluate(model, make_loader(data[split], tokenizer, 128, shuffle=False), spec, progress, desc=split)
