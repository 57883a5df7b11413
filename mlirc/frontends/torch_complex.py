"""Complex numbers as pairs of real numbers, before anything reaches MLIR.

mlirc's backends compute on real element types. A model whose exported
program holds complex tensors (inputs, outputs or anywhere between) is run
again by `RealPairs`: an FX interpreter over the exported graph in which
each complex tensor is a real tensor with a trailing axis of 2 (real part,
imaginary part: the layout of `torch.view_as_real`), and each aten op on
complex values is computed by a rule on those parts. Tracing that
interpreter with torch.export gives a program with real tensors only, which
the rest of the pipeline compiles as any other.

At the boundary a complex input or output is the leaf kind "complex64" or
"complex128" (runtime/structure.py): callers pass and get complex tensors,
the compiled function takes and returns their real pairs. FFTs become
products with DFT matrices (the sizes are static), which is what an MLIR
pipeline without an FFT op can do well for the small transforms models use.
An op on complex values without a rule is refused with its name and the
model's source line.
"""

from __future__ import annotations

import functools

from ..errors import FrontendError, InputError
from ..runtime import structure
from .torch_boundary import has_scalar_outputs
from .torch_complex_pairs import Pair, is_complex_value


def _torch():
    import torch
    return torch


def has_complex(program) -> bool:
    """Whether any value of the exported program is a complex tensor."""
    for node in program.graph_module.graph.nodes:
        values = node.meta.get("val")
        values = values if isinstance(values, (list, tuple)) else [values]
        if any(is_complex_value(v) for v in values):
            return True
    return False


class RealPairs:
    """Builds the real-valued module for an exported program with complex
    values; `module` is what torch.export traces (see the module docstring).
    Its inputs and outputs are the program's, complex ones as real pairs;
    `input_kinds` and `traced_outputs` give the boundary's leaf kinds."""

    def __init__(self, program, leaves: list):
        torch = _torch()
        self.out_spec = program.call_spec.out_spec
        self.input_kinds = [_leaf_kind(leaf) for leaf in leaves]
        output_node = next(n for n in program.graph_module.graph.nodes if n.op == "output")
        user_outputs = [spec.kind.name == "USER_OUTPUT"
                        for spec in program.graph_signature.output_specs]
        values = [argument.meta.get("val") if hasattr(argument, "meta") else argument
                  for argument, user in zip(output_node.args[0], user_outputs) if user]
        self.output_kinds = [_leaf_kind(v) for v in values]
        graph_module = program.module()
        complex_attributes = set()
        for name, value in list(graph_module.state_dict(keep_vars=True).items()):
            if is_complex_value(value):
                _replace_attribute(graph_module, name, torch.view_as_real(value.detach()).clone())
                complex_attributes.add(name)
        self.module = _PairModule(graph_module, complex_attributes, self.input_kinds)

    def real_leaves(self, leaves: list) -> list:
        torch = _torch()
        return [torch.view_as_real(leaf.resolve_conj()) if is_complex_value(leaf) else leaf
                for leaf in leaves]

    def traced_outputs(self, leaves: list):
        return self.out_spec, self.output_kinds


def _leaf_kind(value) -> str:
    """"complex64" / "complex128" for a complex tensor, else a plain leaf."""
    return str(value.dtype).replace("torch.", "") if is_complex_value(value) else structure.LEAF


def _replace_attribute(module, dotted: str, value) -> None:
    *path, name = dotted.split(".")
    for part in path:
        module = getattr(module, part)
    if name in module._parameters:
        del module._parameters[name]
    if name in module._buffers:
        del module._buffers[name]
    module.register_buffer(name, value)


@functools.cache
def _pair_module_class():
    torch = _torch()
    from torch.utils import _pytree as pytree

    from .torch_complex_rules import rule_for

    class PairInterpreter(torch.fx.Interpreter):
        def __init__(self, module, complex_attributes):
            super().__init__(module)
            self.complex_attributes = complex_attributes
            self.extra_traceback = False  # errors stay one line

        def run_node(self, node):
            self.node = node
            return super().run_node(node)

        def get_attr(self, target, args, kwargs):
            value = super().get_attr(target, args, kwargs)
            return Pair(value) if target in self.complex_attributes else value

        def call_module(self, target, args, kwargs):
            if target.startswith("_guards"):  # checks the example's sizes, done on export
                return None
            return super().call_module(target, args, kwargs)

        def call_function(self, target, args, kwargs):
            if target == torch.ops.aten._assert_tensor_metadata.default:
                return None  # the exported program's own check of its inputs
            flat = pytree.tree_leaves((args, kwargs), is_leaf=lambda v: isinstance(v, Pair))
            produced = self.node.meta.get("val")
            produced = produced if isinstance(produced, (list, tuple)) else [produced]
            if not any(isinstance(v, (Pair, complex)) for v in flat) and \
                    not any(is_complex_value(v) for v in produced):
                return super().call_function(target, args, kwargs)
            rule = rule_for(target)
            if rule is None:
                trace = self.node.meta.get("stack_trace") or ""
                line = [t.strip() for t in trace.splitlines() if t.strip().startswith("File")]
                where = f" ({line[-1]})" if line else ""
                raise FrontendError(f"complex numbers: mlirc has no rule for {target} on "
                                    f"complex values yet{where}")
            return rule(self.node, *args, **kwargs)

    class PairModule(torch.nn.Module):
        def __init__(self, graph_module, complex_attributes, input_kinds):
            super().__init__()
            self.graph_module = graph_module
            self.complex_attributes = complex_attributes
            self.input_kinds = input_kinds

        def forward(self, *leaves):
            values = [Pair(v) if kind in structure.COMPLEX_LEAVES else v
                      for v, kind in zip(leaves, self.input_kinds)]
            interpreter = PairInterpreter(self.graph_module, self.complex_attributes)
            outputs = interpreter.run(*values)
            flat = pytree.tree_leaves(outputs, is_leaf=lambda v: isinstance(v, Pair))
            return tuple(v.data if isinstance(v, Pair) else v for v in flat)

    return PairModule


def _PairModule(graph_module, complex_attributes, input_kinds):
    return _pair_module_class()(graph_module, complex_attributes, input_kinds)


def check_boundary(program, kinds: list, export_dynamic) -> None:
    """What a model with complex values may not have yet: Python scalars or
    None at its boundary, dynamic sizes, inputs updated in place."""
    if any(kind != structure.LEAF for kind in kinds) or has_scalar_outputs(program):
        raise InputError("complex tensors together with Python scalar or None arguments "
                         "or results are not supported yet")
    if export_dynamic is not None:
        raise InputError("dynamic_shapes with complex tensors is not supported yet")
    if any(spec.kind.name == "USER_INPUT_MUTATION"
           for spec in program.graph_signature.output_specs):
        raise FrontendError("a model that updates its inputs in place and computes "
                            "with complex numbers is not supported yet")
