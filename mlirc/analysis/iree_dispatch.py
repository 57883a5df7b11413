"""IREE's dispatches of a model, their lowering configs, and tuning specs.

iree-compile splits a model into dispatches and gives each a root op (a
convolution, a contraction) and a `lowering_config`: tile sizes for the
workgroups (`distribution`), for the vector registers
(`vector_common_parallel`) and along the reduction (`vector_reduction`).
This module reads them off the per-dispatch benchmark modules iree-compile
writes (`--iree-hal-dump-executable-benchmarks-to`), rewrites a dispatch
with another config to measure it alone, and writes a tuning spec
(`--iree-codegen-tuning-spec-path`): a transform script that matches each
tuned root op by its structure and operand types
(`transform.iree.match.cast_compatible_dag_from_root`) and gives it its
`#iree_codegen.compilation_info`. A spec matches ops after IREE's own
rewrites (a 1x1 convolution has become a matmul-like generic by then),
which attributes put on the input IR do not survive.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import BackendError

_CONFIG_FIELDS = ("distribution", "vector_common_parallel", "vector_reduction")


@dataclass(frozen=True)
class LoweringConfig:
    """The three tile levels of IREE's CPU `lowering_config` (one entry per
    loop of the root op; 0 = not tiled at that level)."""
    distribution: tuple[int, ...]
    parallel: tuple[int, ...]    # vector_common_parallel: the register tile
    reduction: tuple[int, ...]   # vector_reduction: reduction steps per tile

    def attribute(self) -> str:
        def listed(values):
            return "[" + ", ".join(str(v) for v in values) + "]"
        return (f"#iree_cpu.lowering_config<distribution = {listed(self.distribution)}, "
                f"vector_common_parallel = {listed(self.parallel)}, "
                f"vector_reduction = {listed(self.reduction)}>")

    def key(self) -> str:
        """The candidate's name in the tuning database."""
        return "iree:" + ";".join(",".join(str(v) for v in level) for level in
                                  (self.distribution, self.parallel, self.reduction))

    @classmethod
    def from_key(cls, key: str) -> LoweringConfig | None:
        """The config a database row names, or None for anything else."""
        if not isinstance(key, str) or not key.startswith("iree:"):
            return None
        levels = key[len("iree:"):].split(";")
        try:
            values = [tuple(int(v) for v in level.split(",")) for level in levels]
        except ValueError:
            return None
        if len(values) != 3 or len({len(v) for v in values}) != 1 or \
                any(v < 0 for level in values for v in level):
            return None
        return cls(*values)

    @classmethod
    def from_attribute(cls, text: str) -> LoweringConfig | None:
        """From `#iree_cpu.lowering_config<...>` text; None when it has other
        fields (scalable sizes, cache levels) than the three tuned here."""
        body = text[text.index("<") + 1:text.rindex(">")]
        fields = dict(re.findall(r"(\w+) = \[([^\]]*)\]", body))
        if set(fields) != set(_CONFIG_FIELDS) or re.sub(r"\w+ = \[[^\]]*\]|[,\s]", "", body):
            return None
        try:
            levels = [tuple(int(v) for v in fields[f].split(",")) for f in _CONFIG_FIELDS]
        except ValueError:
            return None
        return cls(*levels) if len({len(level) for level in levels}) == 1 else None


@dataclass
class Dispatch:
    name: str                  # main_dispatch_11_matmul_like_128x28x28x64_f32
    benchmark: str             # the benchmark module iree-compile wrote for it
    root: str                  # the root op's text, its lowering_config removed
    operand_types: list[str]   # the root's inputs then outputs
    result_type: str
    default: LoweringConfig    # IREE's own config for it
    translation_info: str      # #iree_codegen.translation_info<...> of its function
    # per operand, the distance between neighbours along its innermost
    # dimension where the dispatch reads it (1 unless it loads a strided view:
    # a strided convolution's input, subsampled in place)
    innermost_strides: list[int] = None

    @property
    def matcher_body(self) -> str:
        """The root op over block arguments, as a spec's DAG matcher sees it."""
        return _rename_operands(self.root, len(self.operand_types))

    @property
    def problem(self) -> str:
        """The tuning database key: what IREE compiles it as, and a digest of
        the op's structure and types (the op name alone may repeat)."""
        digest = hashlib.sha1((self.matcher_body + self.translation_info).encode()).hexdigest()
        short = self.name.split("_dispatch_", 1)[-1].split("_", 1)[-1]
        return f"iree@{short}@{digest[:12]}"

    def function_text(self) -> str:
        """The root op alone in a function (for mlirc's own analysis)."""
        arguments = ", ".join(f"%arg{i}: {t}" for i, t in enumerate(self.operand_types))
        return (f"func.func @root({arguments}) -> {self.result_type} {{\n"
                f"{self.matcher_body}\n  return %root : {self.result_type}\n}}")

    def compilation_info(self, config: LoweringConfig) -> str:
        return (f"#iree_codegen.compilation_info<lowering_config = {config.attribute()}, "
                f"translation_info = {self.translation_info}>")

    def with_config(self, config: LoweringConfig) -> str:
        """The benchmark module with `config` on the root op, as a tuning
        spec would give it: every other op's config and the function's
        pipeline are dropped for IREE to derive again from the root's (a
        module that keeps IREE's configs of the fill and the fused
        consumers fails to compile for convolutions: they go untiled)."""
        text = self.benchmark
        start = text.index(_ROOT_CONFIG)
        end = _balanced_end(text, text.index("<", start))
        marker = "__mlirc_root_config__"
        text = text[:start] + marker + text[end:]
        for key in ("lowering_config = #iree_cpu", "translation_info = #iree_codegen"):
            while (at := text.find(key)) >= 0:
                text = text[:at] + text[_balanced_end(text, text.index("<", at)):]
        text = re.sub(r"\{\s*,\s*", "{", text)
        text = re.sub(r",\s*\}", "}", text)
        text = re.sub(r" attributes\s*\{\s*\}", "", text)
        text = re.sub(r" (attrs =\s*)?\{\s*\}(?= (ins|outs)\(| \{|$)", "", text,
                      flags=re.MULTILINE)
        return text.replace(marker, "compilation_info = " + self.compilation_info(config))


_ROOT_CONFIG = "lowering_config = #iree_cpu.lowering_config<distribution"


def parse_benchmark(text: str) -> Dispatch | None:
    """The dispatch of one benchmark module, or None when its root op has no
    tunable config (elementwise, copies, ukernels, scalable vectors)."""
    if _ROOT_CONFIG not in text or text.count(_ROOT_CONFIG) != 1:
        return None
    at = text.index(_ROOT_CONFIG)
    attribute_start = text.index("#iree_cpu", at)
    default = LoweringConfig.from_attribute(
        text[attribute_start:_balanced_end(text, text.index("<", attribute_start))])
    translation = re.search(r"translation_info = (#iree_codegen\.translation_info<)", text)
    name = re.search(r"func\.func @(\w+)\(\)", text)
    if default is None or translation is None or name is None:
        return None
    translation_info = text[translation.start(1):_balanced_end(text, translation.end(1) - 1)]
    line_start = text.rindex("\n", 0, at) + 1
    first_line_end = text.index("\n", at)
    end = first_line_end
    if text[:first_line_end].rstrip().endswith("{"):  # a region: up to `} -> type`
        closing = re.compile(r"\n\s*\} -> [^\n]*")
        found = closing.search(text, first_line_end)
        if found is None:
            return None
        end = found.end()
    root = _without_config(text[line_start:end].strip())
    operands = re.search(r"ins\(([^:]*) : (.*?)\) outs\(([^:]*) : (.*?)\)", root)
    result = re.search(r"-> (tensor<[^>]*>)\s*$", root)
    if operands is None or result is None or not root.startswith("%"):
        return None
    types = _split_types(operands.group(2)) + _split_types(operands.group(4))
    names = [n.strip() for n in (operands.group(1) + "," + operands.group(3)).split(",")]
    return Dispatch(name.group(1), text, root, types, result.group(1), default,
                    translation_info, [_innermost_stride(text, n) for n in names])


def _innermost_stride(text: str, value: str) -> int:
    """The innermost stride of the buffer `value` is loaded from (1 when it
    is not loaded from a strided view)."""
    load = re.search(re.escape(value) + r" = iree_codegen\.load_from_buffer [^\n]*?"
                     r"strided<\[([\d, ?]+)\]", text)
    if load is None:
        return 1
    innermost = load.group(1).split(",")[-1].strip()
    return int(innermost) if innermost.isdigit() else 1


def _balanced_end(text: str, open_at: int) -> int:
    """The index after the `>` that closes the `<` at `open_at`."""
    depth = 0
    for index in range(open_at, len(text)):
        if text[index] == "<":
            depth += 1
        elif text[index] == ">" and text[index - 1] != "-":  # not an arrow
            depth -= 1
            if depth == 0:
                return index + 1
    raise ValueError("unbalanced attribute")


def _without_config(op: str) -> str:
    start = op.index("lowering_config = ")
    end = _balanced_end(op, op.index("<", start))
    op = op[:start] + op[end:]
    op = re.sub(r",\s*(?=[,}])", "", op, count=1)      # the comma it leaves
    op = re.sub(r"\{\s*,\s*", "{", op, count=1)
    return re.sub(r"\s*(attrs =\s*)?\{\s*\}", "", op, count=1)


def _split_types(text: str) -> list[str]:
    types, depth, current = [], 0, ""
    for char in text:
        depth += char == "<"
        depth -= char == ">"
        if char == "," and depth == 0:
            types.append(current.strip())
            current = ""
        else:
            current += char
    return types + [current.strip()] if current.strip() else types


def _rename_operands(root: str, count: int) -> str:
    """`%7 = op ins(%5, %3 : ...) outs(%6 : ...)` -> the same over %arg0.."""
    operands = re.search(r"ins\(([^:]*) : (.*?)\) outs\(([^:]*) : ", root)
    names = [n.strip() for n in operands.group(1).split(",")] + \
        [n.strip() for n in operands.group(3).split(",")]
    if len(names) != count:
        raise ValueError("operand count")
    ins = ", ".join(f"%arg{i}" for i in range(len(names) - 1))
    renamed = root[:operands.start(1)] + ins + root[operands.end(1):]
    outs_at = renamed.index("outs(", operands.start(1)) + len("outs(")
    renamed = renamed[:outs_at] + f"%arg{len(names) - 1}" + \
        renamed[renamed.index(" :", outs_at):]
    renamed = re.sub(r"^%[\w#]+ =", "%root =", renamed)
    # the body's values numbered from 0, its lines indented alike: the same
    # op in two dispatches reads the same
    numbered: dict[str, str] = {}
    renamed = re.sub(r"%\d+\b", lambda m: numbered.setdefault(m.group(0), f"%v{len(numbered)}"),
                     renamed)
    return "\n".join("      " + line.strip() for line in renamed.splitlines())


# --- iree-compile and iree-benchmark-module ---------------------------------

def tool(name: str) -> str:
    """An IREE command-line tool, next to this Python's (the pip wheels put
    them there) or on PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        raise BackendError(f"{name} not found (pip install iree-base-compiler "
                           f"iree-base-runtime)")
    return found


def dispatches(module_text: str, flags: list[str]) -> list[Dispatch]:
    """Every dispatch of a module at the `linalg` stage that has a tunable
    root op, as iree-compile (with `flags`) forms them."""
    with tempfile.TemporaryDirectory(prefix="mlirc-iree-") as folder:
        source = Path(folder) / "model.mlir"
        source.write_text(module_text)
        dump = Path(folder) / "benchmarks"
        _run([tool("iree-compile"), str(source), "--iree-hal-target-backends=llvm-cpu", *flags,
              f"--iree-hal-dump-executable-benchmarks-to={dump}", "-o", str(Path(folder) / "m")])
        found = [parse_benchmark(_with_resources(path.read_text(), module_text))
                 for path in sorted(dump.glob("*.mlir"))]
    return [d for d in found if d is not None and _self_contained(d)]


def _with_resources(benchmark: str, module_text: str) -> str:
    """The benchmark with the blobs of the constants it names (weights IREE
    inlined into the dispatch), which the dump leaves out."""
    names = sorted(set(re.findall(r"dense_resource<([^>]+)>", benchmark)))
    if not names or "dialect_resources" in benchmark:
        return benchmark
    blobs = []
    for name in names:
        blob = re.search(r"^\s*" + re.escape(name) + r': "(0x[0-9A-Fa-f]*)"', module_text,
                         flags=re.MULTILINE)
        if blob is None:
            return benchmark  # measured as is: iree-compile names what is missing
        blobs.append(f'      {name}: "{blob.group(1)}"')
    return benchmark + "\n{-#\n  dialect_resources: {\n    builtin: {\n" + \
        ",\n".join(blobs) + "\n    }\n  }\n#-}\n"


def _self_contained(dispatch: Dispatch) -> bool:
    """Whether the root op reads only its operands (a body that uses a value
    from around it, a constant say, cannot be matched on its own)."""
    from .. import ir
    try:
        ir.parse_module(dispatch.function_text(), ir.new_context())
    except Exception:
        return False
    return True


def measure(benchmark_text: str, flags: list[str], threads: int, batch: int = 16) -> float:
    """Seconds per run of one dispatch module (the best of 3 repetitions of
    `batch` runs each, on `threads` threads)."""
    with tempfile.TemporaryDirectory(prefix="mlirc-iree-") as folder:
        source, module = Path(folder) / "dispatch.mlir", Path(folder) / "dispatch.vmfb"
        source.write_text(benchmark_text)
        _run([tool("iree-compile"), str(source), "--iree-hal-target-backends=llvm-cpu", *flags,
              "-o", str(module)])
        output = _run([tool("iree-benchmark-module"), f"--module={module}",
                       "--device=local-task", f"--batch_size={batch}",
                       "--benchmark_repetitions=3", f"--task_topology_group_count={threads}"])
    times = [float(value) * _UNIT[unit] for value, unit in re.findall(
        r"^BM_\S+/real_time\s+([\d.]+) (ns|us|ms|s)\b", output, flags=re.MULTILINE)]
    if not times:
        raise BackendError(f"iree-benchmark-module printed no time: {output[-300:]}")
    return min(times)


_UNIT = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}


def _run(command: list[str]) -> str:
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if "error" in line]
        raise BackendError(f"{Path(command[0]).name} failed: "
                           f"{(lines or result.stderr.splitlines() or ['?'])[0][:300]}")
    return result.stdout


# --- tuning specs -------------------------------------------------------------

def tuning_spec(entries: list[tuple[str, list[str], str]]) -> str:
    """A tuning spec giving each matched root op its compilation_info.
    entries: (matcher body, operand types, compilation_info)."""
    matchers, names = [], []
    for index, (body, types, info) in enumerate(entries):
        arguments = ", ".join(f"%arg{i}: {t}" for i, t in enumerate(types))
        names.append(f"@match_{index}")
        matchers.append(f"""  transform.named_sequence @match_{index}(%op: !transform.any_op {{transform.readonly}}) -> (!transform.any_op, !transform.any_param) {{
    %ins, %outs = transform.iree.match.cast_compatible_dag_from_root %op {{
    ^bb0({arguments}):
{body}
    }} : (!transform.any_op) -> (!transform.any_value, !transform.any_value)
    %config = transform.param.constant {info} -> !transform.any_param
    transform.yield %op, %config : !transform.any_op, !transform.any_param
  }}""")
    pairs = ", ".join(f"{name} -> @apply_op_config" for name in names)
    return f"""module attributes {{iree_codegen.tuning_spec_with_default_entrypoint, transform.with_named_sequence}} {{
  transform.named_sequence @apply_op_config(%op: !transform.any_op {{transform.readonly}}, %config: !transform.any_param {{transform.readonly}}) {{
    transform.annotate %op "compilation_info" = %config : !transform.any_op, !transform.any_param
    transform.yield
  }}
{chr(10).join(matchers)}
  transform.named_sequence @__kernel_config(%variant: !transform.any_op {{transform.consumed}}) -> !transform.any_op attributes {{iree_codegen.tuning_spec_entrypoint}} {{
    %result = transform.foreach_match in %variant {pairs} : (!transform.any_op) -> !transform.any_op
    transform.yield %result : !transform.any_op
  }}
}}
"""
