"""The notebooks read without scrolling sideways: no code line over 100 characters, no code cell over 30
lines, no code cell that prints more than 200 words of prose (issue 27: results are tables, teaching text is
hand-written Markdown; a collapsed <details> block, such as a study's recipe, does not count), and each
notebook's bookkeeping cell (record_results: the key numbers the tests read) is hidden: collapsed in
JupyterLab, left out of the site."""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))
MAX_LINE, MAX_LINES, MAX_WORDS = 100, 30, 200
DETAILS = re.compile(r"<details>.*?</details>", re.S)
PICTURES = ("text/html", "image/png", "image/svg+xml", "image/jpeg")  # tables, figures and widgets: not prose


def code_cells(path: Path):
    nb = nbformat.read(path, as_version=4)
    return [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]


def prose_words(cell) -> int:
    """Words a code cell prints as text (streams, Markdown, plain results), outside collapsed <details> blocks."""
    texts = []
    for out in cell.get("outputs", []):
        data = out.get("data", {})
        if out.get("output_type") == "stream":
            texts.append(out.get("text", ""))
        elif not any(mime in data for mime in PICTURES):
            texts.append(data.get("text/markdown", data.get("text/plain", "")))
    return sum(len(DETAILS.sub("", text).split()) for text in texts)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_code_lines_and_cells_fit(path):
    long_lines = [(i, line) for i, c in code_cells(path) for line in c.source.splitlines() if len(line) > MAX_LINE]
    long_cells = [(i, len(c.source.splitlines())) for i, c in code_cells(path)
                  if len(c.source.splitlines()) > MAX_LINES]
    assert long_lines == [] and long_cells == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_bookkeeping_cell_is_hidden(path):
    cells = [c for _, c in code_cells(path) if "record_results(" in c.source]
    assert len(cells) == 1
    assert "remove-cell" in cells[0].metadata.get("tags", [])
    assert cells[0].metadata.get("jupyter", {}).get("source_hidden") is True
    assert cells[0].get("outputs") == []  # nothing a reader would miss


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_code_cell_prints_more_than_200_words_of_prose(path):
    wordy = [(i, n) for i, c in code_cells(path) if (n := prose_words(c)) > MAX_WORDS]
    assert wordy == []


def test_prose_words_counts_text_and_not_tables_or_collapsed_blocks():
    cell = nbformat.v4.new_code_cell("x")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="one two three\n"),
                    nbformat.v4.new_output("display_data", data={"text/markdown": "four <details>x y z</details> five",
                                                                 "text/plain": "<Markdown>"}),
                    nbformat.v4.new_output("display_data", data={"text/html": "<table>", "text/plain": "a b c d"}),
                    nbformat.v4.new_output("execute_result", data={"text/plain": "six seven"}, execution_count=1)]
    assert prose_words(cell) == 7
