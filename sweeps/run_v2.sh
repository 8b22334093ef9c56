#!/usr/bin/env bash
# The v2 programme (issue 14) in its order, each sweep resuming where it stopped: kill it at any moment and
# run it again. Holds the CPU lock for its lifetime; two 1-thread workers (benchmarks/README.md).
#   nohup bash sweeps/run_v2.sh > v2.log 2>&1 &        # from the project root
# Then, for the heat maps: python sweeps/layer_ablation.py data/results/ablation_v2
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1} TOKENIZERS_PARALLELISM=false
# To stop it: kill the sweep (`pkill -f "adapterlib sweep sweeps/"`); the run in progress is lost, finished
# ones are kept, and the programme ends there instead of going on to the next study. A study whose runs
# partly failed (exit code 1) does not stop the programme: `--retry-failed` reruns those runs later; the
# programme then ends with exit code 1 and names those studies.
exec flock "${ADAPTERLIB_LOCK:-/tmp/adapterlib-cpu.lock}" bash -c '
  failed=""
  for study in glue_v2 size_v2 init_v2 ablation_v2; do
    python -m adapterlib sweep "sweeps/$study.yaml" --workers 2 --threads-per-run 1 --quiet || {
      code=$?; [ "$code" -eq 1 ] || { echo "stopped in $study (exit code $code)" >&2; exit "$code"; }
      failed="$failed $study"; }
  done
  if [ -n "$failed" ]; then
    echo "finished; runs failed in:$failed (rerun them with --retry-failed)" >&2; exit 1; fi'
