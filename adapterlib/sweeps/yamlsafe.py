"""YAML for sweep files and --set values: bounded, strict, one-line errors.

`yaml.safe_load` builds a "billion laughs" document (aliases of aliases, a few hundred bytes) as a
shared structure that anything walking it (a check, an error message's repr) then spends hours on;
it also keeps the last of two equal keys without a word. `load_yaml` composes the document first,
counts the nodes it expands to (aliases counted as often as they are used, without expanding them),
refuses more than MAX_NODES, and refuses a mapping that repeats a key. Every error is a
`SweepSpecError` naming where the text came from.
"""
from __future__ import annotations

import yaml

from ..errors import AdapterlibError

MAX_NODES = 100_000  # a sweep file's values once aliases are expanded; the repository's largest has under 1,000


class YamlError(AdapterlibError, ValueError):
    """The text is not YAML adapterlib accepts (see the module docstring)."""


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a mapping repeating a key (a later key would silently win)."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                continue  # SafeLoader's own error follows
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first on line {seen[key] + 1})", key_node.start_mark)
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def expanded_size(node, memo: dict | None = None) -> int:
    """How many nodes `node` stands for with every alias expanded (computed once per distinct node)."""
    memo = {} if memo is None else memo
    if id(node) in memo:
        return memo[id(node)]
    memo[id(node)] = 1  # a recursive alias counts once here; SafeLoader builds such a document without looping
    if isinstance(node, yaml.SequenceNode):
        size = 1 + sum(expanded_size(child, memo) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        size = 1 + sum(expanded_size(k, memo) + expanded_size(v, memo) for k, v in node.value)
    else:
        size = 1
    memo[id(node)] = size
    return size


def load_yaml(text: str, where: str):
    """The YAML document in `text` (None when empty); `where` names it in errors."""
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        size = expanded_size(node)
        if size > MAX_NODES:
            raise YamlError(f"{where}: the document expands to {size:,} values (aliases expanded), over the limit "
                            f"of {MAX_NODES:,}")
        return loader.construct_document(node)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise YamlError(f"{where}: invalid YAML: {getattr(e, 'problem', None) or e}"
                        + (f" (line {mark.line + 1})" if mark else "")) from None
    except RecursionError:
        raise YamlError(f"{where}: the document nests too deeply") from None
    finally:
        loader.dispose()
