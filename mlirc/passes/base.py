"""Passes as small named objects.

A stage's pipeline is a list of passes of two kinds that run through the same
runner and print the same way:
- `MlirPass`: a pass or nested pipeline of MLIR's, given as pipeline text
  (`"func.func(canonicalize)"`, `"one-shot-bufferize{bufferize-function-boundaries}"`);
- `PythonPass`: a dataclass with a class-level `name` and typed option fields,
  whose `run(module_op)` rewrites the module through the Python bindings.

Both render as pipeline text (`name{option=value}`), and `parse_pipeline`
reads that text back, looking Python passes up by name: `mlirc-opt` runs any
stage's text, Python passes included.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import ClassVar

from .. import ir


class PassFailure(Exception):
    """Raised by a PythonPass to fail; `location` is where in the IR, if known."""

    def __init__(self, message: str, location: str = ""):
        super().__init__(message)
        self.location = location


@dataclass(frozen=True)
class MlirPass:
    """An MLIR pass or nested pipeline, as pipeline text."""
    text: str

    @property
    def name(self) -> str:
        """The pass's own name: `func.func(linalg-fuse-elementwise-ops)` -> the inner pass."""
        text = self.text
        while "(" in text.split("{", 1)[0]:
            text = text[text.index("(") + 1:].rstrip(")")
        return text.split("{", 1)[0].split(",", 1)[0]

    def add_to(self, pass_manager: ir.PassManager) -> None:
        pass_manager.add(self.text)


@dataclass(frozen=True)
class PythonPass:
    """Base of passes written in Python. Subclasses set `name` and may add
    typed option fields; `run` mutates the module operation in place."""
    name: ClassVar[str]
    description: ClassVar[str] = ""

    def run(self, module_op) -> None:
        raise NotImplementedError

    @property
    def text(self) -> str:
        options = [f"{f.name.replace('_', '-')}={_option_text(getattr(self, f.name))}"
                   for f in dataclasses.fields(self)]
        return self.name + ("{" + " ".join(options) + "}" if options else "")

    def add_to(self, pass_manager: ir.PassManager) -> None:
        def callback(op, external_pass):
            try:
                self.run(op)
            except Exception as error:  # reported by the runner with stage and pass
                python_pass_failures.append((self.name, error))
                external_pass.signal_pass_failure()
        pass_manager.add(callback, name=self.name, argument=self.name,
                         description=self.description)


class PatternPass(PythonPass):
    """A PythonPass made of rewrite patterns, applied greedily until fixpoint.

    Subclasses return (root op class or name, callback) pairs from `patterns`;
    a callback `(op, rewriter)` rewrites and returns a falsy value on a match,
    or returns True to decline (MLIR's Python rewrite API convention)."""

    def patterns(self) -> list[tuple[object, typing.Callable]]:
        raise NotImplementedError

    def run(self, module_op) -> None:
        pattern_set = ir.rewrite.RewritePatternSet(module_op.context)
        for root, callback in self.patterns():
            pattern_set.add(root, callback)
        with module_op.context, ir.Location.unknown():
            ir.rewrite.apply_patterns_and_fold_greedily(module_op, pattern_set.freeze())


# (pass name, exception) of Python passes that failed during the current run;
# the runner reads and clears it, since MLIR's own error carries no message.
python_pass_failures: list[tuple[str, Exception]] = []


def _option_text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return str(value)


PYTHON_PASSES: dict[str, type[PythonPass]] = {}


def register_pass(cls: type[PythonPass]) -> type[PythonPass]:
    """Class decorator: makes a PythonPass available by name in pipeline text."""
    if cls.name in PYTHON_PASSES and PYTHON_PASSES[cls.name] is not cls:
        raise ValueError(f"a Python pass named '{cls.name}' is already registered")
    PYTHON_PASSES[cls.name] = cls
    return cls


Pass = typing.Union[MlirPass, PythonPass]


def split_pipeline(text: str) -> list[str]:
    """Top-level elements of pipeline text: 'a,func.func(b,c),d{x=1,2}' -> 3 items."""
    items, depth, current = [], 0, []
    for char in text:
        if char in "({":
            depth += 1
        elif char in ")}":
            depth -= 1
        if char == "," and depth == 0:
            items.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    if "".join(current).strip():
        items.append("".join(current).strip())
    return items


def parse_pass(text: str) -> Pass:
    """One pipeline element: a registered Python pass, else an MLIR pass."""
    name, _, options = text.partition("{")
    cls = PYTHON_PASSES.get(name.strip())
    if cls is None:
        return MlirPass(text)
    return cls(**_parse_options(cls, options.rstrip("}")))


def parse_pipeline(text: str) -> list[Pass]:
    text = text.strip()
    if text.startswith("builtin.module(") and text.endswith(")"):
        text = text[len("builtin.module("):-1]
    return [parse_pass(item) for item in split_pipeline(text)]


def _parse_options(cls: type[PythonPass], text: str) -> dict:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    values = {}
    for item in text.split():
        key, _, raw = item.partition("=")
        attribute = key.replace("-", "_")
        if attribute not in fields:
            raise ValueError(f"pass '{cls.name}' has no option '{key}'; "
                             f"options: {', '.join(fields) or 'none'}")
        values[attribute] = _convert(hints[attribute], raw)
    return values


def _convert(hint, raw: str):
    origin = typing.get_origin(hint)
    if hint is bool:
        return raw in ("", "1", "true", "True")
    if hint in (int, float, str):
        return hint(raw)
    if origin in (list, tuple):
        (element,) = set(typing.get_args(hint)) - {Ellipsis}
        items = [element(x) for x in raw.split(",") if x]
        return tuple(items) if origin is tuple else items
    return raw
