"""Count the test asserts that compare against an English sentence (issue 28: tests check data, not English).

    python tools/prose_asserts.py            # the share, then each offending assert as path:line: sentence
    python tools/prose_asserts.py --quiet    # the share only

An assert counts as prose when the expression it checks (not its failure message) holds a string literal, or the
literal parts of an f-string, of four English words or more (see `words`).
`pytest.raises(..., match=...)` and `pytest.warns(..., match=...)` are asserts too and are counted the same way.
A short key phrase (a flag name, a file name, one or three words of a message) is data and does not count.
tests/test_prose_asserts.py keeps the share at or below MAX_SHARE.
"""
from __future__ import annotations

import argparse
import ast
import re
import sys
from dataclasses import dataclass
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1] / "tests"
MAX_SHARE = 0.03
MIN_WORDS = 4
WORD = re.compile(r"[A-Za-z]+(?:['-][A-Za-z]+)*")
PUNCTUATION = "\"'`()[]{}*,.;:!?"


@dataclass(frozen=True)
class Assert:
    path: Path
    line: int
    sentence: str | None  # the longest sentence the assert checks; None when it checks none


def words(text: str) -> int:
    """The English words in `text`: tokens of letters (an inner ' or - allowed) once quotes, brackets and
    punctuation around them are stripped; numbers, identifiers, paths, flags and regexes are not words."""
    return sum(bool(WORD.fullmatch(token.strip(PUNCTUATION))) for token in text.split())


def literals(node: ast.AST) -> list[str]:
    """The string literals inside an expression; an f-string gives each of its literal parts."""
    found = []
    for sub in ast.walk(node):
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            found.append(sub.value)
    return found


def sentence_in(node: ast.AST) -> str | None:
    longest = max(literals(node), key=words, default="")
    return longest if words(longest) >= MIN_WORDS else None


def _is_raises_match(call: ast.Call) -> ast.AST | None:
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if name not in ("raises", "warns"):
        return None
    return next((kw.value for kw in call.keywords if kw.arg == "match"), None)


def asserts(path: Path) -> list[Assert]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Assert):
            found.append(Assert(path, node.lineno, sentence_in(node.test)))
        elif isinstance(node, ast.Call) and (match := _is_raises_match(node)) is not None:
            found.append(Assert(path, node.lineno, sentence_in(match)))
    return found


def survey(folder: Path = TESTS) -> list[Assert]:
    return [a for path in sorted(folder.glob("test_*.py")) for a in asserts(path)]


def share(found: list[Assert]) -> float:
    return sum(a.sentence is not None for a in found) / max(1, len(found))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=TESTS)
    parser.add_argument("--quiet", action="store_true", help="print the share only")
    args = parser.parse_args(argv)
    found = survey(args.folder)
    prose = [a for a in found if a.sentence is not None]
    print(f"{len(prose)} of {len(found)} asserts compare against a sentence ({share(found):.1%}; "
          f"at most {MAX_SHARE:.0%})")
    if not args.quiet:
        for a in prose:
            print(f"{a.path.relative_to(args.folder.parent)}:{a.line}: {a.sentence!r}")
    return 0 if share(found) <= MAX_SHARE else 1


if __name__ == "__main__":
    sys.exit(main())
