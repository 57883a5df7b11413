"""mlirc's passes: the pass model (`base`) and the passes written in Python.

Importing this package registers every Python pass, so pipeline text can name them.
"""

from .base import (MlirPass, Pass, PassFailure, PatternPass, PythonPass, parse_pipeline,
                   register_pass, PYTHON_PASSES)
from . import (blas_offload, c_interface, dead_results, depthwise, early_free,  # noqa: F401
               flatten_elementwise, float8, grouped_conv, math_approx, pool_offload, profile, reassociate, residual_in_place,
               vectorize)

__all__ = ["MlirPass", "Pass", "PassFailure", "PatternPass", "PythonPass", "parse_pipeline",
           "register_pass", "PYTHON_PASSES"]
