"""Model files: a Python file defining `model()` (a torch.nn.Module) and
`example_inputs()` (a tuple of tensors). The bundled examples follow it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from ..errors import InputError


def load_model_file(path: str | Path):
    """Returns (model, example_inputs) from a model file."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"no such file: {path}")
    if path.suffix != ".py":
        raise InputError(f"{path}: expected a .py model file (or a .mlir module)")
    spec = importlib.util.spec_from_file_location(f"mlirc_model_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        raise InputError(f"{path}: failed to load: {type(error).__name__}: {error}") from None
    for required in ("model", "example_inputs"):
        if not callable(getattr(module, required, None)):
            raise InputError(f"{path}: a model file must define {required}()")
    inputs = module.example_inputs()
    if not isinstance(inputs, (tuple, list)):
        inputs = (inputs,)
    return module.model(), tuple(inputs)
