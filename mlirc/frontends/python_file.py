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
    except SystemExit as error:  # a script's sys.exit() is not a model
        raise InputError(f"{path}: exited while loading (SystemExit {error.code}); a model "
                         "file defines model() and example_inputs()") from None
    except Exception as error:
        raise InputError(f"{path}: failed to load: {type(error).__name__}: {error}") from None
    for required in ("model", "example_inputs"):
        if not callable(getattr(module, required, None)):
            raise InputError(f"{path}: a model file must define {required}()")
    try:
        inputs = module.example_inputs()
        model = module.model()
    except (Exception, SystemExit) as error:
        raise InputError(f"{path}: model() or example_inputs() failed: "
                         f"{type(error).__name__}: {error}") from None
    if not isinstance(inputs, (tuple, list)):
        inputs = (inputs,)
    return model, tuple(inputs)
