"""Dynamic dimensions: which input and output sizes are symbols, their
bounds, and the output sizes as expressions of the input sizes.

A dynamic signature stores, next to its TensorSpecs (whose dynamic dims are
-1, printed `?`), one JSON-friendly record:

    {"symbols": {"s0": {"min": 1, "max": 64, "example": 4}},
     "inputs":  [[input index, axis, "s0"], ...],
     "outputs": [[output index, axis, "s0 * 2"], ...]}

A call binds each symbol to the size it finds (the same symbol must have the
same size everywhere, within its bounds) and evaluates the output sizes, so
the caller can allocate the outputs the compiled code writes. Expressions are
torch.export's (sympy) printed as text and read back by a small evaluator
over integers (+ - * // %, Max, Min), never by eval: artifacts are untrusted.
"""

from __future__ import annotations

import ast
import functools

from ..errors import InputError

MAX_EXPRESSION_LENGTH = 200


def evaluate(expression: str, sizes: dict[str, int]) -> int:
    """The integer value of `expression` with symbols bound to `sizes`."""
    return _evaluate(_parse(expression), sizes, expression)


def check_expression(expression: str, symbols) -> None:
    """Raises InputError unless `expression` is readable and uses only `symbols`."""
    tree = _parse(expression)
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id not in symbols and node.id not in _CALLS:
            raise InputError(f"size expression '{expression}' uses unknown symbol {node.id}")
    _evaluate(tree, {name: 2 for name in symbols}, expression)


def _parse(expression: str) -> ast.AST:
    if not isinstance(expression, str) or len(expression) > MAX_EXPRESSION_LENGTH:
        raise InputError(f"size expression {expression!r} is not a short string")
    return _parse_text(expression)


@functools.lru_cache(maxsize=1024)  # each call sizes its outputs: parse once
def _parse_text(expression: str) -> ast.AST:
    try:
        return ast.parse(expression, mode="eval").body
    except SyntaxError:
        raise InputError(f"cannot read size expression '{expression}'") from None


_OPERATORS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b,
              ast.Mult: lambda a, b: a * b, ast.FloorDiv: lambda a, b: a // b,
              ast.Mod: lambda a, b: a % b}
_CALLS = {"Max": max, "Min": min}


def _evaluate(node: ast.AST, sizes: dict[str, int], text: str) -> int:
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if isinstance(node, ast.Name) and node.id in sizes:
        return sizes[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_evaluate(node.operand, sizes, text)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        left, right = _evaluate(node.left, sizes, text), _evaluate(node.right, sizes, text)
        if isinstance(node.op, (ast.FloorDiv, ast.Mod)) and right == 0:
            raise InputError(f"size expression '{text}' divides by zero")
        return _OPERATORS[type(node.op)](left, right)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
            node.func.id in _CALLS and node.args and not node.keywords:
        return _CALLS[node.func.id](_evaluate(a, sizes, text) for a in node.args)
    raise InputError(f"size expression '{text}' is not integer arithmetic over the "
                     "input sizes")


def check_record(record, inputs: list, outputs: list) -> None:
    """Raises InputError unless `record` fits the specs: every -1 dim of an
    input or output is named exactly once, and nothing else is."""
    if not isinstance(record, dict) or set(record) - {"symbols", "inputs", "outputs"}:
        raise InputError("the dynamic-dimension record is not a dict of symbols, "
                         "inputs and outputs")
    symbols = record.get("symbols", {})
    if not isinstance(symbols, dict) or not all(
            isinstance(name, str) and name.isidentifier() and isinstance(bounds, dict)
            and all(type(bounds.get(key, 0)) is int or bounds.get(key) is None
                    for key in ("min", "max", "example"))
            for name, bounds in symbols.items()):
        raise InputError("the dynamic-dimension symbols are not name -> {min, max, example}")
    for kind, specs in (("inputs", inputs), ("outputs", outputs)):
        entries = record.get(kind, [])
        named = set()
        for entry in entries if isinstance(entries, list) else [None]:
            if not (isinstance(entry, list) and len(entry) == 3 and type(entry[0]) is int
                    and type(entry[1]) is int and isinstance(entry[2], str)
                    and 0 <= entry[0] < len(specs)
                    and 0 <= entry[1] < len(specs[entry[0]].shape)
                    and specs[entry[0]].shape[entry[1]] == -1):
                raise InputError(f"dynamic {kind} entry {entry!r} does not name a dynamic "
                                 "dimension")
            if kind == "inputs" and entry[2] not in symbols:
                raise InputError(f"dynamic input entry {entry!r} names an unknown symbol")
            if kind == "outputs":
                check_expression(entry[2], symbols)
            named.add((entry[0], entry[1]))
        wanted = {(i, axis) for i, spec in enumerate(specs)
                  for axis, size in enumerate(spec.shape) if size == -1}
        if named != wanted or len(named) != len(entries):
            raise InputError(f"the dynamic dimensions of the {kind} are not each named once")


def bind(record: dict, shapes: list[tuple], describe) -> dict[str, int]:
    """Each symbol's size in this call's input `shapes`; InputError when a
    symbol has two sizes or one outside its bounds. `describe(i)` names input i."""
    sizes: dict[str, int] = {}
    for index, axis, symbol in record.get("inputs", []):
        size = shapes[index][axis]
        if sizes.setdefault(symbol, size) != size:
            raise InputError(f"{describe(index)}: dimension {axis} is {size}, but another "
                             f"input has {sizes[symbol]} for the same size ({symbol})")
        bounds = record["symbols"][symbol]
        low, high = max(bounds.get("min") or 1, 1), bounds.get("max")
        if size < low or (high is not None and size > high):
            raise InputError(f"{describe(index)}: dimension {axis} is {size}, outside the "
                             f"compiled range {low}..{high if high is not None else 'any'}")
    return sizes


def output_shapes(record: dict, outputs: list, sizes: dict[str, int]) -> list[tuple]:
    shapes = [list(spec.shape) for spec in outputs]
    for index, axis, expression in record.get("outputs", []):
        shapes[index][axis] = evaluate(expression, sizes)
        if shapes[index][axis] < 0:
            raise InputError(f"output {index}: size expression '{expression}' gives "
                             f"{shapes[index][axis]} for {sizes}")
    return [tuple(shape) for shape in shapes]


def example_sizes(record: dict) -> dict[str, int]:
    return {name: bounds.get("example") or max(bounds.get("min") or 1, 1)
            for name, bounds in record.get("symbols", {}).items()}
