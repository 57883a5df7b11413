"""The BLAS shim's convolution paths, checked against PyTorch: the direct
kernel (rows of 16 floats and rows of 8, one image and a batch spread over
threads), the strided direct kernel of image stems, Winograd F(2x2, 3x3)
(even and odd sizes) and F(4x4, 3x3) (AVX-512), im2col + GEMM (strided, other widths), the copy-free
1x1 GEMM, each with the bias and ReLU folded into the call and without
them."""

import re

import numpy as np
import pytest
import torch

import mlirc
from mlirc.kernels import choice
from mlirc.passes.blas_offload import BlasOffload


class ConvBlock(torch.nn.Module):
    def __init__(self, channels, filters, kernel, stride=1, bias=True, relu=True, dilation=1):
        super().__init__()
        self.conv = torch.nn.Conv2d(channels, filters, kernel, stride=stride,
                                    padding=dilation * (kernel // 2), dilation=dilation,
                                    bias=bias)
        self.relu = relu

    def forward(self, x):
        y = self.conv(x)
        return torch.relu(y) if self.relu else y


# (batch, channels, filters, kernel, stride, height/width): which path each takes
SHAPES = {
    "direct-16-wide": (2, 3, 8, 3, 1, 32),    # output rows of 32 floats, 4k rows, F % 4
    "direct-16-one-image": (1, 5, 4, 5, 1, 16),
    "grouped-8-wide": (4, 8, 16, 3, 1, 8),    # rows of 8: images grouped into one GEMM
    "winograd": (2, 16, 24, 3, 1, 14),        # 3x3, >= 16 channels and filters, >= 32 tiles
    "winograd-odd": (1, 16, 16, 3, 1, 13),    # a half tile at the bottom and the right
    "winograd-wide": (1, 16, 16, 3, 1, 34),   # 17 tiles a row: rows written, not scattered
    "winograd-packed": (1, 64, 40, 3, 1, 14),  # >= 64 channels: point GEMMs on packed panels
    "winograd-packed-7x7": (1, 64, 32, 3, 1, 7),  # 16 tiles: enough on packed panels
    # AVX-512 only: F(4x4, 3x3) on packed panels (sides of 4k, >= 5 tiles a row)
    "winograd4": (2, 64, 40, 3, 1, 20),
    "winograd4-two-vectors": (1, 64, 32, 3, 1, 72),  # 18 tiles a row
    "winograd-8-wide": (4, 16, 16, 3, 1, 8),   # 4 tiles a row: permutes, rows interleaved
    "winograd-7-wide": (4, 16, 16, 3, 1, 7),
    "strided-stem": (1, 3, 8, 7, 2, 64),      # stride 2, few channels, rows of 16k: split rows
    "strided-3x3": (2, 4, 12, 3, 2, 32),
    "im2col-strided": (2, 3, 8, 3, 2, 17),
    "im2col-odd-width": (1, 6, 12, 3, 1, 7),
    "gemm-1x1": (2, 16, 24, 1, 1, 10),
    # >= 32 filters: the packed-filter GEMM (whole 8x32 tiles, and the edges)
    "packed-1x1": (2, 24, 64, 1, 1, 12),
    "packed-strided": (1, 8, 40, 3, 2, 15),
    "packed-tap-blocks": (1, 40, 48, 3, 2, 9),  # 360 taps: two passes; half a panel
}


# the kernel a shape's name promises (the rest: the compiler's choice)
NAMED_KERNELS = {"direct": "direct", "winograd4": "winograd_f4x4",
                 "winograd-packed": "winograd_f2x2_packed", "winograd": "winograd_f2x2",
                 "strided": "strided", "im2col": "im2col_blas", "gemm": "im2col_blas",
                 "packed": "packed"}


def _named_kernel(name: str) -> str | None:
    return next((kernel for prefix, kernel in NAMED_KERNELS.items()
                 if name.startswith(prefix)), None)


def _check(block, batch, channels, size, **options):
    torch.manual_seed(0)
    x = torch.randn(batch, channels, size, size)
    compiled = mlirc.compile(block.eval(), (x,), cache=False, **options)
    expected = block(x).detach().numpy()
    np.testing.assert_allclose(np.asarray(compiled(x)), expected, rtol=1e-4, atol=1e-4)
    return compiled


@pytest.mark.parametrize("epilogue", ["bias-relu", "bias", "no-bias"])
@pytest.mark.parametrize("name", SHAPES)
def test_conv_paths_match_torch(name, epilogue):
    """Each shape on the kernel its name says (asked for with kernels=),
    proven by the library's run counters; where this CPU's build cannot run
    that kernel (AVX-512 tiles on an AVX2 host), on the compiler's choice."""
    batch, channels, filters, kernel, stride, size = SHAPES[name]
    torch.manual_seed(1)
    block = ConvBlock(channels, filters, kernel, stride, bias=epilogue != "no-bias",
                      relu=epilogue == "bias-relu")
    wanted = _named_kernel(name)
    compiled = _check(block, batch, channels, size,
                      **({"kernels": {"conv2d": wanted}} if wanted else {}))
    blas = compiled.ir["blas"]
    chosen = re.search(r'mlirc.kernel = "(\w+)"', blas).group(1)
    shape = choice.ConvShape(batch, channels, size, size, filters, kernel, kernel,
                             (stride, stride), (1, 1), (kernel // 2, kernel // 2))
    if wanted and chosen != wanted:
        assert not choice.conv_fits(wanted, shape), f"{wanted} fits but {chosen} was chosen"
    choice.reset_kernel_runs()
    compiled(torch.randn(batch, channels, size, size))
    runs = choice.kernel_runs()
    assert runs[f"conv2d:{chosen}"] == 1 and runs["conv2d:fallback"] == 0, runs
    assert "linalg.conv_2d_nchw_fchw" not in blas
    if epilogue == "no-bias":
        assert "call @mlirc_conv2d_nchw_f32" in blas
    else:
        assert "call @mlirc_conv2d_nchw_bias_f32" in blas
        assert "linalg.broadcast" not in blas


class ResidualBlock(torch.nn.Module):
    """ResNet's pattern: relu(conv(x) + bias + shortcut)."""

    def __init__(self, channels):
        super().__init__()
        self.first = torch.nn.Conv2d(channels, channels, 3, padding=1)
        self.second = torch.nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        shortcut = torch.relu(self.first(x))
        return torch.relu(self.second(shortcut) + shortcut)


@pytest.mark.parametrize("size, channels", [(16, 8), (7, 8), (10, 16), (8, 16), (26, 16), (5, 32)],
                         ids=["direct", "im2col", "winograd", "winograd-8-wide",
                              "winograd-tile-rows", "packed"])
def test_residual_add_folds_into_the_call(size, channels):
    torch.manual_seed(3)
    compiled = _check(ResidualBlock(channels), 2, channels, size)
    assert "call @mlirc_conv2d_nchw_bias_residual_f32" in compiled.ir["blas"]


def test_winograd_can_be_switched_off():
    """winograd=False: the compiler chooses another kernel, the IR says so
    (the call's mlirc.kernel) and the library's run counters prove which
    ran."""
    pipeline = mlirc.default_pipeline("jit")
    pipeline.set_passes("blas", [BlasOffload(winograd=False), *pipeline["blas"].passes[1:]])
    torch.manual_seed(6)
    block = ConvBlock(16, 16, 3)
    x = torch.randn(1, 16, 14, 14)
    on = mlirc.compile(block.eval(), (x,), cache=False)
    off = mlirc.compile(block.eval(), (x,), cache=False, pipeline=pipeline)
    kernel = re.compile(r'call @mlirc_conv2d_nchw_bias_f32\(.*\{mlirc.kernel = "(\w+)"[^}]*\}')
    assert kernel.search(on.ir["blas"]).group(1) == "winograd_f2x2"
    assert kernel.search(off.ir["blas"]).group(1) == "im2col_blas"
    expected = block(x).detach().numpy()
    for compiled, path in ((on, "conv2d:winograd_f2x2"), (off, "conv2d:im2col_blas")):
        choice.reset_kernel_runs()
        np.testing.assert_allclose(np.asarray(compiled(x)), expected, rtol=1e-4, atol=1e-4)
        runs = choice.kernel_runs()
        assert runs[path] == 1 and runs["conv2d:fallback"] == 0, runs


@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("dilation", [1, 2])
def test_im2col_reads_zeros_outside_the_unpadded_input(stride, dilation):
    """The padded copy folds into the call: im2col works out, per kernel tap,
    which output columns fall inside the image (kernel 5, padding 2 or 4)."""
    torch.manual_seed(4)
    block = ConvBlock(3, 6, 5, stride=stride, dilation=dilation)
    compiled = _check(block, 2, 3, 11)
    assert "memref.copy" not in compiled.ir["blas"]


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("dilation", [1, 2])
def test_packed_gemm_reads_taps_in_place(stride, dilation):
    """>= 32 filters and a kernel larger than 1x1: the packed-filter GEMM
    reads each tap from the input padded once (no im2col columns), strided
    and dilated (kernel 5, padding 2 or 4, 4 images)."""
    torch.manual_seed(5)
    block = ConvBlock(8, 40, 5, stride=stride, dilation=dilation)
    _check(block, 4, 8, 13)


class ResidualStack(torch.nn.Module):
    """Two residual blocks: the first block's ReLU output is the second's
    shortcut, so bufferization writes it to a fresh buffer (ResNet's case)."""

    def __init__(self, channels):
        super().__init__()
        self.blocks = torch.nn.ModuleList(ResidualBlock(channels) for _ in range(2))

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return x * 2.0


def test_residual_stack_matches_torch():
    """Buffers reused across blocks (here the function's result buffer as a
    temporary) must keep the folds conservative; the FileCheck cases show
    which ReLUs fold."""
    torch.manual_seed(5)
    compiled = _check(ResidualStack(8), 1, 8, 12)
    assert compiled.ir["blas"].count("call @mlirc_conv2d_nchw_bias_residual_f32") == 2


def test_folded_relu_keeps_nan():
    """The ReLU it replaces is `cmpf ugt`-and-select, which passes NaN through."""
    block = ConvBlock(1, 4, 3).eval()
    x = torch.randn(1, 1, 16, 16)
    x[0, 0, 5, 5] = float("nan")
    compiled = mlirc.compile(block, (x,), cache=False)
    got = np.asarray(compiled(x))
    expected = block(x).detach().numpy()
    assert np.array_equal(np.isnan(got), np.isnan(expected)) and np.isnan(got).any()
    finite = ~np.isnan(expected)
    np.testing.assert_allclose(got[finite], expected[finite], rtol=1e-4, atol=1e-4)


def test_epilogue_folding_can_be_switched_off():
    pipeline = mlirc.default_pipeline("jit")
    pipeline.set_passes("blas", [BlasOffload(fold_into_conv=False),
                                 *pipeline["blas"].passes[1:]])
    torch.manual_seed(2)
    block = ConvBlock(3, 8, 3)
    x = torch.randn(1, 3, 16, 16)
    compiled = mlirc.compile(block.eval(), (x,), cache=False, pipeline=pipeline)
    assert "call @mlirc_conv2d_nchw_f32" in compiled.ir["blas"]
    assert "linalg.broadcast" in compiled.ir["blas"]
    np.testing.assert_allclose(np.asarray(compiled(x)), block(x).detach().numpy(),
                               rtol=1e-4, atol=1e-4)


class Bottleneck(torch.nn.Module):
    """ResNet's bottleneck without the shortcut: bufferization reuses the
    first convolution's output buffer for the 3x3 convolution's output, so
    the 3x3 call reads (through its folded padding) the buffer it writes."""

    def __init__(self, channels):
        super().__init__()
        self.reduce = torch.nn.Conv2d(channels, channels, 1)
        self.spatial = torch.nn.Conv2d(channels, channels, 3, padding=1)
        self.expand = torch.nn.Conv2d(channels, 2 * channels, 1)

    def forward(self, x):
        x = torch.relu(self.reduce(x))
        x = torch.relu(self.spatial(x))
        return self.expand(x)


@pytest.mark.parametrize("size, channels", [(16, 8), (7, 8), (10, 16), (6, 32)],
                         ids=["direct", "im2col", "winograd", "packed"])
def test_padded_input_read_from_the_output_buffer(size, channels):
    torch.manual_seed(7)
    compiled = _check(Bottleneck(channels), 2, channels, size)
    blas = compiled.ir["blas"]
    assert "linalg.fill" not in blas and "memref.copy" not in blas


def test_winograd_8_wide_planes_with_a_partial_vector_of_tiles():
    """Rows of 8 with 5 tile rows: the first 16 tiles take the permute paths,
    the last 4 the gather and scatter ones."""
    torch.manual_seed(8)
    block = ConvBlock(16, 16, 3).eval()
    x = torch.randn(2, 16, 10, 8)  # 40 tiles: Winograd
    compiled = mlirc.compile(block, (x,), cache=False)
    np.testing.assert_allclose(np.asarray(compiled(x)), block(x).detach().numpy(),
                               rtol=1e-4, atol=1e-4)


class PaddedConv(torch.nn.Module):
    def __init__(self, channels, filters, padding):
        super().__init__()
        self.conv = torch.nn.Conv2d(channels, filters, 3, padding=padding)

    def forward(self, x):
        return torch.relu(self.conv(x))


@pytest.mark.parametrize("height, width, padding", [
    (16, 48, 1),   # 16 rows of one vector a tile, three tiles a row
    (24, 16, 1),   # 8 rows of one vector (24 rows are no whole 16-row tile)
    (8, 32, 1),    # 8 rows of two vectors
    (14, 30, 2),   # wider padding: 16x32 out, lanes and rows skipped two deep
    (18, 34, 0),   # no padding: 16x32 out, every lane read
], ids=["16x1", "8x1", "8x2", "pad-2", "pad-0"])
def test_direct_3x3_tiles_read_the_input_unpadded(height, width, padding):
    """The direct 3x3 tile's layouts, reading the input in place: the
    padding is the rows and lanes a tile skips (no padded copy)."""
    torch.manual_seed(9)
    block = PaddedConv(5, 8, padding).eval()
    x = torch.randn(2, 5, height, width)
    compiled = mlirc.compile(block, (x,), cache=False)
    assert "call @mlirc_conv2d_nchw_bias_f32" in compiled.ir["blas"]
    np.testing.assert_allclose(np.asarray(compiled(x)), block(x).detach().numpy(),
                               rtol=1e-4, atol=1e-4)


class StemWithPool(torch.nn.Module):
    """ResNet's stem: relu(conv(x)) then MaxPool2d(3, 2, padding=1)."""

    def __init__(self, channels, filters, kernel, stride):
        super().__init__()
        self.conv = torch.nn.Conv2d(channels, filters, kernel, stride=stride,
                                    padding=kernel // 2)
        self.pool = torch.nn.MaxPool2d(3, 2, padding=1)

    def forward(self, x):
        return self.pool(torch.relu(self.conv(x)))


@pytest.mark.parametrize("channels, filters, kernel, stride, size",
                         [(3, 8, 7, 2, 64), (3, 8, 7, 2, 66), (8, 16, 3, 1, 12)],
                         ids=["strided-stem", "stem-rows-not-16k", "other-paths"])
def test_stem_pool_folds_into_the_convolution(channels, filters, kernel, stride, size):
    """The pool and its -inf padded copy fold into the convolution's call:
    the strided stem kernel pools the rows it computed (AVX-512, rows of 16k
    floats); other shapes and paths pool a scratch copy of the convolution."""
    torch.manual_seed(7)
    compiled = _check(StemWithPool(channels, filters, kernel, stride), 2, channels, size)
    blas = compiled.ir["blas"]
    assert "call @mlirc_conv2d_nchw_bias_pool3x3s2_f32" in blas
    assert "linalg.pooling_nchw_max" not in blas and "mlirc_maxpool2d" not in blas
