"""`python -m adapterlib course` on throwaway notebooks: order, parameters, failures, exit codes."""
import json

import nbformat
import pytest

from adapterlib.cli import build_parser
from adapterlib.course import runner


def _write_notebook(path, body, parameters="x = 1  # help: a number"):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("preset = None  # help: smoke | course | full\n"
                                       "results_path = None  # help: where to write results\n" + parameters)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# throwaway"), params, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.fixture
def course_dir(tmp_path):
    folder = tmp_path / "nbs"
    folder.mkdir()
    _write_notebook(folder / "01_ok.ipynb",
                    "import os\nfrom adapterlib.course import record_results, resolve_preset\n"
                    "record_results(results_path, preset=resolve_preset(preset), x=x, cwd=os.getcwd())")
    _write_notebook(folder / "02_fails.ipynb", "y = 2\nraise ValueError(f'boom with x={x}')")
    _write_notebook(folder / "03_other.ipynb", "from adapterlib.course import record_results\n"
                    "record_results(results_path, z=z)", parameters="z = 'a'  # help: a word")
    (folder / "notes.ipynb").write_text("{}")  # not numbered: not part of the course
    return folder


def _args(*argv):
    return build_parser().parse_args(["course", *argv])


def test_find_notebooks_order_and_selection(course_dir):
    assert [p.name for p in runner.find_notebooks(course_dir)] == ["01_ok.ipynb", "02_fails.ipynb", "03_other.ipynb"]
    assert [p.stem for p in runner.find_notebooks(course_dir, ["03", "1"])] == ["01_ok", "03_other"]
    assert [p.stem for p in runner.find_notebooks(course_dir, ["02_fails.ipynb"])] == ["02_fails"]
    with pytest.raises(ValueError, match="no notebook '07'.*01_ok"):
        runner.find_notebooks(course_dir, ["07"])
    with pytest.raises(FileNotFoundError):
        runner.find_notebooks(course_dir / "missing")


def test_parse_value():
    assert runner.parse_value("3") == 3
    assert runner.parse_value("1e-3") == 1e-3
    assert runner.parse_value("[1, 2]") == [1, 2]
    assert runner.parse_value("None") is None
    assert runner.parse_value("cola") == "cola"


def test_parameters_go_only_where_declared(course_dir, tmp_path):
    args = _args("--notebook-dir", str(course_dir), "--output-dir", str(tmp_path / "out"), "--preset", "smoke",
                 "-p", "x", "5", "-p", "z", "word")
    plans = runner.plan_parameters(runner.find_notebooks(course_dir), args)
    by_name = {nb.stem: plan for nb, plan in plans.items()}
    assert by_name["01_ok"]["x"] == 5 and "z" not in by_name["01_ok"]
    assert by_name["03_other"]["z"] == "word" and "x" not in by_name["03_other"]
    assert all(plan["preset"] == "smoke" for plan in by_name.values())
    assert by_name["01_ok"]["results_path"].endswith("01_ok_results.json")
    with pytest.raises(ValueError, match="no selected notebook has parameter"):
        runner.plan_parameters(runner.find_notebooks(course_dir), _args("-p", "nope", "1"))


def test_course_runs_all_reports_failure_and_exit_code(course_dir, tmp_path, capsys):
    out = tmp_path / "out"
    args = _args("--notebook-dir", str(course_dir), "--output-dir", str(out), "--preset", "smoke", "-p", "x", "7")
    assert args.func(args) == 1
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert any("01_ok" in line and " ok " in line and line.rstrip().endswith(" s") for line in lines)
    assert any("02_fails" in line and "FAILED" in line for line in lines)
    assert any("03_other" in line and " ok " in line for line in lines)  # a failure does not stop the course
    assert "1 of 3 notebooks FAILED" in text
    assert "02_fails: cell In [3] `y = 2`: ValueError: boom with x=7" in text  # [2] is the injected cell
    results = json.loads((out / "01_ok_results.json").read_text())
    assert results["preset"] == "smoke" and results["x"] == 7
    assert results["cwd"] == str(course_dir)  # notebooks run in their own folder
    assert (out / "02_fails.ipynb").exists()  # the executed notebook is kept for inspection


def test_course_success_and_selection(course_dir, tmp_path, capsys):
    out = tmp_path / "out"
    args = _args("--notebook-dir", str(course_dir), "--output-dir", str(out), "--notebooks", "03")
    assert args.func(args) == 0
    text = capsys.readouterr().out
    assert "all 1 notebooks ran" in text and "01_ok" not in text
    assert json.loads((out / "03_other_results.json").read_text()) == {"z": "a"}
    record = json.loads((out / "course_run.json").read_text())  # what the run measured, with provenance
    assert record["kind"] == "course_run" and list(record["notebooks"]) == ["03_other"]
    assert record["notebooks"]["03_other"]["ok"] is True and record["notebooks"]["03_other"]["seconds"] > 0
    assert record["total_s"] == record["notebooks"]["03_other"]["seconds"] and record["preset"] in ("smoke", "course")
    assert {"machine", "git", "versions", "created"} <= set(record) and record["runs_before"] >= 0


def test_progress_shows_cells_on_stderr(course_dir, tmp_path, capsys):
    """--progress: a cell-by-cell bar on stderr under the notebook's line; stdout keeps one result line each."""
    out = tmp_path / "out"
    args = _args("--notebook-dir", str(course_dir), "--output-dir", str(out), "--notebooks", "03", "--progress")
    assert args.func(args) == 0
    captured = capsys.readouterr()
    assert "03_other" in captured.err and "cell" in captured.err  # papermill's bar: "... 03_other: ...cell/s"
    lines = [line for line in captured.out.splitlines() if "03_other" in line]
    assert lines[0].strip() == "[1/1] 03_other" and " ok " in lines[1] and lines[1].rstrip().endswith(" s")
    args = _args("--notebook-dir", str(course_dir), "--output-dir", str(out), "--notebooks", "03", "--no-progress")
    assert args.func(args) == 0
    assert "cell" not in capsys.readouterr().err


def test_list_shows_parameters(course_dir, capsys):
    args = _args("--notebook-dir", str(course_dir), "--list")
    assert args.func(args) == 0
    text = capsys.readouterr().out
    assert "01_ok.ipynb" in text and "x                = 1            a number" in text and "a word" in text


def test_cli_help_and_user_errors(course_dir, capsys):
    from adapterlib.cli import main

    with pytest.raises(SystemExit):
        main(["course", "--help"])
    help_text = capsys.readouterr().out
    for option in ("--preset", "--notebooks", "--output-dir", "-p NAME VALUE", "--model", "--glue-dir",
                   "--notebook-dir", "--list"):
        assert option in help_text
    assert main(["course", "--notebook-dir", str(course_dir), "-p", "nope", "1"]) == 2
    assert "error: no selected notebook has parameter(s) nope" in capsys.readouterr().err


def test_unknown_parameter_name_stops_the_notebook(tmp_path):
    """papermill `-p presett smoke` (a typo): the cell after the parameters cell stops the run, one line naming
    the unknown name and the known ones; a declared name runs as usual."""
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    nb = tmp_path / "01_nb.ipynb"
    _write_notebook(nb, "from adapterlib.course import check_parameters, record_results\n"
                        "check_parameters(globals())\nrecord_results(results_path, x=x)")
    results = tmp_path / "r.json"
    pm.execute_notebook(str(nb), str(tmp_path / "ok.ipynb"), parameters=dict(x=3, results_path=str(results)),
                        kernel_name="python3", progress_bar=False)
    assert json.loads(results.read_text()) == {"x": 3}
    with pytest.raises(PapermillExecutionError) as info:
        pm.execute_notebook(str(nb), str(tmp_path / "typo.ipynb"), parameters=dict(presett="smoke"),
                            kernel_name="python3", progress_bar=False)
    assert info.value.ename == "UnknownParameterError"
    assert "presett" in info.value.evalue and "preset, results_path, x" in info.value.evalue
    assert len(info.value.traceback) == 1  # one line, not a traceback
    executed = nbformat.read(tmp_path / "typo.ipynb", as_version=4)
    outputs = executed.cells[-1].outputs
    assert outputs[-1].output_type == "error"  # stopped in the cell after the parameters


def test_check_parameters_outside_papermill_checks_nothing():
    from adapterlib.course import check_parameters

    check_parameters({})
    check_parameters({"In": ["", "x = 1", "y = 2"]})  # run by hand: no injected cell, nothing to compare
    with pytest.raises(ValueError, match="unknown parameter.*presett"):
        check_parameters({"In": ["", "import os", "preset = None\nx = 1", "# Parameters\npresett = 'smoke'\n", ""]})


def test_course_unknown_parameter_lists_known_names(course_dir, capsys):
    from adapterlib.cli import main

    assert main(["course", "--notebook-dir", str(course_dir), "-p", "presett", "smoke"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "presett" in err and "results_path, x, z" in err
