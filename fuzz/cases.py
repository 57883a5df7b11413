"""Fuzz cases, drawn by Hypothesis strategies from the seed corpus.

A case is plain JSON (`{"target": ..., ...}`) so that it can be sent to a
worker, saved as a finding and replayed. Mutations aim at what broke before:
boundary numbers, element types and shapes in IR, integer attributes of ONNX
nodes, truncated payloads, edited manifests.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings, strategies as st
from hypothesis import seed as hypothesis_seed

BOUNDARY_NUMBERS = ["0", "1", "-1", "2", "3", "-7", "16", "255", "65536", "2147483647",
                    "2147483648", "-2147483649", "9223372036854775807",
                    "18446744073709551616", "1.0e+308", "-0.0", "nan", "inf", ".0", "1.5"]
BOUNDARY_INTS = [0, 1, -1, 2, 3, 5, -7, 1000, 2**31, -2**31 - 1, 2**63 - 1, -2**63]
MLIR_TYPES = ["f32", "f64", "f16", "bf16", "i1", "i8", "i32", "i64", "index", "none",
              "complex<f32>", "tensor<?xf32>", "!llvm.ptr", "vector<4xf32>"]
PUNCTUATION = list("[]{}()<>,:=%^#@!\"x.-?") + ["0x", "\\", "\x00", "\u00e9"]
NUMBER = re.compile(r"(?<![\w%#@])-?\d+(\.\d+)?([eE][+-]?\d+)?")
SCALAR_TYPE = re.compile(r"\b(f16|bf16|f32|f64|i1|i8|i32|i64|index)\b")
SHAPE_DIM = re.compile(r"(?<=[<x])(\d+|\?)(?=x)")
INT_LIST = re.compile(r"\[(-?\d+\s*,\s*)*-?\d+\]")
HEX_BLOB = re.compile(r'"0x[0-9A-Fa-f]+"')


def draw_cases(strategy, count: int, seed: int) -> list:
    """`count` examples of `strategy`, the same ones for the same seed."""
    drawn: list = []

    @hypothesis_seed(seed)
    @settings(max_examples=count, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(case):
        drawn.append(case)

    collect()
    return drawn[:count]


# -- .mlir text at every stage ------------------------------------------------

def _replace_match(draw, text: str, pattern: re.Pattern, replacements) -> str:
    matches = list(pattern.finditer(text))
    if not matches:
        return text
    match = matches[draw(st.integers(0, len(matches) - 1))]
    new = draw(replacements)
    return text[:match.start()] + new + text[match.end():]


def _int_list(draw) -> str:
    values = draw(st.lists(st.sampled_from(BOUNDARY_NUMBERS[:10]), min_size=0, max_size=5))
    return "[" + draw(st.sampled_from([",", ", ", ",."])).join(values) + "]"


@st.composite
def _mutated_text(draw, text: str) -> tuple[str, bool]:
    """(mutated text, whether the mutation keeps the program's meaning)."""
    lines = text.split("\n")
    kind = draw(st.sampled_from([
        "number", "type", "dim", "int-list", "blob", "char", "line-delete",
        "line-duplicate", "line-swap", "truncate", "splice", "comment", "spaces"]))
    if kind == "comment":
        at = draw(st.integers(0, len(lines)))
        return "\n".join(lines[:at] + ["// a comment the parser skips"] + lines[at:]), True
    if kind == "spaces":
        return text.replace(", ", ",  ", draw(st.integers(1, 50))), True
    if kind == "number":
        return _replace_match(draw, text, NUMBER, st.sampled_from(BOUNDARY_NUMBERS)), False
    if kind == "type":
        return _replace_match(draw, text, SCALAR_TYPE, st.sampled_from(MLIR_TYPES)), False
    if kind == "dim":
        return _replace_match(draw, text, SHAPE_DIM,
                              st.sampled_from(["0", "?", "1", "3", "1024", "-1"])), False
    if kind == "int-list":
        return _replace_match(draw, text, INT_LIST, st.just(_int_list(draw))), False
    if kind == "blob":
        blob = st.sampled_from(['"0x00000000"', '"0x"', '"0x0"', '"0xFFFFFFFF0000"',
                                '"0x000000000000803F0000803F"', '"0x04000000"'])
        return _replace_match(draw, text, HEX_BLOB, blob), False
    if kind == "char":
        at = draw(st.integers(0, max(0, len(text) - 1)))
        return text[:at] + draw(st.sampled_from(PUNCTUATION)) + text[at + 1:], False
    if kind == "line-delete":
        at = draw(st.integers(0, len(lines) - 1))
        return "\n".join(lines[:at] + lines[at + 1:]), False
    if kind == "line-duplicate":
        at = draw(st.integers(0, len(lines) - 1))
        return "\n".join(lines[:at + 1] + lines[at:]), False
    if kind == "line-swap":
        a, b = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
        lines[a], lines[b] = lines[b], lines[a]
        return "\n".join(lines), False
    if kind == "truncate":
        return text[:draw(st.integers(0, len(text)))], False
    start = draw(st.integers(0, len(text)))  # splice: a copy of one span elsewhere
    span = text[start:start + draw(st.integers(1, 80))]
    at = draw(st.integers(0, len(text)))
    return text[:at] + span + text[at:], False


def mlir_cases(stage_files: dict[str, str]):
    texts = {stage: Path(path).read_text() for stage, path in stage_files.items()}

    @st.composite
    def case(draw):
        stage = draw(st.sampled_from(sorted(texts)))
        text, preserving = texts[stage], True
        for _ in range(draw(st.integers(1, 2))):
            text, keeps = draw(_mutated_text(text))
            preserving = preserving and keeps
        return {"target": "mlir", "stage": stage, "text": text, "preserving": preserving}

    return case()


# -- ONNX models ------------------------------------------------------------

ONNX_TYPES = [1, 2, 3, 6, 7, 9, 10, 11, 14, 16, 0, 8, 99]  # FLOAT ... BFLOAT16, UNDEFINED, STRING
ONNX_OPS = ["Add", "Mul", "Gemm", "Conv", "MaxPool", "Reshape", "Gather", "Where",
            "Softmax", "Transpose", "NoSuchOp", ""]


@st.composite
def _onnx_mutation(draw, seed_bytes: bytes) -> bytes:
    import onnx
    model = onnx.load_from_string(seed_bytes)
    graph = model.graph
    kind = draw(st.sampled_from(["attr-int", "attr-ints", "attr-drop", "dim", "elem-type",
                                 "raw-data", "rewire", "op-type", "node-drop", "opset",
                                 "bytes"]))
    node = graph.node[draw(st.integers(0, len(graph.node) - 1))]
    if kind in ("attr-int", "attr-ints", "attr-drop") and node.attribute:
        attribute = node.attribute[draw(st.integers(0, len(node.attribute) - 1))]
        if kind == "attr-drop":
            node.attribute.remove(attribute)
        elif attribute.ints:
            at = draw(st.integers(0, len(attribute.ints)))
            values = list(attribute.ints)
            if at < len(values) and draw(st.booleans()):
                values[at] = draw(st.sampled_from(BOUNDARY_INTS))
            else:
                values = values[:at]
            del attribute.ints[:]
            attribute.ints.extend(values)
        else:
            attribute.i = draw(st.sampled_from(BOUNDARY_INTS))
    elif kind == "dim":
        values = list(graph.input) + list(graph.output)
        dims = values[draw(st.integers(0, len(values) - 1))].type.tensor_type.shape.dim
        dim = dims[draw(st.integers(0, len(dims) - 1))]
        choice = draw(st.sampled_from([0, -1, 2, 3, 100000, "N", ""]))
        if isinstance(choice, str):
            dim.dim_param = choice
        else:
            dim.dim_value = choice
    elif kind == "elem-type":
        values = list(graph.input) + list(graph.output)
        if draw(st.booleans()):
            values[draw(st.integers(0, len(values) - 1))].type.tensor_type.elem_type = \
                draw(st.sampled_from(ONNX_TYPES))
        else:
            graph.initializer[draw(st.integers(0, len(graph.initializer) - 1))].data_type = \
                draw(st.sampled_from(ONNX_TYPES))
    elif kind == "raw-data":
        tensor = graph.initializer[draw(st.integers(0, len(graph.initializer) - 1))]
        if draw(st.booleans()):
            tensor.raw_data = tensor.raw_data[:draw(st.integers(0, len(tensor.raw_data)))]
        else:
            at = draw(st.integers(0, len(tensor.dims) - 1))
            tensor.dims[at] = draw(st.sampled_from([0, -1, 1, 7, 1 << 40]))
    elif kind == "rewire":
        names = [v.name for v in graph.input] + [t.name for t in graph.initializer] + \
            [o for n in graph.node for o in n.output] + ["", "missing"]
        at = draw(st.integers(0, len(node.input) - 1))
        node.input[at] = draw(st.sampled_from(names))
    elif kind == "op-type":
        node.op_type = draw(st.sampled_from(ONNX_OPS))
    elif kind == "node-drop":
        graph.node.remove(node)
    elif kind == "opset":
        model.opset_import[0].version = draw(st.sampled_from([0, 1, 7, 11, 13, 21, 99]))
    data = model.SerializeToString()
    if kind == "bytes":
        at = draw(st.integers(0, len(data) - 1))
        if draw(st.booleans()):
            data = data[:at]
        else:
            data = data[:at] + bytes([draw(st.integers(0, 255))]) + data[at + 1:]
    return data


def onnx_cases(seed_bytes: bytes):
    return _onnx_mutation(seed_bytes).map(
        lambda data: {"target": "onnx", "model": base64.b64encode(data).decode()})


# -- command-line --input strings ----------------------------------------------

CLI_TYPES = ["f32", "f64", "f16", "bf16", "i1", "i8", "u8", "si8", "i32", "i64", "bool",
             "c64", "xf32", "", "F32"]
CLI_DIMS = ["1", "3", "8", "0", "99999999999", "-1", "2147483648", "", " 3", "1e3"]
CLI_VALUES = ["1", "0", "-1", "300", "-129", "1e39", "nan", "inf", "true", "False", "2",
              "1.5", "0x10", "", ",", "1,2,3", "1 2 3", "9" * 30, "abc", "--"]
CLI_FILES = ["{good}", "{wrong_shape}", "{corrupt}", "{object}", "{folder}", "{empty}",
             "/no/such/file.npy"]


@st.composite
def _cli_input(draw) -> str:
    form = draw(st.sampled_from(["typed", "typed", "typed", "file", "text"]))
    if form == "file":
        return "@" + draw(st.sampled_from(CLI_FILES))
    if form == "text":
        return draw(st.text(max_size=40))
    dims = draw(st.lists(st.sampled_from(CLI_DIMS), max_size=5))
    dtype = draw(st.sampled_from(CLI_TYPES))
    values = draw(st.lists(st.sampled_from(CLI_VALUES), max_size=6))
    separator = draw(st.sampled_from([",", " ", ", "]))
    return "x".join(dims + [dtype]) + draw(st.sampled_from(["=", "", "=="])) + \
        separator.join(values)


def cli_cases():
    return st.builds(lambda text, whole: {"target": "cli-input", "text": text,
                                          "through_cli": whole},
                     _cli_input(), st.sampled_from([False, False, False, True]))


# -- saved artifacts and cache entries ----------------------------------------

def _json_paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _json_paths(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _json_paths(item, prefix + (index,))


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.sampled_from(BOUNDARY_INTS) | st.floats() |
    st.sampled_from(["", "f64", "i8", "jit", "aot", "x" * 300, "../../etc/passwd"]),
    lambda children: st.lists(children, max_size=3) |
    st.dictionaries(st.sampled_from(["shape", "dtype", "name", "x"]), children, max_size=3),
    max_leaves=6)


def _folder_mutation(seed_folder: Path):
    manifest = json.loads((seed_folder / "manifest.json").read_text())
    paths = [list(p) for p in _json_paths(manifest) if p]
    files = sorted(str(p.relative_to(seed_folder)) for p in seed_folder.rglob("*")
                   if p.is_file())
    return st.one_of(
        st.builds(lambda p, v: {"op": "manifest-set", "path": p, "value": v},
                  st.sampled_from(paths), JSON_VALUES),
        st.builds(lambda p: {"op": "manifest-delete", "path": p}, st.sampled_from(paths)),
        st.builds(lambda f, at, byte: {"op": "flip", "file": f, "at": at, "byte": byte},
                  st.sampled_from(files), st.floats(0, 1), st.integers(0, 255)),
        st.builds(lambda f, at: {"op": "truncate", "file": f, "at": at},
                  st.sampled_from(files), st.floats(0, 1)),
        st.builds(lambda f: {"op": "delete", "file": f}, st.sampled_from(files)),
        st.builds(lambda a, b: {"op": "swap", "file": a, "other": b},
                  st.sampled_from(files), st.sampled_from(files)),
        st.just({"op": "extra", "file": "stray.bin"}))


def artifact_cases(seeds: Path):
    return st.one_of(*[
        _folder_mutation(seeds / f"artifact-{which}").map(
            lambda m, which=which: {"target": "artifact", "which": which, "mutation": m})
        for which in ("jit", "aot")])


def cache_cases(seeds: Path):
    # The cache entry has the layout of a jit artifact.
    return _folder_mutation(seeds / "artifact-jit").map(
        lambda m: {"target": "cache", "mutation": m})


# -- runtime arguments and compile options ---------------------------------------

ARG_DTYPES = ["float32", "float64", "float16", "bfloat16", "int32", "int64", "bool",
              "complex64", "uint8"]
ARG_KINDS = ["numpy", "torch", "torch", "scalar", "list", "none", "str", "sparse", "meta",
             "grad", "channels_last"]
LAYOUTS = ["contiguous", "contiguous", "transposed", "reversed", "strided", "fortran"]
SHAPES = [[1, 3, 8, 8], [1, 3, 8, 8], [2, 3, 8, 8], [0, 3, 8, 8], [1, 3, 8], [3, 8, 8, 1],
          [1, 3, 8, 8, 1], [], [1, 3, 0, 8]]


def _argument():
    return st.fixed_dictionaries({
        "kind": st.sampled_from(ARG_KINDS), "dtype": st.sampled_from(ARG_DTYPES),
        "shape": st.sampled_from(SHAPES), "layout": st.sampled_from(LAYOUTS)})


def runtime_cases():
    return st.builds(
        lambda which, args, kw: {"target": "runtime-args", "which": which, "args": args,
                                 "keyword": kw},
        st.sampled_from(["jit", "aot"]),
        st.lists(_argument(), min_size=0, max_size=3).filter(lambda a: len(a) != 1) |
        st.lists(_argument(), min_size=1, max_size=1),
        st.sampled_from([False, False, True]))


def compile_cases():
    options = st.fixed_dictionaries({}, optional={
        "backend": st.sampled_from(["jit", "aot", "iree-cuda", "", "JIT"]),
        "opt_level": st.sampled_from([0, 1, 2, 3, -1, 4, "3", None, 2.5]),
        "stop_at": st.sampled_from(["linalg", "bufferized", "nope", ""]),
        "blas": st.sampled_from([True, False, "yes", 0]),
        "vectorize": st.sampled_from([True, False, None]),
        "name": st.sampled_from(["", "a" * 300, "../x", "ok"]),
        "input_shapes": st.sampled_from([{}, {"x": [1]}, [1, 2], "x"]),
    })
    return st.builds(lambda shape, dtype, o: {"target": "compile-args", "shape": shape,
                                              "dtype": dtype, "options": o},
                     st.sampled_from(SHAPES), st.sampled_from(["float32", "float32",
                                                               "float64", "int64"]),
                     options)


# -- all together ----------------------------------------------------------------

# Share of the cases each target gets (a run of 10,000 gives mlir 3,000...).
SHARES = {"mlir": 0.30, "onnx": 0.15, "cli-input": 0.20, "artifact": 0.15, "cache": 0.05,
          "runtime-args": 0.12, "compile-args": 0.03}


def generate(seeds: Path, count: int, seed: int, targets=None) -> list[dict]:
    """`count` cases over the targets (by SHARES), interleaved, deterministic."""
    from .seeds import stage_files
    strategies = {
        "mlir": lambda: mlir_cases(stage_files(seeds)),
        "onnx": lambda: onnx_cases((seeds / "model.onnx").read_bytes()),
        "cli-input": cli_cases, "artifact": lambda: artifact_cases(seeds),
        "cache": lambda: cache_cases(seeds), "runtime-args": runtime_cases,
        "compile-args": compile_cases}
    chosen = {t: s for t, s in SHARES.items() if targets is None or t in targets}
    total = sum(chosen.values())
    per_target = [draw_cases(strategies[t](), max(1, round(count * share / total)), seed)
                  for t, share in chosen.items()]
    cases = [c for group in _interleave(per_target) for c in group]
    return cases[:count]


def _interleave(groups):
    longest = max(len(g) for g in groups)
    for index in range(longest):
        yield [g[index] for g in groups if index < len(g)]
