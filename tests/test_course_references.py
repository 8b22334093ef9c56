"""What a student reads points nowhere outside the course: every notebook (its cells and its stored outputs),
the site sources (book/) and the READMEs cite only the paper and files of the project. No absolute path of the
machine that ran a notebook (/tmp/..., /work/..., /home/...), no file outside the project (PAPER.md outside
data/paper/, ../shared), and no reference to an issue tracker a student cannot see ("issue 14", "#12")."""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]

PATTERNS = {
    # a path of the machine: /tmp/x, /work/x, /home/x, /Users/x, /root/x, /var/folders/x (not inside a URL)
    "absolute machine path": re.compile(r"(?<![\w.:/~-])/(?:tmp|work|home|Users|root|private|var/folders)/"),
    # files outside the project: the paper's notes ship as data/paper/PAPER.md; ../shared is not in a clone
    "file outside the project": re.compile(r"(?<!data/paper/)(?<![\w/])(?:PAPER|STYLE)\.md|\.\./shared\b"),
    # tracker references: "issue 14", "issues 29 and 30", "#12" (not an HTML entity, a colour or a heading)
    "tracker reference": re.compile(r"\b(?:issue|issues|PR|pull request)\s+#?\d+|(?<![\w&#/])#\d{1,5}\b(?![\w;])",
                                    re.IGNORECASE),
}

TEXT_OUTPUTS = ("text/plain", "text/markdown", "text/html", "text/latex", "application/json")


def problems(text: str) -> list[tuple[str, str]]:
    """(kind, matched text with its surroundings) for each reference in `text` that leads outside the course."""
    found = []
    for kind, pattern in PATTERNS.items():
        for m in pattern.finditer(text):
            found.append((kind, text[max(0, m.start() - 30):m.end() + 30].replace("\n", " ")))
    return found


def notebook_texts(path: Path):
    """(where, text) for every cell source and every textual stored output of the notebook at `path`."""
    nb = nbformat.read(path, as_version=4)
    for i, cell in enumerate(nb.cells):
        yield f"cell {i} source", cell.source
        for j, out in enumerate(cell.get("outputs", [])):
            if out.get("output_type") == "stream":
                yield f"cell {i} output {j}", out.get("text", "")
            elif out.get("output_type") == "error":
                yield f"cell {i} output {j}", "\n".join(out.get("traceback", []))
            for mime in TEXT_OUTPUTS:
                data = out.get("data", {}).get(mime)
                if data is not None:
                    yield f"cell {i} output {j} {mime}", data if isinstance(data, str) else str(data)


def scanned_files() -> list[Path]:
    files = sorted((ROOT / "notebooks").rglob("*.ipynb")) + sorted((ROOT / "notebooks").glob("*.md"))
    files += sorted(p for p in (ROOT / "book").rglob("*") if p.suffix in {".md", ".yml", ".yaml", ".ipynb"})
    return files + [ROOT / "README.md"]


@pytest.mark.parametrize("path", scanned_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_nothing_points_outside_the_course(path):
    texts = notebook_texts(path) if path.suffix == ".ipynb" else [("text", path.read_text())]
    found = [(where, kind, context) for where, text in texts for kind, context in problems(text)]
    assert found == [], f"{path.relative_to(ROOT)}: {found}"


def test_the_scan_finds_each_kind():
    """The patterns catch what issue 33 found in the course, and let through what is the project's own."""
    bad = ["reused run (record in /tmp/course-runs/sst2-1/record.json)", "see /home/me/x.ipynb",
           "PAPER.md lists the numbers", "../shared/PAPER.md", "issue 14's budget", "(issues 29 and 30)",
           "adapter-bert #9", "pull request 12"]
    fine = ["data/paper/PAPER.md", "https://github.com/google-research/adapter-bert", "&#39;x&#39;",
            "color: #1f77b4", "# 01 · Adapter anatomy", "runs/sst2-abc/record.json", "step 14 of 20",
            "notebooks/02_initialisation_ablation.ipynb#5.-Training", "GLUE_DIR=/path/to/glue"]
    assert [bool(problems(text)) for text in bad] == [True] * len(bad)
    assert [problems(text) for text in fine] == [[]] * len(fine)


def test_every_student_facing_file_is_scanned():
    names = {p.relative_to(ROOT).as_posix() for p in scanned_files()}
    assert {"README.md", "book/paper_map.md", "book/intro.md", "notebooks/README.md"} <= names
    assert len([n for n in names if n.endswith(".ipynb")]) >= 6
