"""Reproduction studies as sweeps: a YAML grid of runs, executed resumably, then aggregated.

    adapterlib.sweeps.spec        the sweep file: parse, validate, expand into runs (run ids)
    adapterlib.sweeps.overrides   `sweep --set FIELD=VALUE`: the command line's overrides of a sweep file
    adapterlib.sweeps.executor    one run in a worker (training or a papermill notebook); dask pool
    adapterlib.sweeps.pilot       the v2 pilot's decision from its records (`python -m adapterlib pilot`)
    adapterlib.sweeps.driver      run a sweep (`run_sweep`); re-exports the names of plan, queue, progress
    adapterlib.sweeps.plan        what a sweep runs: grid, lrs past its edge, seed stages, order, each run's status
    adapterlib.sweeps.queue       the study lock, the dask queue of runs, copies of other studies' runs (reuse:)
    adapterlib.sweeps.progress    how far a study is (StudyProgress, TaskProgress), cost estimates
    adapterlib.sweeps.status      the README's status tables
    adapterlib.sweeps.aggregate   run records -> tables (Table 1 analog, size and init curves)
    adapterlib.sweeps.selection   the setting chosen on validation (select_best), Table 1's cells (aggregate's)
    adapterlib.sweeps.bootstrap   seed bootstraps: glue_gap, twin runs' differences (aggregate's)

Nothing is imported here: `import adapterlib.sweeps.spec` does not pull dask or pandas.
"""
