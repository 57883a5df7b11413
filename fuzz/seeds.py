"""The seed corpus every fuzz target mutates: one small model, written once
per run into a folder the workers share.

- `stages/NN-name.mlir`: the model's IR after each stage (restart points);
- `model.onnx`: an ONNX graph using attributes that have crashed importers
  before (Conv group and pads, Softmax axis, Transpose perm, Concat axis);
- `artifact-jit/`, `artifact-aot/`: saved compiled models;
- `inputs.npz` / `reference.npz`: the seed inputs and eager PyTorch's outputs
  (ONNX: ONNX Runtime's).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

INPUT_SHAPE = (1, 3, 8, 8)


def build_model():
    """The seed model (deterministic weights): conv, ReLU, pooling, a linear
    layer and softmax cover the main stage paths of the native backends."""
    import torch

    class SeedNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
            self.pool = torch.nn.AvgPool2d(2)
            self.fc = torch.nn.Linear(4 * 4 * 4, 10)

        def forward(self, x):
            y = self.pool(torch.relu(self.conv(x)))
            return torch.softmax(self.fc(y.flatten(1)), dim=-1)

    torch.manual_seed(0)
    return SeedNet().eval()


def seed_input() -> np.ndarray:
    return np.random.default_rng(1).standard_normal(INPUT_SHAPE).astype(np.float32)


def build_onnx_model():
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(2)
    weight = rng.standard_normal((4, 1, 3, 3)).astype(np.float32)   # depthwise: group 4
    bias = rng.standard_normal(4).astype(np.float32)
    fc = rng.standard_normal((8 * 4 * 4, 6)).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], group=4, pads=[1, 1, 1, 1],
                         strides=[2, 2], dilations=[1, 1], kernel_shape=[3, 3]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("Transpose", ["r"], ["t"], perm=[0, 1, 3, 2]),
        helper.make_node("Concat", ["r", "t"], ["cat"], axis=1),
        helper.make_node("Flatten", ["cat"], ["f"], axis=1),
        helper.make_node("MatMul", ["f", "fc"], ["m"]),
        helper.make_node("Softmax", ["m"], ["y"], axis=-1),
    ]
    graph = helper.make_graph(
        nodes, "seed",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 6])],
        [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(bias, "b"),
         numpy_helper.from_array(fc, "fc")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


ONNX_INPUT_SHAPE = (1, 4, 8, 8)


def write(folder: Path) -> Path:
    """Builds the corpus into `folder` (compiling the seed model); returns it."""
    import onnx
    import onnxruntime
    import torch

    import mlirc

    folder.mkdir(parents=True, exist_ok=True)
    model = build_model()
    x = seed_input()
    compiled = mlirc.compile(model, (torch.from_numpy(x),), dump_dir=folder / "stages",
                             cache=False)
    with torch.no_grad():
        reference = model(torch.from_numpy(x)).numpy()
    np.savez(folder / "inputs.npz", x=x)
    np.savez(folder / "reference.npz", y=reference)
    compiled.save(folder / "artifact-jit")
    mlirc.compile(model, (torch.from_numpy(x),), backend="aot",
                  cache=False).save(folder / "artifact-aot")

    onnx_model = build_onnx_model()
    onnx.save(onnx_model, folder / "model.onnx")
    onnx_x = np.random.default_rng(3).standard_normal(ONNX_INPUT_SHAPE).astype(np.float32)
    session = onnxruntime.InferenceSession(str(folder / "model.onnx"),
                                           providers=["CPUExecutionProvider"])
    np.savez(folder / "onnx-inputs.npz", x=onnx_x)
    np.savez(folder / "onnx-reference.npz", y=session.run(None, {"x": onnx_x})[0])
    (folder / "stages.json").write_text(json.dumps(stage_files(folder)))
    return folder


def stage_files(folder: Path) -> dict[str, str]:
    """Stage name -> its restart-point file, for stages after the first."""
    files = sorted((folder / "stages").glob("*.mlir"))
    return {f.stem.split("-", 1)[1]: str(f) for f in files[1:]}
