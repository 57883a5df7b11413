"""mlirc: compile machine-learning models through MLIR to native code.

    import mlirc
    compiled = mlirc.compile(model, (x,))          # a torch.nn.Module
    y = compiled(x)                                # numpy or torch in, same out
    print(compiled.ir["linalg"])                   # the IR of any stage
    print(compiled.verify(x))                      # against eager PyTorch
    compiled.save("model.mlirc"); mlirc.load("model.mlirc")
    print(mlirc.profile(model, (x,)).table())      # time per op (loop nest, BLAS call)
    print(mlirc.analyze(model, (x,)).table())      # each linalg op on the roofline
"""

from . import passes  # noqa: F401  (registers Python passes)
from .compiler import compile
from .errors import (ArtifactError, BackendError, FrontendError, InputError,
                     MlircError, PipelineError, UnsupportedOpsError)
from .passes import MlirPass, PatternPass, PythonPass, register_pass
from .analysis.roofline import Analysis, analyze
from .profiler import Profile, profile
from .runtime.compiled_model import CompiledModel, load
from .stages import Pipeline, Stage, default_pipeline

from .version import __version__  # noqa: E402

__all__ = [
    "compile", "load", "profile", "Profile", "analyze", "Analysis", "default_pipeline", "Pipeline", "Stage", "CompiledModel",
    "MlirPass", "PatternPass", "PythonPass", "register_pass",
    "MlircError", "InputError", "FrontendError", "UnsupportedOpsError",
    "PipelineError", "BackendError", "ArtifactError",
]
