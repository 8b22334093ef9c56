"""Checks for the course's build-it-yourself exercises (notebooks 01 and 02).

Each check compares the student's code with adapterlib's own and prints one line: what is right,
or exactly what is off. When something is off it also raises AssertionError, so a notebook run
(nbval, papermill) stops at a broken solution.

    check_adapter(MyAdapter)                        # the bottleneck module, built as MyAdapter(d, m)
    check_placement(place_adapters, model)          # its two positions in one layer: place_adapters(layer, d, m)
    check_value("trainable parameters", got, expected)
    check_trainable(select_trainable, model)        # notebook 02: the paper's trained set, select_trainable(model)
    check_train_step(train_step)                    # notebook 02: train_step(model, batch, optimizer, scheduler,
                                                    #              max_grad_norm)

Solutions sit in the notebook between nbgrader's `### BEGIN SOLUTION` / `### END SOLUTION` markers;
`clear_solutions` turns a solution into the text a student starts from, exactly as nbgrader does.
"""
from ._common import check_value, clear_solutions
from .anatomy import check_adapter, check_placement
from .training import check_train_step, check_trainable

__all__ = ["check_adapter", "check_placement", "check_train_step", "check_trainable", "check_value", "clear_solutions"]
