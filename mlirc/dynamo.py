"""`torch.compile(model, backend="mlirc")`: each graph TorchDynamo captures is
compiled by mlirc. A graph mlirc cannot compile (unsupported ops, dynamic
shapes) runs eagerly instead, with one warning naming why.

Registered through the `torch_dynamo_backends` entry point (pyproject.toml).
Options: torch.compile(..., options={"backend": "iree-cpu"}) picks the mlirc backend.
"""

from __future__ import annotations

import warnings

from .errors import MlircError, UnsupportedOpsError


def mlirc_backend(graph_module, example_inputs, options: dict | None = None):
    import torch
    from .compiler import compile as mlirc_compile

    options = dict(options or {})
    if not all(isinstance(x, torch.Tensor) for x in example_inputs):
        kinds = sorted({type(x).__name__ for x in example_inputs
                        if not isinstance(x, torch.Tensor)})
        return _eager(graph_module, f"symbolic inputs ({', '.join(kinds)}): "
                                    "mlirc compiles static shapes only")
    try:
        compiled = mlirc_compile(graph_module, tuple(example_inputs),
                                 backend=options.pop("backend", "jit"), **options)
    except UnsupportedOpsError as error:
        return _eager(graph_module, "unsupported ops " + ", ".join(op.name for op in error.ops))
    except MlircError as error:
        return _eager(graph_module, str(error).splitlines()[0])

    def run(*args):
        return compiled(*args)
    return run


def _eager(graph_module, reason: str):
    warnings.warn(f"mlirc: running a graph eagerly: {reason}", stacklevel=3)
    return graph_module.forward
