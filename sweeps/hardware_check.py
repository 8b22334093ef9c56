"""Does a run's result depend on the machine it trained on? Each run of a study next to its twin (the same
run id: the same settings and seed) in a reference study that trained it elsewhere.

    python sweeps/hardware_check.py                                # hardware_check (GPU) against glue_v2 (CPU)
    python sweeps/hardware_check.py --study X --reference Y

Prints every pair and, per setting, the mean difference (study - reference) of dev and of validation scores,
each with a 95% seed bootstrap interval; writes both tables to <study>/twins/twin_pairs.csv and
twin_differences.csv (a test checks the committed ones against the records), and twin_pairs.png: each run's
score on the reference machine against its twin's. An interval that excludes 0 says
the machine moves the score systematically, so a study whose runs trained on different machines compares its
rows across machines at that cost.
"""
from __future__ import annotations

import argparse
import sys

import pandas as pd

from adapterlib.paths import replacing
from adapterlib.sweeps.aggregate import study_dir, twin_differences, twin_pairs, twin_summary, write_twin_tables


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    parser.add_argument("--study", default="hardware_check", help="the runs trained again (default: hardware_check)")
    parser.add_argument("--reference", default="glue_v2", help="the study that trained them first (default: glue_v2)")
    args = parser.parse_args(argv)
    try:
        pairs = twin_pairs(args.study, args.reference)
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if pairs.empty:
        print(f"error: no run of {args.study} has a twin in {args.reference} (the same run id, trained there)",
              file=sys.stderr)
        return 1
    diffs = twin_differences(pairs)
    written = write_twin_tables(pairs, diffs, study_dir(args.study) / "twins")
    import matplotlib
    matplotlib.use("Agg")
    from adapterlib import plots
    plots.use_course_style()
    written["plot"] = study_dir(args.study) / "twins" / "twin_pairs.png"
    with replacing(written["plot"]) as tmp:   # atomically: a failed write leaves the old plot
        plots.plot_twin_pairs(pairs).savefig(tmp, bbox_inches="tight", format="png")
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        lr = {"lr": "{:g}".format}  # rounding would print 6e-4 as 0.0
        shown = pairs.drop(columns=["run_id"]).round(2).assign(lr=pairs["lr"])
        print(shown.to_string(index=False, formatters=lr), "\n")
        print(diffs.round(2).assign(lr=diffs["lr"]).to_string(index=False, formatters=lr))
    for line in twin_summary(diffs):
        print(line)
    print("tables:", ", ".join(str(p) for p in written.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
