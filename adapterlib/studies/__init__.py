"""Analyses of trained models that the notebooks and sweeps share.

    adapterlib.studies.ablation   remove adapters from spans of layers at inference (paper Fig. 6)
    adapterlib.studies.multitask  AdapterBank: many tasks on one frozen model; storage on disk
    adapterlib.studies.paper      the paper's reported numbers (data/paper/*.csv) for comparison

Nothing is imported here.
"""
