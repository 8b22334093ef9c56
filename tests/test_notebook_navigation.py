"""Course navigation: every notebook links to its neighbours at the top and the bottom, has a "Before you
start" cell with run times per preset, and uses one heading style (`# NN · Title`, `## 1. Section`)."""
import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))
LINK = re.compile(r"\]\(([^)#\s]+\.ipynb)\)")
UNNUMBERED = {"Before you start", "Summary", "Exercises"}


def markdown(path):
    return ["".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "markdown"]


def first_and_last(path):
    cells = json.loads(path.read_text())["cells"]
    return ["".join(cells[i]["source"]) if cells[i]["cell_type"] == "markdown" else "" for i in (0, -1)]


def test_seven_notebooks():
    assert [p.name[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04", "05", "06", "07"]


@pytest.mark.parametrize("index", range(len(NOTEBOOKS)), ids=[p.stem for p in NOTEBOOKS])
def test_previous_and_next_links_at_top_and_bottom(index):
    path = NOTEBOOKS[index]
    expected = {NOTEBOOKS[i].name for i in (index - 1, index + 1) if 0 <= i < len(NOTEBOOKS)}
    for where, text in zip(("first", "last"), first_and_last(path), strict=True):
        links = set(LINK.findall(text))
        assert links == expected, f"{path.name}: the {where} cell links {sorted(links)}, expected {sorted(expected)}"
        assert all((path.parent / link).is_file() for link in links)
        if index > 0:
            assert text.index(NOTEBOOKS[index - 1].name) < text.index("of 07"), "previous link comes first"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_before_you_start_cell(path):
    cells = markdown(path)
    found = [c for c in cells[:4] if c.startswith("## Before you start")]
    assert len(found) == 1, f"{path.name}: no '## Before you start' cell right after the title"
    text = found[0]
    for needed in ("pip install", "**Read first**", "`smoke`", "`course`", "`full`"):
        assert needed in text, f"{path.name}: 'Before you start' does not mention {needed}"
    for link in LINK.findall(text):  # notebooks to read first exist and come earlier
        assert (path.parent / link).is_file() and link < path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_one_heading_style(path):
    prose = [re.sub(r"^```.*?^```", "", cell, flags=re.M | re.S) for cell in markdown(path)]  # not code blocks
    headings = [line for cell in prose for line in cell.splitlines() if line.startswith("#")]
    titles = [h for h in headings if h.startswith("# ")]
    assert titles == [h for h in titles if h.startswith(f"# {path.name[:2]} · ")] and len(titles) == 1, titles
    numbers = []
    for h in headings:
        if h.startswith("## "):
            text = h[3:]
            match = re.match(r"(\d+)\. \S", text)
            assert match or text in UNNUMBERED, f"{path.name}: heading {h!r} is neither '## N. Title' nor {UNNUMBERED}"
            numbers += [int(match[1])] if match else []
    assert numbers == list(range(1, len(numbers) + 1)), f"{path.name}: sections numbered {numbers}"
