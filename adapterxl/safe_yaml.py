"""YAML for recipes and key=value settings, loaded safely: no duplicate keys (the second would
silently replace the first) and no alias expansion beyond a small size (a kilobyte of nested
aliases expands to billions of nodes, exhausting memory when anything walks it)."""
from __future__ import annotations

import yaml

from .errors import AdapterxlError

MAX_NODES = 100_000  # values aliases may add by expansion; real recipes add a few


class _Loader(yaml.SafeLoader):
    def compose_document(self):
        node = super().compose_document()
        memo = {}
        size = _expanded_size(node, memo)
        if size - len(memo) > MAX_NODES:  # what aliases add; a long plain list is no bomb
            raise AdapterxlError(f"{self.name}: aliases expand to more than {MAX_NODES:,} "
                                 f"values; write the values out instead of nesting aliases")
        return node

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen = {}
            for key, _ in node.value:
                if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                    if key.value in seen:
                        raise AdapterxlError(
                            f"{self.name}: line {key.start_mark.line + 1}: duplicate key "
                            f"{key.value!r} (first at line {seen[key.value]}); the second "
                            f"would replace the first")
                    seen[key.value] = key.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def _expanded_size(node, memo: dict) -> int:
    """Nodes after expanding every alias (shared nodes counted at each use)."""
    if id(node) in memo:
        return memo[id(node)]
    memo[id(node)] = 1  # a recursive alias counts once
    if isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(c, memo) for c in node.value)
    elif isinstance(node, yaml.MappingNode):
        size = 1 + sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    else:
        size = 1
    memo[id(node)] = size
    return size


def load(text: str, source: str = "<string>"):
    """Parse one YAML document safely. Syntax errors stay yaml.YAMLError (callers word them);
    duplicate keys, alias bombs and too-deep nesting are AdapterxlError naming `source`."""
    loader = _Loader(text)
    loader.name = source
    try:
        return loader.get_single_data()
    except RecursionError:
        raise AdapterxlError(f"{source}: nested too deeply") from None
    finally:
        loader.dispose()
