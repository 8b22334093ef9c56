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
without it, data comes from the copy bundled with adapterlib, else the HuggingFace hub (nyu-mll/glue)."""


# The few TrainConfig fields whose values argparse lists (TrainConfig.__post_init__ checks them all again).
TRAIN_CHOICES = {"head_input": ("pooler", "mean"), "mixed_precision": ("no", "fp16", "bf16")}


def field_help(cls) -> dict[str, str]:
    """Each dataclass field's trailing `# comment` in the class source (with its `#` continuation lines):
    the comments beside TrainConfig's fields are the CLI's help, so defaults and help live in one place."""
    import dataclasses
    import inspect
    names, helps, current = {f.name for f in dataclasses.fields(cls)}, {}, None
    for line in inspect.getsource(cls).splitlines():
        field = re.match(r"\s{4}(\w+)\s*:[^#]*(?:#\s*(.*))?$", line)
        if field and field.group(1) in names:
            current = field.group(1)
            helps[current] = (field.group(2) or "").strip()
        elif current and re.match(r"\s+#", line):
            helps[current] += " " + line.split("#", 1)[1].strip()
        else:
            current = None
    return helps


def add_dataclass_arguments(parser, cls, required=(), choices=None) -> None:
    """One option per field of dataclass `cls`: `--field-name`, its type, default and help from the class.

    `X | None` fields take one X (or, for `list[X]`, one or more); a bool field that defaults to False is
    a `--name` switch, one that defaults to True a `--no-name` switch. Fields in `required` have no default.
    """
    import dataclasses
    import typing
    hints, helps, choices = typing.get_type_hints(cls), field_help(cls), choices or {}
    for f in dataclasses.fields(cls):
        flag, hint = "--" + f.name.replace("_", "-"), hints[f.name]
        text = helps.get(f.name, "").replace("%", "%%")  # argparse formats help with %
        if hint is bool:
            negate = f.default is True
            parser.add_argument(f"--no-{flag[2:]}" if negate else flag, dest=f.name, default=f.default,
                                action="store_false" if negate else "store_true",
                                help=f"switch off: {text}" if negate else text)
            continue
        options = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
        kind = options[0]
        kwargs = dict(type=kind, help=text)
        if typing.get_origin(kind) is list:
            kwargs.update(type=typing.get_args(kind)[0], nargs="+")
        if f.name in choices:
            kwargs["choices"] = choices[f.name]
        if f.name in required:
            kwargs["required"] = True
        else:
            kwargs["default"] = f.default
            if f.default is not None:
                kwargs["help"] = f"{text} (default: {f.default})"
        parser.add_argument(flag, **kwargs)


def _add_train(sub):
    p = sub.add_parser("train", help="train one configuration and write its JSON run record",
                       description="Train one configuration with the paper's recipe (AdamW, linear warm-up "
                       "over 10% of steps then decay, clipping 1.0, batch 32, max length 128), select the best "
                       "epoch on a held-out 10% of train, score the GLUE dev set, write a JSON record.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    from .config import TrainConfig
    add_dataclass_arguments(p, TrainConfig, required=("task",), choices=TRAIN_CHOICES)
    p.add_argument("--output-dir", default="runs", help="where the record (and adapter checkpoint) go (default: runs/)")
    p.add_argument("--no-checkpoint", action="store_true", help="do not save the adapter-only checkpoint")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _add_evaluate(sub):
    p = sub.add_parser("evaluate", help="score a saved adapter checkpoint on a GLUE split",
                       description="Load the base model, apply an adapter-only checkpoint, and score a split.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="checkpoint folder written by `train`")
    p.add_argument("--task", help="GLUE task (default: the task stored in the checkpoint)")
    p.add_argument("--split", default="dev", help="split to score: dev, validation, train, dev_matched, ... (default: dev)")
    p.add_argument("--model", help="base model (default: the one stored in the checkpoint)")
    p.add_argument("--glue-dir", help="GLUE data folder (default: $GLUE_DIR, else the bundled copy, else the hub)")
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
    import dataclasses

    from .config import TrainConfig
    from .train import train
    cfg = TrainConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)})
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
    from .errors import UsageError
    from .models import load_base_model
    from .train import evaluate_task
    if args.max_examples is not None and args.max_examples < 1:
        raise UsageError(f"--max-examples must be a positive integer, got {args.max_examples}")
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


# Modules of the optional extras (pyproject.toml) -> the extra that installs them.
EXTRA_OF = {"matplotlib": "course", "papermill": "course", "nbformat": "course", "ipywidgets": "course",
            "ipykernel": "course", "jupyterlab": "course", "dask": "sweeps", "distributed": "sweeps"}


def missing_extra_line(command: str, error: ModuleNotFoundError) -> str | None:
    """One line naming the extra to install when `error` is a module of one; None for any other module."""
    module = (error.name or "").split(".")[0]
    extra = EXTRA_OF.get(module)
    if extra is None:
        return None
    return f"error: `{command}` needs {module}, from adapterlib's [{extra}] extra: pip install 'adapterlib[{extra}]'"


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
    from .errors import AdapterlibError
    try:
        if args.command == "train":
            return cmd_train(args)
        if args.command == "evaluate":
            return cmd_evaluate(args)
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except AdapterlibError as e:  # bad input; any other exception is a bug and keeps its traceback
        print(f"error: {_one_line(e)}", file=sys.stderr)
        return 2
    except OSError as e:  # a file or folder the user named: missing, not writable, a folder not a file, ...
        print(f"error: {_one_line(e)}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as e:  # an optional extra is not installed; any other missing module is a bug
        line = missing_extra_line(args.command, e)
        if line is None:
            raise
        print(line, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
