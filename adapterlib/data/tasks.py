"""The GLUE task registry (:data:`TASKS`, :func:`get_task`) and the GLUE TSV format of each task.

:func:`_parse_tsv` turns one task's TSV bytes into columns ``text_a``, [``text_b``], ``label`` (int class id;
float32 score for STS-B), failing loudly on short lines, empty files and bad labels; where the bytes come from
(a GLUE folder, the bundled copy, the hub) is :mod:`adapterlib.data.glue`'s job.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import AdapterlibError


class UnknownTaskError(AdapterlibError, ValueError):
    """Raised by :func:`get_task` for a name that is not a GLUE task."""


class GlueDataError(AdapterlibError, RuntimeError):
    """GLUE data is missing, unreadable or malformed (the message says where and how to fix it)."""


@dataclass(frozen=True)
class TaskSpec:
    """Everything needed to read, split and score one GLUE task."""

    name: str                       # canonical key in TASKS, e.g. "sst2"
    display: str                    # as in papers, e.g. "SST-2"
    glue_dir_name: str              # directory under GLUE_DIR
    hf_config: str                  # config of the hub dataset nyu-mll/glue
    text_columns: tuple             # 1 or 2 TSV column names (column indices for headerless CoLA)
    label_column: str | int
    labels: tuple[str, ...] | None  # label strings as in the TSV, index = class id; None = regression
    metric: str                     # primary metric, see adapterlib.metrics
    dev_files: dict = field(default_factory=lambda: {"dev": "dev.tsv"}, hash=False)
    header: bool = True

    @property
    def is_regression(self) -> bool:
        return self.labels is None

    @property
    def num_labels(self) -> int:
        return 1 if self.labels is None else len(self.labels)

    @property
    def is_pair(self) -> bool:
        return len(self.text_columns) == 2


_BIN = ("0", "1")
_NLI2 = ("entailment", "not_entailment")
# Label orders match the hub's ClassLabel ids (e.g. WNLI/SST-2 "1" = entailment/positive), so both sources agree.
TASKS: dict[str, TaskSpec] = {s.name: s for s in (
    TaskSpec("cola", "CoLA", "CoLA", "cola", (3,), 1, _BIN, "mcc", header=False),
    TaskSpec("sst2", "SST-2", "SST-2", "sst2", ("sentence",), "label", _BIN, "accuracy"),
    TaskSpec("mrpc", "MRPC", "MRPC", "mrpc", ("#1 String", "#2 String"), "Quality", _BIN, "f1"),
    TaskSpec("stsb", "STS-B", "STS-B", "stsb", ("sentence1", "sentence2"), "score", None, "spearman"),
    TaskSpec("qqp", "QQP", "QQP", "qqp", ("question1", "question2"), "is_duplicate", _BIN, "f1"),
    TaskSpec("mnli", "MNLI", "MNLI", "mnli", ("sentence1", "sentence2"), "gold_label",
             ("entailment", "neutral", "contradiction"), "accuracy",
             dev_files={"dev_matched": "dev_matched.tsv", "dev_mismatched": "dev_mismatched.tsv"}),
    TaskSpec("qnli", "QNLI", "QNLI", "qnli", ("question", "sentence"), "label", _NLI2, "accuracy"),
    TaskSpec("rte", "RTE", "RTE", "rte", ("sentence1", "sentence2"), "label", _NLI2, "accuracy"),
    TaskSpec("wnli", "WNLI", "WNLI", "wnli", ("sentence1", "sentence2"), "label", _BIN, "accuracy"),
)}


def _norm(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def get_task(name: str | TaskSpec) -> TaskSpec:
    """Look up a task case-insensitively, ignoring '-', '_' and spaces ("SST-2", "sts_b", "CoLA")."""
    if isinstance(name, TaskSpec):
        return name
    key = _norm(str(name))
    for spec in TASKS.values():
        if key in (spec.name, _norm(spec.display), _norm(spec.glue_dir_name), _norm(spec.hf_config)):
            return spec
    known = ", ".join(f"{s.name} ({s.display})" for s in TASKS.values())
    raise UnknownTaskError(f"unknown GLUE task {name!r}; known tasks: {known}")


def _parse_tsv(source, spec: TaskSpec, where: str) -> pd.DataFrame:
    """:func:`read_tsv` on a path or a binary file object; ``where`` names it in errors."""
    data = source.read() if hasattr(source, "read") else Path(source).read_bytes()
    _check_field_counts(data, where)
    source = io.BytesIO(data)
    try:
        raw = pd.read_csv(source, sep="\t", quoting=csv.QUOTE_NONE, dtype=str, keep_default_na=False,
                          encoding="utf-8-sig", header=0 if spec.header else None)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise GlueDataError(f"cannot parse {where} as a GLUE {spec.display} TSV: {exc}") from exc
    missing = [c for c in (*spec.text_columns, spec.label_column) if c not in raw.columns]
    if missing:
        raise GlueDataError(f"{where}: missing column(s) {missing}; found {list(raw.columns)}")
    _check_rows(raw, spec, where)
    out = pd.DataFrame({"text_a": raw[spec.text_columns[0]]})
    if spec.is_pair:
        out["text_b"] = raw[spec.text_columns[1]]
    out["label"] = _parse_labels(raw[spec.label_column], spec, where)
    return out.reset_index(drop=True)


STSB_RANGE = (0.0, 5.0)  # STS-B similarity scores (GLUE)


def _check_field_counts(data: bytes, where: str) -> None:
    """Every line has as many tab-separated fields as the first (the header, or the first row): pandas fills a
    short line's missing fields with "" (a CoLA row without its sentence would train as an empty sentence)."""
    lines = data.splitlines()
    if not lines:
        return
    expected = lines[0].count(b"\t")
    for number, line in enumerate(lines, 1):
        tabs = line.count(b"\t")
        if tabs < expected and line.strip():
            raise GlueDataError(f"{where}: line {number} has {tabs + 1} tab-separated field(s), expected "
                                f"{expected + 1} (a short line)")


def _check_rows(raw: pd.DataFrame, spec: TaskSpec, where: str) -> None:
    """A file with no data row is refused here, naming it, not later as a datasets error."""
    if raw.empty:
        raise GlueDataError(f"{where}: no data rows{' (a header only)' if spec.header else ''}")


def _parse_labels(column: pd.Series, spec: TaskSpec, where: str) -> pd.Series:
    """Map label strings to class ids (or floats for STS-B); fail loudly on the first bad one."""
    if spec.is_regression:
        values = pd.to_numeric(column, errors="coerce").astype("float32")
        values = values.where(values.between(*STSB_RANGE))  # 99, inf, -1: not a similarity score
    else:
        values = column.map({lab: i for i, lab in enumerate(spec.labels)})
    bad = np.flatnonzero(values.isna().to_numpy())
    if len(bad):
        row = int(bad[0])
        line = row + (2 if spec.header else 1)  # 1-based line in the file, counting the header
        expected = (f"a number from {STSB_RANGE[0]:g} to {STSB_RANGE[1]:g}" if spec.is_regression
                    else f"one of {list(spec.labels)}")
        raise GlueDataError(f"{where}: line {line} (data row {row}) has label {column.iloc[row]!r}, "
                            f"expected {expected} ({len(bad)} bad row(s) in total)")
    return values if spec.is_regression else values.astype("int64")


def task_order(tasks) -> list[str]:
    """The distinct task names in `tasks`, in GLUE's order (the paper's Table 1 columns); unknown ones last."""
    order = list(TASKS)
    return sorted(set(tasks), key=lambda t: order.index(t) if t in order else len(order))


def task_label(task: str) -> str:
    """Column name of a task, as in the paper's Table 1 (MNLI is scored on dev matched)."""
    spec = get_task(task)
    return "MNLI-m" if spec.name == "mnli" else spec.display

