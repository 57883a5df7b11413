"""JAX frontend (optional: needs `pip install jax`): a function lowered by
jax.jit to StableHLO, then compiled like any StableHLO module."""

from __future__ import annotations

from .. import ir
from ..errors import FrontendError, InputError
from ..runtime import signature as sig


def jax_available() -> bool:
    try:
        import jax  # noqa: F401
    except ImportError:
        return False
    return True


def is_jax_function(model) -> bool:
    """A plain callable (not a torch module) while JAX is installed."""
    return callable(model) and not hasattr(model, "parameters") and jax_available() \
        and not isinstance(model, type)


def import_function(function, example_args, context: ir.Context | None = None):
    """Returns (StableHLO module, Signature)."""
    import jax
    if not isinstance(example_args, (tuple, list)) or not example_args:
        raise InputError("give the example arguments the JAX function is called with")
    try:
        lowered = jax.jit(function).lower(*example_args)
        text = lowered.as_text(dialect="stablehlo")
    except Exception as error:
        raise FrontendError(f"jax.jit(...).lower failed: {type(error).__name__}: "
                            f"{str(error).strip().splitlines()[0][:300]}") from None
    context = context or ir.new_context()
    context.allow_unregistered_dialects = True  # jax.* and mhlo.* attributes
    module = ir.parse_module(text, context)
    signature = sig.read(module)
    sig.attach(module, signature)
    return module, signature
