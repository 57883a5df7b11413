"""The nesting of a model's outputs (tuples, lists, dicts) as plain JSON, so it
survives in the IR and in saved artifacts without pickles.

A structure is "*" for a tensor, or {"tuple": [...]}, {"list": [...]},
{"dict": [[key, structure], ...]}. Named tuples (torch.return_types.topk and
friends) become plain tuples.

A Python scalar at the boundary is the leaf "int", "float" or "bool": it
travels as a 0-d tensor (i64, f64, i1) and is a Python value again on the
caller's side. A scalar the compiled code was specialized for is the leaf
{"const": value}: a call must pass that value and it is not passed on.
A complex tensor is the leaf "complex64" or "complex128": the compiled code
takes and returns it as real pairs (torch.view_as_real's layout).
"""

from __future__ import annotations

LEAF = "*"
SCALAR_LEAVES = ("int", "float", "bool")
# a complex tensor, passed to the compiled function as its real pairs (a
# trailing axis of 2: real, imaginary), of this real element type
COMPLEX_LEAVES = {"complex64": "float32", "complex128": "float64"}


def is_leaf(node) -> bool:
    if isinstance(node, str):
        return node == LEAF or node in SCALAR_LEAVES or node in COMPLEX_LEAVES
    return isinstance(node, dict) and "const" in node


def scalar_kind(value) -> str | None:
    """"int", "float" or "bool" for a Python (or numpy) scalar, else None."""
    import numbers
    if isinstance(value, bool) or type(value).__name__ in ("bool_", "SymBool"):
        return "bool"
    if isinstance(value, numbers.Integral) or type(value).__name__ == "SymInt":
        return "int"
    if isinstance(value, numbers.Real) or type(value).__name__ == "SymFloat":
        return "float"
    return None


def from_treespec(spec, leaf_kinds: list | None = None) -> object:
    """A torch.utils._pytree.TreeSpec as a structure; `leaf_kinds` gives each
    leaf's kind in flattening order (default: every leaf a tensor)."""
    kinds = iter(leaf_kinds) if leaf_kinds is not None else None
    return _from_treespec(spec, kinds)


def _from_treespec(spec, kinds) -> object:
    if spec.is_leaf():
        return next(kinds) if kinds is not None else LEAF
    children = [_from_treespec(child, kinds) for child in spec.children()]
    if spec.type is dict:
        return {"dict": [[key, child] for key, child in zip(spec.context, children)]}
    if spec.type is list:
        return {"list": children}
    return {"tuple": children}


def leaves(structure) -> list:
    """The leaf kinds ("*", "int", ..., {"const": v}) in flattening order."""
    if is_leaf(structure):
        return [structure]
    kind, children = next(iter(structure.items()))
    if kind == "dict":
        children = [child for _, child in children]
    return [leaf for child in children for leaf in leaves(child)]


def count_leaves(structure) -> int:
    if is_leaf(structure):
        return 1
    kind, children = next(iter(structure.items()))
    if kind == "dict":
        children = [child for _, child in children]
    return sum(count_leaves(c) for c in children)


def unflatten(structure, leaves: list):
    """Rebuilds the nested value from flat leaves, in flattening order."""
    iterator = iter(leaves)

    def build(node):
        if is_leaf(node):
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
    if is_leaf(structure):
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
