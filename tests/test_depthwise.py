"""Depthwise convolutions on the native backends: channels-last, tiled and
vectorized (passes/depthwise.py), against PyTorch on the shapes the zoo's
models have (strides 1 and 2, padding, dilation, rows not a multiple of the
tile, channels with no divisor a vector wide) and on ones the pass leaves
alone (too few channels)."""

import numpy as np
import pytest
import torch

import mlirc


class Depthwise(torch.nn.Module):
    def __init__(self, channels, kernel, stride, padding, dilation):
        super().__init__()
        self.conv = torch.nn.Conv2d(channels, channels, kernel, stride=stride, padding=padding,
                                    dilation=dilation, groups=channels)

    def forward(self, x):
        return torch.nn.functional.relu6(self.conv(x))


CASES = {  # channels, size, kernel, stride, padding, dilation, vectorized
    "3x3": (32, 16, 3, 1, 1, 1, True),
    "3x3-stride-2": (48, 15, 3, 2, 1, 1, True),
    "5x5-rows-of-7": (24, 7, 5, 1, 2, 1, True),
    "dilated": (16, 12, 3, 1, 2, 2, True),
    "11-channels": (88, 14, 3, 1, 1, 1, True),
    "58-channels": (58, 28, 3, 1, 1, 1, True),  # no divisor of 4..16: one tile of 58
    "two-channels": (2, 9, 3, 1, 1, 1, False),
}


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("backend", ["jit", "aot"])
def test_depthwise_matches_torch(name, backend):
    channels, size, kernel, stride, padding, dilation, vectorized = CASES[name]
    torch.manual_seed(0)
    model = Depthwise(channels, kernel, stride, padding, dilation).eval()
    x = torch.randn(2, channels, size, size)
    compiled = mlirc.compile(model, (x,), backend=backend, cache=False)
    with torch.no_grad():
        expected = model(x).numpy()
    np.testing.assert_allclose(compiled(x).numpy(), expected, rtol=1e-4, atol=1e-5)
    optimized = compiled.ir["optimized"]
    assert ("linalg.depthwise_conv_2d_nchw_chw" not in optimized) == vectorized
    assert ("vector.fma" in optimized) == vectorized
