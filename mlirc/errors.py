"""The typed errors mlirc raises. Every error a user can cause is one of these,
so the CLI can print one line and exit 2 instead of a traceback."""

from __future__ import annotations


class MlircError(Exception):
    """Base of every error mlirc raises on purpose."""


class InputError(MlircError):
    """The model, the arguments or a file given by the user is not usable."""


class FrontendError(MlircError):
    """The model could not be imported into MLIR (torch.export or the importer failed)."""


class UnsupportedOpsError(MlircError):
    """The model uses ops that cannot be lowered; `ops` lists them with counts
    and sources; `stage` is the stage they stop."""

    def __init__(self, message: str, ops: list | None = None, stage: str = ""):
        super().__init__(message)
        self.ops = ops or []
        self.stage = stage


class PipelineError(MlircError):
    """A pass failed. Names the stage, the pass, the source location, and where
    the input IR was written together with a command that reproduces it."""

    def __init__(self, stage: str, pass_name: str, location: str, message: str,
                 ir_file: str | None = None, repro: str | None = None):
        self.stage = stage
        self.pass_name = pass_name
        self.location = location
        self.diagnostic = message
        self.ir_file = ir_file
        self.repro = repro
        where = f" at {location}" if location else ""
        text = f"stage '{stage}', pass '{pass_name}' failed{where}: {message}"
        if repro:
            text += f"\n  reproduce with: {repro}"
        super().__init__(text)


class BackendError(MlircError):
    """The backend could not turn the final IR into something runnable."""


class ArtifactError(MlircError):
    """A saved artifact is missing, truncated or does not match."""
