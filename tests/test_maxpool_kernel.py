"""The shim's max pooling (mlirc-pool-offload), checked against PyTorch: the
vector 2x2 path (rows of 16 and more, and narrower ones), the general path
(3x3 windows, strides, dilation, padding folded into the call, ceil mode),
NaN propagation, and the pass switched off."""

import numpy as np
import pytest
import torch

import mlirc


class Pool(torch.nn.Module):
    def __init__(self, kernel, stride, padding=0, dilation=1, ceil_mode=False):
        super().__init__()
        self.pool = torch.nn.MaxPool2d(kernel, stride, padding, dilation, ceil_mode=ceil_mode)

    def forward(self, x):
        return self.pool(torch.relu(x) - 0.5)


# (kernel, stride, padding, dilation, ceil_mode, input size)
CASES = {
    "2x2-wide": (2, 2, 0, 1, False, 34),        # 17 outputs a row: one vector and a tail
    "2x2-narrow": (2, 2, 0, 1, False, 9),       # odd input: the last row and column dropped
    "3x3-s2-padded": (3, 2, 1, 1, False, 15),   # ResNet's stem pool: the vector path
    "3x3-s2-wide": (3, 2, 1, 1, False, 40),     # 20 outputs a row: a vector and a part
    "3x3-s2-ceil": (3, 2, 1, 1, True, 34),
    "3x3-s1": (3, 1, 0, 1, False, 8),
    "2x2-dilated": (2, 1, 0, 2, False, 9),
    "ceil-mode": (3, 2, 0, 1, True, 10),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_max_pool_matches_torch(case):
    kernel, stride, padding, dilation, ceil_mode, size = case
    torch.manual_seed(0)
    block = Pool(kernel, stride, padding, dilation, ceil_mode).eval()
    x = torch.randn(2, 3, size, size)
    compiled = mlirc.compile(block, (x,), cache=False)
    assert "call @mlirc_maxpool2d_nchw_f32" in compiled.ir["blas"]
    assert "linalg.pooling_nchw_max" not in compiled.ir["blas"]
    np.testing.assert_array_equal(np.asarray(compiled(x)), block(x).numpy())


def test_padding_and_init_fold_into_the_call():
    block = Pool(3, 2, padding=1).eval()
    x = torch.randn(1, 4, 16, 16)
    blas = mlirc.compile(block, (x,), cache=False).ir["blas"]
    assert "linalg.fill" not in blas and "memref.copy" not in blas


@pytest.mark.parametrize("kernel, stride, padding", [(2, 2, 0), (3, 2, 1)], ids=["2x2", "3x3-s2"])
def test_nan_wins(kernel, stride, padding):
    """arith.maximumf propagates NaN, and so does torch's max pooling."""
    block = Pool(kernel, stride, padding).eval()
    x = torch.randn(1, 2, 32, 32)
    x[0, 0, 4, 5] = float("nan")
    x[0, 1, 31, 0] = float("nan")
    compiled = mlirc.compile(block, (x,), cache=False)
    got, expected = np.asarray(compiled(x)), block(x).numpy()
    assert np.isnan(expected).any()  # NaN where torch has it (equal arrays below)
    np.testing.assert_array_equal(got, expected)


def test_pool_offload_can_be_switched_off():
    pipeline = mlirc.default_pipeline("jit")
    pipeline.set_passes("blas", [p for p in pipeline["blas"].passes
                                 if p.name != "mlirc-pool-offload"])
    block = Pool(2, 2).eval()
    x = torch.randn(1, 3, 16, 16)
    compiled = mlirc.compile(block, (x,), cache=False, pipeline=pipeline)
    assert "linalg.pooling_nchw_max" in compiled.ir["blas"]
    np.testing.assert_array_equal(np.asarray(compiled(x)), block(x).numpy())


class ConvPool(torch.nn.Module):
    """conv -> ReLU -> MaxPool2d(2): the pool folds into the convolution's call."""

    def __init__(self, channels, filters, kernel=3, relu=True, keep_conv=False):
        super().__init__()
        self.conv = torch.nn.Conv2d(channels, filters, kernel, padding=kernel // 2)
        self.relu, self.keep_conv = relu, keep_conv

    def forward(self, x):
        y = self.conv(x)
        y = torch.relu(y) if self.relu else y
        pooled = torch.nn.functional.max_pool2d(y, 2)
        return (pooled, y * 2.0) if self.keep_conv else pooled


# (batch, channels, filters, size): which convolution path computes it
CONV_POOL = {
    "direct": (2, 3, 8, 32),          # rows of 32: tiles pooled as they are stored
    "direct-no-relu": (1, 4, 8, 16),
    "im2col": (2, 3, 8, 14),          # the convolution into a scratch buffer, then pooled
    "odd-size": (1, 3, 8, 15),        # the last row and column dropped
    "winograd": (2, 16, 16, 12),
}


@pytest.mark.parametrize("case", CONV_POOL.values(), ids=CONV_POOL.keys())
def test_pool_folds_into_the_convolution(case, request):
    batch, channels, filters, size = case
    torch.manual_seed(1)
    block = ConvPool(channels, filters, relu="no-relu" not in request.node.callspec.id).eval()
    x = torch.randn(batch, channels, size, size)
    compiled = mlirc.compile(block, (x,), cache=False)
    blas = compiled.ir["blas"]
    assert "call @mlirc_conv2d_nchw_bias_pool_f32" in blas
    assert "mlirc_maxpool2d" not in blas and "linalg.pooling_nchw_max" not in blas
    np.testing.assert_allclose(np.asarray(compiled(x)), block(x).detach().numpy(),
                               rtol=1e-4, atol=1e-4)


def test_pool_stays_apart_when_the_convolution_output_is_read():
    torch.manual_seed(2)
    block = ConvPool(3, 8, keep_conv=True).eval()
    x = torch.randn(1, 3, 16, 16)
    compiled = mlirc.compile(block, (x,), cache=False)
    assert "call @mlirc_conv2d_nchw_bias_pool_f32" not in compiled.ir["blas"]
    for got, expected in zip(compiled(x), block(x)):
        np.testing.assert_allclose(np.asarray(got), expected.detach().numpy(),
                                   rtol=1e-4, atol=1e-4)


class GlobalAverage(torch.nn.Module):
    def __init__(self, how: str):
        super().__init__()
        self.how = how

    def forward(self, x):
        x = torch.relu(x)
        if self.how == "adaptive-pool":
            return torch.nn.functional.adaptive_avg_pool2d(x, 1)
        return x.mean((2, 3), keepdim=self.how == "mean-keepdim")


# a sum into an NxCx1x1 buffer goes to the shim; into NxC it stays in MLIR
@pytest.mark.parametrize("how, offloaded", [("adaptive-pool", True), ("mean-keepdim", True),
                                            ("mean", False)])
@pytest.mark.parametrize("size", [8, 13], ids=["vectors", "tail"])
def test_global_average_pool_sums_planes_in_the_shim(how, offloaded, size):
    torch.manual_seed(3)
    block = GlobalAverage(how).eval()
    x = torch.randn(2, 5, size, size)
    compiled = mlirc.compile(block, (x,), cache=False)
    assert ("call @mlirc_sum_planes_f32" in compiled.ir["blas"]) == offloaded
    np.testing.assert_allclose(np.asarray(compiled(x)), block(x).numpy(), rtol=1e-5, atol=1e-6)
