"""mlirc: compile machine-learning models through MLIR to native code.

    import mlirc
    compiled = mlirc.compile(model, (x,))          # a torch.nn.Module
    y = compiled(x)                                # numpy or torch in, same out
    print(compiled.ir["linalg"])                   # the IR of any stage
    print(compiled.verify(x))                      # against eager PyTorch
"""

from . import passes  # noqa: F401  (registers Python passes)
from .compiler import compile
from .errors import (ArtifactError, BackendError, FrontendError, InputError,
                     MlircError, PipelineError, UnsupportedOpsError)
from .passes import MlirPass, PatternPass, PythonPass, register_pass
from .runtime.compiled_model import CompiledModel
from .stages import Pipeline, Stage, default_pipeline

__version__ = "0.1.0"

__all__ = [
    "compile", "default_pipeline", "Pipeline", "Stage", "CompiledModel",
    "MlirPass", "PatternPass", "PythonPass", "register_pass",
    "MlircError", "InputError", "FrontendError", "UnsupportedOpsError",
    "PipelineError", "BackendError", "ArtifactError",
]
