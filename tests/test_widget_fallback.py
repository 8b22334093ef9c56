"""Before the kernel runs, each explorer's stored output shows a static view (its caption, table and figure),
not the raw `VBox(children=...)` repr: the display bundle carries HTML and a readable text/plain line next to
the widget view, which JupyterLab draws only when a kernel holds the widget's model."""
import matplotlib

matplotlib.use("Agg")

import pytest

WIDGET = "application/vnd.jupyter.widget-view+json"
TINY_SENTENCES = ("a good film", "a bad film")


def _bundle_of(explorer) -> dict:
    return explorer.widget._repr_mimebundle_()


def _check(bundle, explorer, image: bool):
    assert WIDGET in bundle  # with a kernel: the live widget
    assert not bundle["text/plain"].startswith(("VBox(", "ExplorerBox("))
    assert explorer.view.value in bundle["text/html"]  # the caption and table of the current values
    assert ('<img src="data:image/png;base64,' in bundle["text/html"]) == image


def test_param_explorer_has_a_static_table():
    from adapterlib.course.widgets import ParamExplorer

    explorer = ParamExplorer()
    _check(_bundle_of(explorer), explorer, image=False)


def test_drift_explorer_has_a_static_table_and_figure(tiny_model_dir):
    from adapterlib.course.widgets import InitDriftExplorer, InitDriftProbe

    explorer = InitDriftExplorer(probe=InitDriftProbe(str(tiny_model_dir), sentences=TINY_SENTENCES, size=8))
    _check(_bundle_of(explorer), explorer, image=True)


def test_study_explorer_has_a_static_table_and_figure():
    from adapterlib.course.widgets import StudyExplorer

    try:
        explorer = StudyExplorer(task="sst2")
    except FileNotFoundError as missing:
        pytest.skip(f"stored study not in this clone: {missing}")
    bundle = _bundle_of(explorer)
    _check(bundle, explorer, image=True)
    explorer.budget.value = explorer.budget.options[0][1]  # the static view follows the current values
    assert explorer.view.value in _bundle_of(explorer)["text/html"]
