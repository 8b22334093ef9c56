"""The README's course timings, from the committed course-run records (never typed by hand).

`python -m adapterlib course` writes course_run.json next to the executed notebooks: each notebook's wall time,
the machine, the git revision. Copy a fresh-clone run's file to data/course/course_run_<preset>.json, then

    python tools/course_times.py            # rewrite the two time columns of README.md's notebook table
    python tools/course_times.py --check    # exit 1 if README.md differs from the records (tests run this check)
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECORDS = ROOT / "data" / "course"
ROW = re.compile(r"^\| \[`(\d\d_[a-z0-9_]+)`\]")


def measured(preset: str, folder: Path = RECORDS) -> dict[str, float]:
    """Seconds per notebook stem in the committed course run at `preset`."""
    record = json.loads((folder / f"course_run_{preset}.json").read_text())
    assert record["preset"] == preset, f"{preset}: the record says preset {record['preset']}"
    return {name: r["seconds"] for name, r in record["notebooks"].items() if r["ok"]}


def with_times(readme: str, course: dict[str, float], smoke: dict[str, float]) -> str:
    """README text whose notebook-table rows end with the measured course and smoke times."""
    lines = []
    for line in readme.splitlines():
        match = ROW.match(line)
        if match:
            cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
            name = match.group(1)
            cells[-2:] = [f"{course[name]:.0f} s" if name in course else "not measured",
                          f"{smoke[name]:.0f} s" if name in smoke else "not measured"]
            line = "| " + " | ".join(cells) + " |"
        lines.append(line)
    return "\n".join(lines) + ("\n" if readme.endswith("\n") else "")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true", help="do not write: exit 1 if README.md is not current")
    args = p.parse_args(argv)
    readme = ROOT / "README.md"
    text = readme.read_text()
    new = with_times(text, measured("course"), measured("smoke"))
    if args.check:
        if new != text:
            print("README.md's course times differ from data/course/: run python tools/course_times.py",
                  file=sys.stderr)
            return 1
        return 0
    readme.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
