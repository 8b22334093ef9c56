"""Command line: `python -m adapterlib {train,evaluate,...} --help`."""
from __future__ import annotations

import argparse
import json
import os
import re
import sys

EPILOG = """examples:
  python -m adapterlib train --task rte --policy adapter --adapter-size 64 --lr 3e-4 --epochs 3 --seed 0 --output-dir runs/
  python -m adapterlib train --task sst2 --max-train-examples 4000 --epochs 1 --output-dir runs/
  python -m adapterlib evaluate --checkpoint runs/<run_id> --task rte

Data: --glue-dir (or $GLUE_DIR) points at a folder in the GLUE layout (<TASK>/train.tsv, dev.tsv);
without it, data comes from the HuggingFace hub (nyu-mll/glue), which needs network."""


def _add_train(sub):
    p = sub.add_parser("train", help="train one configuration and write its JSON run record",
                       description="Train one configuration with the paper's recipe (AdamW, linear warm-up "
                       "over 10% of steps then decay, clipping 1.0, batch 32, max length 128), select the best "
                       "epoch on a held-out 10% of train, score the GLUE dev set, write a JSON record.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", required=True, help="GLUE task: cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte, wnli")
    p.add_argument("--policy", default="adapter", help="what is trained: adapter (adapters + LayerNorms + head, "
                   "the paper), full, top_k, layernorm, head (default: adapter)")
    p.add_argument("--adapter-size", type=int, default=64, help="bottleneck size m (default: 64)")
    p.add_argument("--init", default="houlsby", help="adapter init: houlsby (std 1e-2, paper) or "
                   "adapter-bert (std 1e-3, official code) (default: houlsby)")
    p.add_argument("--init-std", type=float, help="explicit init std, overrides --init (0 = exact identity)")
    p.add_argument("--adapter-layers", type=int, nargs="+", help="layer indices that get adapters (default: all)")
    p.add_argument("--top-k", type=int, help="number of top layers trained by --policy top_k")
    p.add_argument("--lr", type=float, default=3e-4, help="peak learning rate (default: 3e-4)")
    p.add_argument("--epochs", type=int, default=3, help="training epochs; the maximum with --patience (default: 3)")
    p.add_argument("--patience", type=int, help="early stopping: stop after N validations without a better "
                   "score (default: none, run every epoch)")
    p.add_argument("--head-input", default="pooler", choices=["pooler", "mean"],
                   help="what the classifier reads: pooler (BERT's pooler over [CLS], the paper) or mean (token "
                        "mean, how the bundled MiniLM was pre-trained) (default: pooler)")
    p.add_argument("--train-pooler", action="store_true", help="also train the pooler under frozen-base policies "
                   "(the bundled MiniLM's pooler is untrained); counted in the per-task parameters")
    p.add_argument("--max-steps", type=int, help="stop after N optimizer steps (quick runs)")
    p.add_argument("--batch-size", type=int, default=32, help="batch size (default: 32, paper)")
    p.add_argument("--max-length", type=int, default=128, help="max tokens per example (default: 128, paper)")
    p.add_argument("--seed", type=int, default=0, help="random seed: head init, dropout, batch order (default: 0)")
    p.add_argument("--max-train-examples", type=int, help="train on a fixed, seeded subset of N examples")
    p.add_argument("--max-eval-examples", type=int, help="cap validation and dev sets at N examples (smoke runs)")
    p.add_argument("--eval-every", type=int, help="validate every N steps (default: after each epoch)")
    p.add_argument("--mixed-precision", default="no", choices=["no", "fp16", "bf16"], help="via accelerate (GPU)")
    p.add_argument("--model", help="base model: HuggingFace id or local path (default: bundled all-MiniLM-L6-v2)")
    p.add_argument("--glue-dir", help="GLUE data folder (default: $GLUE_DIR, else the HuggingFace hub)")
    p.add_argument("--output-dir", default="runs", help="where the record (and adapter checkpoint) go (default: runs/)")
    p.add_argument("--no-checkpoint", action="store_true", help="do not save the adapter-only checkpoint")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--no-fast", dest="fast", action="store_false",
                   help="train with stock torch dropout and attention instead of adapterlib.fast's exact CPU "
                        "speed-ups (same computation given the dropout masks; only the masks' random stream differs)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _add_evaluate(sub):
    p = sub.add_parser("evaluate", help="score a saved adapter checkpoint on a GLUE split",
                       description="Load the base model, apply an adapter-only checkpoint, and score a split.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="checkpoint folder written by `train`")
    p.add_argument("--task", help="GLUE task (default: the task stored in the checkpoint)")
    p.add_argument("--split", default="dev", help="split to score: dev, validation, train, dev_matched, ... (default: dev)")
    p.add_argument("--model", help="base model (default: the one stored in the checkpoint)")
    p.add_argument("--glue-dir", help="GLUE data folder (default: $GLUE_DIR, else the HuggingFace hub)")
    p.add_argument("--max-examples", type=int, help="score only the first N examples (N >= 1)")
    p.add_argument("--force", action="store_true", help="score a checkpoint on a --task other than the one it was "
                   "trained on (refused without it; never possible when the label counts differ)")
    p.add_argument("--threads", type=int, help="torch CPU threads")


class OneLineParser(argparse.ArgumentParser):
    """argparse with one error line (the CLI's contract: one line naming the bad value, exit code 2)."""

    def error(self, message):
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m adapterlib", description="Houlsby adapters for BERT-family "
                                     "models: train, evaluate, sweep, and run the notebook course.",
                                     epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    from .cli_extra import LazySubParsers, add_commands  # cheap: command modules load when their command runs
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", action=LazySubParsers)
    _add_train(sub)
    _add_evaluate(sub)
    add_commands(sub)
    return parser


def cmd_train(args) -> int:
    from .config import TrainConfig
    from .train import train
    cfg = TrainConfig(task=args.task, policy=args.policy, adapter_size=args.adapter_size, init=args.init,
                      init_std=args.init_std, adapter_layers=args.adapter_layers, top_k=args.top_k, lr=args.lr,
                      epochs=args.epochs, max_steps=args.max_steps, batch_size=args.batch_size,
                      max_length=args.max_length, seed=args.seed, model=args.model, glue_dir=args.glue_dir,
                      max_train_examples=args.max_train_examples, max_eval_examples=args.max_eval_examples,
                      eval_every=args.eval_every, mixed_precision=args.mixed_precision, patience=args.patience,
                      head_input=args.head_input, train_pooler=args.train_pooler, fast=args.fast)
    cfg.adapter_config() if cfg.policy == "adapter" else None  # validate adapter options before loading anything
    record = train(cfg, output_dir=args.output_dir, progress=not args.quiet, save_checkpoint=not args.no_checkpoint)
    sel = record["selected"]
    print(f"{record['task']} {record['policy']}: selected step {sel['step']} (validation {record['metric']} "
          f"{sel['validation_' + record['metric']]:.2f}); dev " +
          ", ".join(f"{s}: " + ", ".join(f"{k} {v:.2f}" for k, v in d.items() if k != "loss") for s, d in record["dev"].items()))
    print(f"record: {record['path']}")
    return 0


def cmd_evaluate(args) -> int:
    from .checkpoint import CheckpointError, load_adapter, read_adapter_config
    from .data import get_task
    from .models import load_base_model
    from .train import evaluate_task
    if args.max_examples is not None and args.max_examples < 1:
        raise ValueError(f"--max-examples must be a positive integer, got {args.max_examples}")
    meta = read_adapter_config(args.checkpoint)
    trained_on = meta.get("metadata", {}).get("task")
    if not (args.task or trained_on):
        raise CheckpointError(f"checkpoint {args.checkpoint} does not say which task it was trained on; pass --task")
    task = get_task(args.task or trained_on)
    own = get_task(trained_on) if trained_on else task
    if own.name != task.name:  # a checkpoint scored on another task: refused unless forced
        if own.num_labels != task.num_labels:
            raise CheckpointError(f"checkpoint {args.checkpoint} was trained on {own.name} ({own.num_labels} "
                                  f"label(s)); --task {task.name} has {task.num_labels}, its head cannot score it")
        if not args.force:
            raise CheckpointError(f"checkpoint {args.checkpoint} was trained on {own.name}, not {task.name}; "
                                  "pass --force to score it on another task anyway")
        print(f"warning: scoring a checkpoint trained on {own.name} on {task.name} (--force)", file=sys.stderr)
    model, tokenizer = load_base_model(args.model or meta.get("metadata", {}).get("model"), num_labels=task.num_labels)
    load_adapter(model, args.checkpoint)
    scores = evaluate_task(model, tokenizer, task, args.split, args.glue_dir, args.max_examples, progress=True)
    print(json.dumps({"task": task.name, "split": args.split, "checkpoint": str(args.checkpoint), **scores}, indent=2))
    return 0


_NEGATIVE_NUMBER = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$|^-(inf|infinity|nan)$", re.IGNORECASE)


def join_negative_numbers(argv: list[str]) -> list[str]:
    """`--lr -1e-3` -> `--lr=-1e-3`: argparse takes a negative number in exponent form for an option,
    so the value would never reach the setting's own check (which names the allowed range)."""
    out: list[str] = []
    for token in argv:
        if out and _NEGATIVE_NUMBER.match(token) and out[-1].startswith("--") and "=" not in out[-1] \
                and out[-1] != "--":
            out[-1] = f"{out[-1]}={token}"
        else:
            out.append(token)
    return out


def _one_line(error: BaseException) -> str:
    text = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
    return text or type(error).__name__


def main(argv=None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    argv = join_negative_numbers(list(sys.argv[1:] if argv is None else argv))
    args = build_parser().parse_args(argv)
    if getattr(args, "threads", None) is not None:
        if args.threads < 1:
            print(f"error: --threads must be a positive integer, got {args.threads}", file=sys.stderr)
            return 2
        import torch
        torch.set_num_threads(args.threads)
    from .errors import USER_ERRORS
    try:
        if args.command == "train":
            return cmd_train(args)
        if args.command == "evaluate":
            return cmd_evaluate(args)
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as e:
        print(f"error: {_one_line(e)}", file=sys.stderr)
        return 2
    except OSError as e:  # a file or folder the user named: missing, not writable, a folder not a file, ...
        print(f"error: {_one_line(e)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
