"""Reproduction studies as sweeps: a YAML grid of runs, executed resumably, then aggregated.

    adapterlib.sweeps.spec        the sweep file: parse, validate, expand into runs (run ids)
    adapterlib.sweeps.executor    one run in a worker (training or a papermill notebook); dask pool
    adapterlib.sweeps.pilot       the v2 pilot's decision from its records (`python -m adapterlib pilot`)
    adapterlib.sweeps.driver      run a sweep: plan, seed stages, the study lock, progress, cost estimate, status
    adapterlib.sweeps.aggregate   run records -> tables (Table 1 analog, size and init curves)

Nothing is imported here: `import adapterlib.sweeps.spec` does not pull dask or pandas.
"""
