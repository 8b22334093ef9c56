"""What every exercise check shares: the one-line verdict, number formatting, check_value, clear_solutions."""
from __future__ import annotations

import math
import re

_SOLUTION = re.compile(r"^([ \t]*)### BEGIN SOLUTION[ \t]*\n.*?^[ \t]*### END SOLUTION[ \t]*$", re.M | re.S)
_TRUNCATED_STD = 0.8796  # std of a standard normal truncated at +-2, relative to the untruncated std


def clear_solutions(source: str) -> str:
    """The student's version of a solution cell: every BEGIN/END SOLUTION block becomes nbgrader's gap.

    Inside a function or method the gap raises NotImplementedError (the check names it). A gap at the top of
    a cell instead sets what the block's last line assigns to `...`, so the cell runs and the check after it
    says "not computed yet" rather than the notebook stopping on a NameError."""
    def gap(m: re.Match) -> str:
        indent = m[1]
        if indent:
            return f"{indent}# YOUR CODE HERE\n{indent}raise NotImplementedError()"
        names = _last_assigned(m[0])
        if not names:
            return "# YOUR CODE HERE\nraise NotImplementedError()"
        return f"# YOUR CODE HERE\n{' = '.join(names)} = ..."
    return _SOLUTION.sub(gap, source)


def _last_assigned(block: str) -> list[str]:
    """The names the last statement of a top-level solution block assigns (`x = ...` -> ["x"])."""
    import ast

    try:
        body = ast.parse(block).body
    except SyntaxError:
        return []
    last = body[-1] if body else None
    if isinstance(last, ast.Assign):
        return [t.id for t in last.targets if isinstance(t, ast.Name)]
    if isinstance(last, ast.AnnAssign) and isinstance(last.target, ast.Name):
        return [last.target.id]
    return []


def _report(problem: str | None, success: str) -> None:
    """Print the one-line verdict; raise AssertionError(problem) when there is one."""
    if problem and "raised NotImplementedError" in problem:  # the student version's gap, still unfilled
        problem = problem.rstrip(": ") + ": not written yet, fill the gap marked # YOUR CODE HERE"
    if problem:
        print(f"✗ {problem}")
        raise AssertionError(problem)
    print(f"✓ {success}")


def _fmt(x) -> str:
    return f"{x:,}" if isinstance(x, int) else f"{x:.6g}"


def _plain_number(x):
    """np.int64(3), torch.tensor(3), np.array(3.0) -> 3, 3, 3.0; anything else unchanged."""
    if isinstance(x, (bool, int, float)) or not hasattr(x, "item"):
        return x
    try:
        if getattr(x, "dtype", None) is not None and "bool" in str(x.dtype):
            return x
        if (x.numel() if callable(getattr(x, "numel", None)) else getattr(x, "size", 1)) != 1:
            return x
        value = x.item()
    except Exception:  # noqa: BLE001 - not a number after all: reported as such
        return x
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else x


def check_value(name: str, got, expected, rtol: float = 0.0) -> None:
    """Say whether a number the student computed equals `expected` (within relative tolerance `rtol`).

    A numpy or torch number (a 0-d array or tensor, np.int64, ...) counts as the Python number it holds."""
    got = _plain_number(got)
    if got is Ellipsis:
        problem = f"{name}: not computed yet (still `...`): replace the `...` with your code"
    elif isinstance(got, bool) or not isinstance(got, (int, float)):
        problem = f"{name}: got {got!r} ({type(got).__name__}), expected a number"
    elif (got == expected) if rtol == 0 else math.isclose(got, expected, rel_tol=rtol):
        problem = None
    else:
        ratio = f" ({got / expected:.3g}x the right value)" if expected else ""
        problem = f"{name}: {_fmt(got)}, expected {_fmt(expected)}{ratio}"
    _report(problem, "" if problem else f"{name}: {_fmt(got)} is right")


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [""])[0]
