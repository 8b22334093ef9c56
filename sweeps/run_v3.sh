#!/usr/bin/env bash
# The v3 programme (issue 29) in its order, each sweep resuming where it stopped: kill it at any moment and run it
# again. Holds the CPU lock for its lifetime; two 1-thread workers (benchmarks/README.md); fp32 throughout.
#   nohup bash sweeps/run_v3.sh > v3.log 2>&1 &        # from the project root (a pinned clone)
# methods_v3_core first (methods_v3's first phase: Houlsby m = 16, Pfeiffer, LoRA and BitFit on four tasks, 3
# seeds: what the issue's "done when" needs), then impl_v3 (the implementation dial; its paper variant is copied
# from methods_v3's runs), then the rest of methods_v3 (prefix tuning, (IA)3, Houlsby m = 8 and 32, RTE, the Houlsby
# rows' seeds 3-4; it reruns nothing the core trained), then curve_v3 (the rank/size curve, reusing methods_v3's
# points). Each file's header gives its run count and measured minutes per run.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1} TOKENIZERS_PARALLELISM=false
# A study whose runs partly failed (exit code 1) does not stop the programme: `--retry-failed` reruns those runs
# later; the programme then ends with exit code 1 and names those studies.
exec flock "${ADAPTERLIB_LOCK:-/tmp/adapterlib-cpu.lock}" bash -c '
  failed=""
  for study in ${ADAPTERLIB_V3_STUDIES:-methods_v3_core impl_v3 methods_v3 curve_v3}; do
    python -m adapterlib sweep "sweeps/$study.yaml" --workers 2 --threads-per-run 1 --quiet || {
      code=$?; [ "$code" -eq 1 ] || { echo "stopped in sweeps/$study.yaml (exit code $code)" >&2; exit "$code"; }
      failed="$failed $study"; }
  done
  if [ -n "$failed" ]; then
    echo "finished; runs failed in:$failed (rerun them with --retry-failed)" >&2; exit 1; fi'
