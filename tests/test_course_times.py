"""README's course times are the committed course-run records' (tools/course_times.py writes them)."""
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import course_times  # noqa: E402

pytestmark = pytest.mark.committed


def test_readme_times_are_the_committed_measurements():
    course, smoke = course_times.measured("course"), course_times.measured("smoke")
    notebooks = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert sorted(course) == notebooks and sorted(smoke) == notebooks  # every notebook ran, and ran ok
    readme = (ROOT / "README.md").read_text()
    rows = {m.group(1): line for line in readme.splitlines() if (m := course_times.ROW.match(line))}
    assert sorted(rows) == notebooks
    for name, line in rows.items():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        assert cells[-2:] == [f"{course[name]:.0f} s", f"{smoke[name]:.0f} s"], name
    assert course_times.main(["--check"]) == 0


def test_course_records_carry_their_provenance():
    for preset in ("course", "smoke"):
        record = json.loads((ROOT / "data" / "course" / f"course_run_{preset}.json").read_text())
        assert record["kind"] == "course_run" and record["preset"] == preset
        assert record["machine"]["cpu_count"] >= 1 and record["git"] and record["versions"]["torch"]
        assert record["total_s"] == pytest.approx(sum(r["seconds"] for r in record["notebooks"].values()), abs=0.5)


def test_with_times_rewrites_only_the_time_cells():
    text = "intro\n| [`01_a`](x) | teaches | paper | 1 s | 2 s |\n| other | row |\n"
    out = course_times.with_times(text, {"01_a": 12.4}, {})
    assert out == "intro\n| [`01_a`](x) | teaches | paper | 12 s | not measured |\n| other | row |\n"
