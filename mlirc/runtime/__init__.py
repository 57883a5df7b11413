"""Runtime pieces shared by every backend: signatures, memref descriptors and
the CompiledModel API."""
