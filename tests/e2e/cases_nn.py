"""Neural-network layers: convolution, pooling, normalisation, attention, embedding."""

import torch
from torch import nn

from .registry import case, randint, randn


@case(inputs=lambda: (randn(2, 3, 16, 16),), module=True)
def conv2d_basic():
    return nn.Conv2d(3, 8, 3)


@case(inputs=lambda: (randn(2, 4, 15, 15),), module=True)
def conv2d_stride_padding():
    return nn.Conv2d(4, 6, 5, stride=2, padding=2)


@case(inputs=lambda: (randn(1, 4, 20, 20),), module=True)
def conv2d_dilation_no_bias():
    return nn.Conv2d(4, 4, 3, dilation=2, bias=False)


@case(inputs=lambda: (randn(2, 8, 12, 12),), module=True)
def conv2d_groups():
    return nn.Conv2d(8, 16, 3, padding=1, groups=4)


@case(inputs=lambda: (randn(3, 24, 11, 11),), module=True)
def conv2d_groups_stride_2_relu():
    """RegNet's block: groups 8 channels wide, stride 2, then ReLU."""
    return nn.Sequential(nn.Conv2d(24, 24, 3, stride=2, padding=1, groups=3), nn.ReLU())


@case(inputs=lambda: (randn(2, 8, 12, 12),), module=True)
def conv2d_depthwise():
    return nn.Conv2d(8, 8, 3, padding=1, groups=8)


class ChannelSplitConvs(nn.Module):
    """ShuffleNet's channel split: each half of the channels feeds a
    convolution (1x1, and 3x3 padded) as a view of the input, whose images
    lie one input image apart."""

    def __init__(self):
        super().__init__()
        self.pointwise = nn.Conv2d(6, 5, 1)
        self.padded = nn.Conv2d(6, 5, 3, padding=1)

    def forward(self, x):
        first, second = x.chunk(2, dim=1)
        return torch.cat([self.padded(first), torch.relu(self.pointwise(second))], dim=1)


@case(inputs=lambda: (randn(3, 12, 9, 9),), module=True)
def conv2d_channel_split():
    return ChannelSplitConvs()


@case(inputs=lambda: (randn(2, 4, 7, 7),), module=True)
def conv_transpose2d():
    return nn.ConvTranspose2d(4, 3, 3, stride=2, padding=1)


@case(inputs=lambda: (randn(2, 3, 32),), module=True)
def conv1d():
    return nn.Conv1d(3, 5, 3, padding=1)


@case(inputs=lambda: (randn(2, 3, 16, 16),))
def max_pool2d(x):
    return nn.functional.max_pool2d(x, 3, stride=2, padding=1)


@case(inputs=lambda: (randn(2, 3, 16, 16),))
def avg_pool2d(x):
    return nn.functional.avg_pool2d(x, 2)


@case(inputs=lambda: (randn(2, 3, 15, 15),))
def adaptive_avg_pool2d(x):
    return nn.functional.adaptive_avg_pool2d(x, (1, 1))


@case(inputs=lambda: (randn(4, 10),))
def softmax_log_softmax(x):
    return torch.softmax(x, dim=1), torch.log_softmax(x, dim=0)


@case(inputs=lambda: (randn(2, 5, 16),), module=True)
def layer_norm():
    norm = nn.LayerNorm(16)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.uniform_(-0.5, 0.5)
    return norm


def _batch_norm_eval():
    norm = nn.BatchNorm2d(6)
    norm.running_mean.uniform_(-1, 1)
    norm.running_var.uniform_(0.5, 2)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
    return norm.eval()


@case(inputs=lambda: (randn(2, 6, 5, 5),), module=True)
def batch_norm_eval():
    return _batch_norm_eval()


@case(inputs=lambda: (randn(2, 8, 4, 4),), module=True)
def group_norm():
    return nn.GroupNorm(4, 8)


@case(inputs=lambda: (randn(2, 4, 8, 16), randn(2, 4, 8, 16), randn(2, 4, 8, 16)))
def scaled_dot_product_attention(q, k, v):
    return nn.functional.scaled_dot_product_attention(q, k, v)


@case(inputs=lambda: (randn(2, 6, 32),), module=True)
def multihead_attention():
    class SelfAttention(nn.Module):
        def __init__(self):
            super().__init__()
            self.attention = nn.MultiheadAttention(32, 4, batch_first=True)

        def forward(self, x):
            return self.attention(x, x, x, need_weights=False)[0]
    return SelfAttention()


@case(inputs=lambda: (randint(0, 50, 4, 7),), module=True)
def embedding():
    return nn.Embedding(50, 16)


@case(inputs=lambda: (randn(3, 8),), module=True)
def mlp_with_dropout_eval():
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 2))


class RelativePositionBias(nn.Module):
    """swin_t's pattern: a bias table indexed by a registered index buffer
    beside a None (aten.index with [None, buffer]): the FX importer refused
    the list mixing a graph value and the frozen tensor."""

    def __init__(self):
        super().__init__()
        self.table = nn.Parameter(torch.randn(3, 25))
        self.register_buffer("index", torch.randint(0, 25, (16,)))

    def forward(self, x):
        return x + self.table[:, self.index]


@case(inputs=lambda: (randn(2, 3, 16),), module=True)
def relative_position_bias_index():
    return RelativePositionBias()
