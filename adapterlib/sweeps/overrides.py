"""`sweep --set FIELD=VALUE`: the command line's overrides of a sweep file's fields (adapterlib.sweeps.spec
applies them over every run, after base, per_task and the grid)."""
from __future__ import annotations

from .spec import SweepSpecError
from .yamlsafe import YamlError, load_yaml


def parse_overrides(items: list[str] | None) -> dict:
    """--set FIELD=VALUE (values read as YAML: 3.0e-4, null, [0, 1], text)."""
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SweepSpecError(f"--set expects FIELD=VALUE, got {item!r}")
        try:
            parsed = load_yaml(value, f"--set {key.strip()}") if value.strip() else None
        except YamlError as e:
            raise SweepSpecError(str(e)) from None
        # YAML 1.1 reads no/yes/on/off as booleans: --set mixed_precision=no means the string; only
        # true/false are booleans here (as in a sweep file, where a bool field takes YAML true/false)
        if isinstance(parsed, bool) and value.strip().lower() not in ("true", "false"):
            parsed = value.strip()
        out[key.strip()] = parsed
    return out
