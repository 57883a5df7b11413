"""A 1024 x 1024 x 1024 f32 matrix multiplication (the GEMM benchmark)."""

import torch


class MatMul(torch.nn.Module):
    def forward(self, a, b):
        return a @ b


def model():
    return MatMul()


def example_inputs():
    torch.manual_seed(1)
    return (torch.randn(1024, 1024), torch.randn(1024, 1024))
