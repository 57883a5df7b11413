"""Transform-dialect scripts applied one op at a time.

A pass marks each op it wants rewritten with an integer attribute (`mark`
= its index), writes one script per op that finds it with
`transform.structured.match attributes {mark = index}`, and hands the
scripts here. An op whose script fails (the vectorizer declines a shape,
say) stays as it was; the marks are removed at the end.
"""

from __future__ import annotations

from .. import ir


def mark(op, name: str, index: int) -> None:
    """Sets `op`'s attribute `name` to `index` (i64), for its script to match."""
    op.attributes[name] = ir.IntegerAttr.get(ir.IntegerType.get_signless(64), index)


def apply_marked(module_op, name: str, scripts: list[str]) -> None:
    """Applies each script (transform IR text with @__transform_main) to
    `module_op`; a failed one leaves its op alone. Then drops the marks."""
    for text in scripts:
        script = ir.Module.parse(text)
        try:
            ir.transform_interpreter.apply_named_sequence(module_op, script.body.operations[0],
                                                          script)
        except (ir.MLIRError, ValueError):  # the bindings raise either
            pass  # declined: the op stays as it was
    for op in ir.walk_ops(module_op):
        if name in op.attributes:
            del op.attributes[name]
