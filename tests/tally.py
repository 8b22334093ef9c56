"""Read the counts out of a command's summary line, so tests compare numbers rather than sentences."""
from __future__ import annotations

import re


def tally(text: str) -> dict[str, int]:
    """{label: count} of the last line of `text` that counts failed runs: "2 ok, 0 failed, 2 already done" gives
    {"ok": 2, "failed": 0, "already done": 2}; "6 runs: 5 done, 1 failed, 0 to run" gives
    {"runs": 6, "done": 5, "failed": 1, "to run": 0}."""
    lines = [line for line in text.splitlines() if re.search(r"\d+ failed", line)]
    assert lines, f"no summary line in {text[-600:]!r}"
    counts = re.findall(r"(?<![\w.])(\d+) (already done|to run|ok|failed|done|runs)(?=[,:;)\s]|$)", lines[-1])
    return {label: int(n) for n, label in counts}
