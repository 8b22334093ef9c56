"""Sweep throughput: one 2-thread worker, or two 1-thread workers side by side?

A sweep on a C-core machine can run W runs at once with T torch threads each (W x T <= C).
This script measures training steps per second on each task's real data (its own sequence
lengths, length-grouped batches of 32, adapters m=64 and full fine-tuning, as `train` runs them):

  one    - one process with C threads, alone
  pair   - two processes with C/2 threads each, at the same time (throughput = sum of both)

and prints, per task and policy, the ratio pair / one: above 1, the sweep should use
`--workers 2 --threads-per-run 1` on this machine. `--precisions no,bf16` measures each precision
(accelerate's mixed_precision, as `train --mixed-precision` runs it); `--layouts one` skips the pair.
Results go to benchmarks/results/workers.json.

    flock /tmp/adapterlib-cpu.lock python benchmarks/workers.py --tasks cola,rte --steps 30
    flock /tmp/adapterlib-cpu.lock python benchmarks/workers.py --tasks cola,mrpc,rte,stsb,sst2 --precisions no,bf16
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import statistics
import time
from pathlib import Path


def _steps_per_s(task: str, policy: str, threads: int, steps: int, warmup: int, queue, precision: str = "no") -> None:
    import torch
    torch.set_num_threads(threads)
    from accelerate import Accelerator

    from adapterlib.config import TrainConfig
    from adapterlib.train import _load_data, _train_step, build_model, make_loader, make_optimizer
    cfg = TrainConfig(task=task, policy=policy, lr=1e-4, max_train_examples=2000 if task == "sst2" else None,
                      head_input="mean", mixed_precision=precision)
    torch.manual_seed(0)
    model, tokenizer = build_model(cfg)
    data = _load_data(cfg, tokenizer)
    loader = make_loader(data["train"], tokenizer, cfg.batch_size, shuffle=True, seed=0)
    optimizer, scheduler = make_optimizer(model, cfg, total_steps=10_000)
    accelerator = Accelerator(mixed_precision=precision)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)  # as train() does
    model.train()
    batches, times = iter(loader), []
    for i in range(warmup + steps):
        try:
            batch = next(batches)
        except StopIteration:
            batches = iter(loader)
            batch = next(batches)
        t = time.perf_counter()
        _train_step(model, batch, optimizer, scheduler, accelerator, 1.0)
        if i >= warmup:
            times.append(time.perf_counter() - t)
    queue.put({"steps": steps, "seconds": sum(times), "median_step_s": statistics.median(times)})


def measure(task: str, policy: str, processes: int, threads: int, steps: int, warmup: int,
            precision: str = "no") -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_steps_per_s, args=(task, policy, threads, steps, warmup, queue, precision))
             for _ in range(processes)]
    for p in procs:
        p.start()
    results = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    return {"processes": processes, "threads": threads, "precision": precision,
            "steps_per_s": sum(r["steps"] / r["seconds"] for r in results), "per_process": results}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default="cola,rte", help="comma-separated GLUE tasks (default: cola,rte)")
    parser.add_argument("--policies", default="adapter,full", help="comma-separated policies (default: adapter,full)")
    parser.add_argument("--steps", type=int, default=30, help="timed steps per process (default: 30)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (default: 3)")
    parser.add_argument("--precisions", default="no", help="comma-separated: no, bf16, fp16 (default: no)")
    parser.add_argument("--layouts", default="one,pair", help="one (1 process, all cores), pair, or both (default)")
    parser.add_argument("--cores", type=int, default=os.cpu_count(), help="cores to use (default: all)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "workers.json"))
    parser.add_argument("--table", nargs="+", metavar="JSON",
                        help="print the markdown table of these result files (nothing is measured)")
    args = parser.parse_args(argv)
    if args.table:
        print(markdown_table([json.loads(Path(p).read_text()) for p in args.table]))
        return 0
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    rows = []
    layouts = args.layouts.split(",")
    pair_threads = max(1, args.cores // 2)
    for task in args.tasks.split(","):
        for policy in args.policies.split(","):
            for precision in args.precisions.split(","):
                row = {"task": task, "policy": policy, "precision": precision}
                if "one" in layouts:
                    row["one"] = measure(task, policy, 1, args.cores, args.steps, args.warmup, precision)
                if "pair" in layouts:
                    row["pair"] = measure(task, policy, 2, pair_threads, args.steps, args.warmup, precision)
                if "one" in row and "pair" in row:
                    row["ratio_pair_over_one"] = row["pair"]["steps_per_s"] / row["one"]["steps_per_s"]
                rows.append(row)
                parts = [f"{task:<6} {policy:<8} {precision:<5}"]
                parts += [f"one {args.cores}-thread: {row['one']['steps_per_s']:.3f} steps/s"] if "one" in row else []
                if "pair" in row:
                    parts += [f"two {pair_threads}-thread: {row['pair']['steps_per_s']:.3f} steps/s"]
                parts += [f"ratio {row['ratio_pair_over_one']:.2f}"] if "ratio_pair_over_one" in row else []
                print("   ".join(parts), flush=True)
                _write(args, rows)  # after every row, so a stopped measurement keeps what it measured
    print(f"written: {args.out}")
    return 0


def markdown_table(results: list[dict]) -> str:
    """One row per task and policy: steps/s of one C-thread process and of two C/2-thread processes per
    precision, the pair / one ratio, and bf16 / fp32 for one process where both were measured."""
    cells: dict = {}
    for result in results:
        for row in result["rows"]:
            c = cells.setdefault((row["task"], row["policy"]), {})
            for layout in ("one", "pair"):
                if layout in row:
                    c[(layout, row.get("precision", "no"))] = row[layout]["steps_per_s"]
    names = {"cola": "CoLA", "mrpc": "MRPC", "rte": "RTE", "stsb": "STS-B", "sst2": "SST-2"}
    lines = ["| task | policy | bf16: one 2-thread | bf16: two 1-thread | two / one | fp32: one 2-thread "
             "| bf16 / fp32 |",
             "|---|---|---|---|---|---|---|"]

    def f(v, unit=" steps/s"):
        return "-" if v is None else f"{v:.2f}{unit}"

    for (task, policy), c in cells.items():
        one, pair, fp32 = c.get(("one", "bf16")), c.get(("pair", "bf16")), c.get(("one", "no"))
        lines.append(f"| {names.get(task, task)} | {policy} | {f(one)} | {f(pair)} | "
                     f"{f(pair / one if one and pair else None, '')} | {f(fp32)} | "
                     f"{f(one / fp32 if one and fp32 else None, '')} |")
    return "\n".join(lines)


def _write(args, rows) -> None:
    out = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "processor": platform.processor(),
                       "load_average_1min_at_end": os.getloadavg()[0]},
           "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "steps": args.steps, "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    raise SystemExit(main())
