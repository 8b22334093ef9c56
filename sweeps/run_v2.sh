#!/usr/bin/env bash
# The v2 programme (issue 14) in its order, each sweep resuming where it stopped: kill it at any moment and
# run it again. Holds the CPU lock for its lifetime; two 1-thread workers (benchmarks/README.md).
#   nohup bash sweeps/run_v2.sh > v2.log 2>&1 &        # from the project root
# ablation_v2 goes first: two runs (about 0.4 core-h) complete a study (notebook 05's heat maps), and its layer-span
# ablation (sweeps/layer_ablation.py, a few minutes on the dev sets) runs right after it, while the adapter
# checkpoints are on this machine (they are not committed), whenever a record is newer than its tables.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1} TOKENIZERS_PARALLELISM=false
# To stop it: kill the sweep (`pkill -f "adapterlib sweep sweeps/"`); the run in progress is lost, finished
# ones are kept, and the programme ends there instead of going on to the next study. A study whose runs
# partly failed (exit code 1) does not stop the programme: `--retry-failed` reruns those runs later; the
# programme then ends with exit code 1 and names those studies.
exec flock "${ADAPTERLIB_LOCK:-/tmp/adapterlib-cpu.lock}" bash -c '
  failed=""
  for study in ablation_v2 glue_v2 init_v2 size_v2; do
    python -m adapterlib sweep "sweeps/$study.yaml" --workers 2 --threads-per-run 1 --quiet || {
      code=$?; [ "$code" -eq 1 ] || { echo "stopped in $study (exit code $code)" >&2; exit "$code"; }
      failed="$failed $study"; }
    if [ "$study" = ablation_v2 ]; then
      out=data/results/ablation_v2/layer_ablation
      if [ ! -f "$out/layer_ablation_sst2.csv" ] || [ -n "$(find data/results/ablation_v2/runs -maxdepth 1 \
            -name "*.json" -newer "$out/layer_ablation_sst2.csv" 2>/dev/null)" ]; then
        python sweeps/layer_ablation.py data/results/ablation_v2 || failed="$failed layer_ablation"
      fi
    fi
  done
  if [ -n "$failed" ]; then
    echo "finished; runs failed in:$failed (rerun them with --retry-failed)" >&2; exit 1; fi'
