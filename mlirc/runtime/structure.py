"""The nesting of a model's outputs (tuples, lists, dicts) as plain JSON, so it
survives in the IR and in saved artifacts without pickles.

A structure is "*" for a tensor, or {"tuple": [...]}, {"list": [...]},
{"dict": [[key, structure], ...]}. Named tuples (torch.return_types.topk and
friends) become plain tuples.
"""

from __future__ import annotations

LEAF = "*"


def from_treespec(spec) -> object:
    """A torch.utils._pytree.TreeSpec as a structure."""
    if spec.is_leaf():
        return LEAF
    children = [from_treespec(child) for child in spec.children()]
    if spec.type is dict:
        return {"dict": [[key, child] for key, child in zip(spec.context, children)]}
    if spec.type is list:
        return {"list": children}
    return {"tuple": children}


def count_leaves(structure) -> int:
    if structure == LEAF:
        return 1
    kind, children = next(iter(structure.items()))
    if kind == "dict":
        children = [child for _, child in children]
    return sum(count_leaves(c) for c in children)


def unflatten(structure, leaves: list):
    """Rebuilds the nested value from flat leaves, in flattening order."""
    iterator = iter(leaves)

    def build(node):
        if node == LEAF:
            return next(iterator)
        kind, children = next(iter(node.items()))
        if kind == "dict":
            return {key: build(child) for key, child in children}
        built = [build(child) for child in children]
        return built if kind == "list" else tuple(built)
    return build(structure)


def flatten_as(structure, value, path: str = "inputs") -> list:
    """The leaves of `value`, read in the order `structure` gives: dict entries
    by key, so a caller's key order does not matter. Raises ValueError naming
    the first place where `value` does not fit."""
    if structure == LEAF:
        return [value]
    kind, children = next(iter(structure.items()))
    if kind == "dict":
        if not isinstance(value, dict):
            raise ValueError(f"{path}: expected a dict, got {type(value).__name__}")
        missing = [key for key, _ in children if key not in value]
        if missing or len(value) != len(children):
            expected = [key for key, _ in children]
            raise ValueError(f"{path}: expected keys {expected}, got {list(value)}")
        return [leaf for key, child in children
                for leaf in flatten_as(child, value[key], f"{path}[{key!r}]")]
    if not isinstance(value, (tuple, list)) or len(value) != len(children):
        size = len(value) if isinstance(value, (tuple, list)) else type(value).__name__
        raise ValueError(f"{path}: expected {len(children)} item(s), got {size}")
    return [leaf for index, (child, item) in enumerate(zip(children, value))
            for leaf in flatten_as(child, item, f"{path}[{index}]")]
