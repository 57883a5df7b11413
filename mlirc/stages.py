"""Named stages: each an IR -> IR step with a visible, replaceable pass list.

A `Pipeline` is an ordered list of stages, data rather than code: users look
at it (`mlirc stages`), replace or extend a stage's passes, or insert stages
of their own. The first stage is the frontend's output and has no passes.
`runner.run_pipeline` executes any pipeline.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from .errors import InputError
from .passes import MlirPass, Pass, PythonPass, parse_pipeline
from .passes.blas_offload import BlasOffload
from .passes.pool_offload import PoolOffload
from .passes.c_interface import EmitCInterface
from .passes.dead_results import DropUnusedResults
from .passes.distinct_results import DistinctResults
from .passes.generic_fill_copy import GenericFillCopy
from .passes.early_free import FreeAfterLastUse
from .passes.residual_in_place import ResidualInPlace
from .passes.float8 import ExpandFloat8Casts, OnnxCastToFloat8
from .passes.math_approx import ApproximateMath
from .passes.reassociate import ReassociateReductions
from .passes.depthwise import DepthwiseChannelsLast
from .passes.vectorize import Vectorize
from .passes.grouped_conv import SplitGroupedConvs
from .passes.flatten_elementwise import FlattenElementwise
from .passes.parallel_tiles import ParallelTiles


@dataclass
class Stage:
    name: str
    description: str
    passes: list[Pass] = field(default_factory=list)
    # The opt tool whose pass registry holds this stage's MLIR passes; the
    # failure report prints a repro command for it.
    tool: str = "mlirc-opt"

    @property
    def pipeline_text(self) -> str:
        return ",".join(p.text for p in self.passes)

    @property
    def repro_tool(self) -> str:
        if any(isinstance(p, PythonPass) for p in self.passes):
            return "mlirc-opt"  # only mlirc-opt knows Python passes
        return self.tool


def _mlir(*texts: str) -> list[Pass]:
    return [MlirPass(t) for t in texts]


def _torch_stages() -> list[Stage]:
    return [
        Stage("torch", "torch dialect as imported (torch.export + FX importer; "
              "eval-mode Conv -> BatchNorm pairs folded unless opt-level 0)"),
        Stage("torch-backend",
              "torch backend contract: value semantics, refined shapes and dtypes, "
              "complex ops decomposed",
              _mlir("func.func(torch-match-quantized-custom-ops)",
                    "torchdynamo-export-to-torch-backend-pipeline"),
              tool="torch-mlir-opt"),
        Stage("linalg", "linalg on tensors, with arith, math, tensor, scf and tm_tensor",
              _mlir("torch-backend-to-linalg-on-tensors-backend-pipeline"),
              tool="torch-mlir-opt"),
    ]


def _onnx_stages() -> list[Stage]:
    return [
        Stage("onnx", "torch dialect with onnx.* operators, as imported from ONNX"),
        Stage("torch-backend",
              "torch backend contract: onnx operators converted to aten ops, "
              "shapes and dtypes refined",
              [OnnxCastToFloat8(), *_mlir("torch-onnx-to-torch-backend-pipeline")],
              tool="torch-mlir-opt"),
        _torch_stages()[2],
    ]


def _stablehlo_stages() -> list[Stage]:
    return [
        Stage("stablehlo", "StableHLO, as given"),
        Stage("linalg", "linalg on tensors, with arith, math and tensor",
              _mlir("func.func(stablehlo-legalize-to-linalg)", "canonicalize"),
              tool="torch-mlir-opt"),
    ]


# Output levels other than the default path (torch -> linalg): torch-mlir's
# other backend contracts, reached from the torch-backend stage.
OUTPUT_LEVELS = {
    "torch": None, "linalg": None,
    "stablehlo": Stage("stablehlo", "StableHLO (torch-mlir's StableHLO backend contract)",
                       [MlirPass("torch-backend-to-stablehlo-backend-pipeline")],
                       tool="torch-mlir-opt"),
    "tosa": Stage("tosa", "TOSA (torch-mlir's TOSA backend contract)",
                  [MlirPass("torch-backend-to-tosa-backend-pipeline")], tool="torch-mlir-opt"),
}


def output_level_pipeline(level: str, frontend: str = "torch") -> Pipeline:
    """Stages that end at an output level: torch, linalg, stablehlo or tosa."""
    if level not in OUTPUT_LEVELS:
        raise InputError(f"unknown output level '{level}'; levels: {', '.join(OUTPUT_LEVELS)}")
    front = FRONTENDS[frontend]()
    if frontend == "stablehlo":
        if level not in ("stablehlo", "linalg"):
            raise InputError(f"StableHLO input can be written as stablehlo or linalg, not {level}")
        return Pipeline(front[:1] if level == "stablehlo" else front)
    if level == "torch":
        return Pipeline(front[:2])
    if level == "linalg":
        return Pipeline(front[:3])
    return Pipeline(front[:2] + [copy.deepcopy(OUTPUT_LEVELS[level])])


def _native_stages(blas: bool = True, vectorize: bool = False) -> list[Stage]:
    # Elementwise fusion also propagates reshapes through matmuls (expanding
    # them into higher-rank linalg.generic contractions) and fuses producers
    # into them, which BLAS offload cannot take; with BLAS on, contractions
    # are worth more than fused elementwise loops.
    fusion = [] if blas else ["func.func(linalg-fuse-elementwise-ops)"]
    return [
        Stage("optimized", "linalg on tensors after cleanup: unused results dropped, "
              "f32 exp and erf as polynomials, reductions reassociable, depthwise "
              "convolutions channels-last and vectorized"
              + ("" if blas else " and elementwise fusion"),
              [ExpandFloat8Casts(), DropUnusedResults(), ApproximateMath(), ReassociateReductions(),
               *_mlir(*fusion, "func.func(canonicalize)", "func.func(cse)"),
               DepthwiseChannelsLast()]),
        *([Stage("vectorized", "elementwise ops, broadcasts and row reductions tiled into rows "
                 "and vectorized (vector dialect on tensors)",
                 # no CSE here: it would merge the row loops' empty inits again
                 [Vectorize(), MlirPass("func.func(canonicalize)")])]
          if vectorize else []),
        Stage("bufferized",
              "memrefs instead of tensors; results become out-parameters, "
              "temporaries are freed",
              [DistinctResults(),
               *_mlir("func.func(refback-generalize-tensor-pad)",
                    "func.func(refback-generalize-tensor-concat)",
                    # tm_tensor ops (scan, scatter, sort) have no one-shot
                    # bufferization: let them through, then bufferize them.
                    "one-shot-bufferize{allow-unknown-ops allow-return-allocs-from-loops "
                    "bufferize-function-boundaries "
                    "function-boundary-type-conversion=identity-layout-map}",
                    "func.func(tm-tensor-bufferize)",
                    "func.func(canonicalize)",
                    "refback-mlprogram-bufferize",
                    "buffer-results-to-out-params{hoist-static-allocs modify-public-functions}",
                    "buffer-deallocation-pipeline",
                    "func.func(canonicalize)")]),
        *([Stage("blas", "matmul, batch_matmul, conv2d (a grouped one per group) and pooling "
                 "offloaded to the BLAS "
                 "shim's calls; transposes, and a convolution's padding, bias, residual add "
                 "and ReLU, folded into them",
                 [GenericFillCopy(), SplitGroupedConvs(), BlasOffload(), PoolOffload(),
                  MlirPass("func.func(canonicalize)")])]
          if blas else []),
        Stage("parallel", "elementwise ops on contiguous buffers flattened to one loop; "
              "each large linalg op's outer parallel loop split into tiles "
              "(scf.forall; the op keeps the tile sizes chosen as mlirc.parallel_tiles), "
              "run on all cores by the kernel library's threads",
              [*_mlir(
                  # memref.copy of strided views would call the runtime's
                  # memrefCopy; as linalg.copy it becomes plain loops.
                  "func.func(refback-munge-memref-copy)",
                  # the same loops, with iterator types to choose from
                  "func.func(linalg-generalize-named-ops)"),
               FlattenElementwise(), ParallelTiles()]),
        Stage("loops", "scf loops over memrefs: linalg, tm_tensor and affine lowered; "
              "buffers freed after their last use, a residual convolution writing over its "
              "dead residual; parallel tile loops as OpenMP worksharing loops",
              [FreeAfterLastUse(), ResidualInPlace(),
               *_mlir("func.func(tm-tensor-to-loops)",
                      # again for pipelines without the parallel stage
                      "func.func(refback-munge-memref-copy)",
                      "scf-forall-to-parallel",
                      "func.func(convert-linalg-to-loops)",
                      # vector code from the vectorized stage: multi-dimensional
                      # reductions and transfers down to 1-D vector ops
                      "func.func(lower-vector-multi-reduction)",
                      "convert-vector-to-scf",
                      "func.func(lower-affine)",
                      "convert-scf-to-openmp",
                      "func.func(canonicalize)")]),
        Stage("llvm", "LLVM dialect, with _mlir_ciface_ wrappers for C callers",
              [EmitCInterface(),
               *_mlir("convert-scf-to-cf",
                      "func.func(refback-expand-ops-for-llvm)",
                      "func.func(arith-expand)",
                      "func.func(convert-math-to-llvm)",
                      "convert-math-to-libm",
                      "convert-vector-to-llvm",
                      "convert-ub-to-llvm",
                      "expand-strided-metadata",
                      "lower-affine",
                      # with BLAS, allocations go to the shim's buffer cache
                      # (kernels/src/buffers.c), which hands out memory freed last
                      "finalize-memref-to-llvm" + ("{use-generic-functions}" if blas else ""),
                      "convert-openmp-to-llvm",
                      "func.func(convert-arith-to-llvm)",
                      "convert-func-to-llvm",
                      "convert-cf-to-llvm",
                      "reconcile-unrealized-casts")]),
    ]


class Pipeline:
    """An ordered, editable list of stages."""

    def __init__(self, stages: list[Stage]):
        names = [s.name for s in stages]
        if len(set(names)) != len(names):
            raise ValueError(f"stage names must be unique: {names}")
        self.stages = stages

    def names(self) -> list[str]:
        return [s.name for s in self.stages]

    def __iter__(self):
        return iter(self.stages)

    def __len__(self) -> int:
        return len(self.stages)

    def __getitem__(self, name: str) -> Stage:
        return self.stages[self.index(name)]

    def index(self, name: str) -> int:
        for i, stage in enumerate(self.stages):
            if stage.name == name:
                return i
        raise InputError(f"no stage named '{name}'; stages: {', '.join(self.names())}")

    def copy(self) -> "Pipeline":
        return Pipeline(copy.deepcopy(self.stages))

    def set_passes(self, name: str, passes: list[Pass] | str) -> "Pipeline":
        """Replace a stage's passes, given as objects or as pipeline text."""
        self[name].passes = parse_pipeline(passes) if isinstance(passes, str) else list(passes)
        return self

    def add_passes(self, name: str, *passes: Pass | str) -> "Pipeline":
        """Append passes (objects or pipeline text) to the end of a stage."""
        for item in passes:
            self[name].passes.extend(parse_pipeline(item) if isinstance(item, str) else [item])
        return self

    def insert_after(self, name: str, stage: Stage) -> "Pipeline":
        self.stages.insert(self.index(name) + 1, stage)
        return Pipeline(self.stages)  # re-checks unique names

    def between(self, start_from: str | None, stop_at: str | None) -> list[Stage]:
        """The stages to run after `start_from` up to and including `stop_at`."""
        first = self.index(start_from) + 1 if start_from else 1
        last = self.index(stop_at) if stop_at else len(self.stages) - 1
        if stop_at and start_from and last < first - 1:
            raise InputError(f"stop_at='{stop_at}' comes before start_from='{start_from}'")
        return self.stages[first:last + 1]


FRONTENDS = {"torch": _torch_stages, "onnx": _onnx_stages, "stablehlo": _stablehlo_stages,
             "jax": _stablehlo_stages}


def default_pipeline(backend: str = "jit", frontend: str = "torch",
                     blas: bool = True, vectorize: bool = False) -> Pipeline:
    """The stages a backend compiles through from a frontend's output. Native
    backends (jit, aot) lower all the way to LLVM; IREE takes over at linalg.
    blas=False drops the BLAS offload stage; vectorize=True adds the
    transform-dialect vectorization stage (measured no faster than LLVM's
    own loop vectorizer on the bundled models, so off by default)."""
    if frontend not in FRONTENDS:
        raise InputError(f"unknown frontend '{frontend}'; frontends: {', '.join(FRONTENDS)}")
    return Pipeline(FRONTENDS[frontend]() + backend_stages(backend, blas, vectorize))


NATIVE_BACKENDS = ("jit", "aot")
IREE_BACKENDS = ("iree-cpu", "iree-cuda", "iree-rocm", "iree-vulkan")


def backend_stages(backend: str, blas: bool = True, vectorize: bool = False) -> list[Stage]:
    """The stages after `linalg` that a backend compiles through: the native
    ones lower to LLVM; IREE takes the linalg stage as it is (and has its
    own GEMMs)."""
    if backend in NATIVE_BACKENDS:
        return _native_stages(blas, vectorize)
    if backend in IREE_BACKENDS:
        return []
    raise InputError(f"unknown backend '{backend}'; backends: "
                     f"{', '.join(NATIVE_BACKENDS + IREE_BACKENDS)}")


def native_stages(blas: bool = True, vectorize: bool = False) -> list[Stage]:
    return _native_stages(blas, vectorize)
