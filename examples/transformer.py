"""One transformer encoder layer (self-attention + feed-forward, layer norm)."""

import torch
from torch import nn


class EncoderLayer(nn.Module):
    """Written out rather than nn.TransformerEncoderLayer, whose eval-mode
    fast path is a fused kernel that torch.export keeps opaque."""

    def __init__(self, d_model=128, heads=4, d_ff=256):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.ff = nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), nn.Linear(d_ff, d_model))

    def forward(self, x):
        batch, seq, d_model = x.shape
        q, k, v = self.qkv(x).chunk(3, dim=-1)

        def split_heads(t):
            return t.reshape(batch, seq, self.heads, d_model // self.heads).transpose(1, 2)
        q, k, v = split_heads(q), split_heads(k), split_heads(v)
        scores = q @ k.transpose(-2, -1) / (d_model // self.heads) ** 0.5
        attention = torch.softmax(scores, dim=-1) @ v
        attention = attention.transpose(1, 2).reshape(batch, seq, d_model)
        x = self.norm1(x + self.out(attention))
        return self.norm2(x + self.ff(x))


def model():
    torch.manual_seed(0)
    return EncoderLayer().eval()


def example_inputs():
    torch.manual_seed(1)
    return (torch.randn(2, 64, 128),)
