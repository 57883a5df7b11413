"""Frontends turn a model into an MLIR module plus its Signature."""
