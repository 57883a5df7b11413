"""A multi-layer perceptron: linear -> relu -> linear -> relu -> linear."""

import torch


class MLP(torch.nn.Module):
    def __init__(self, features=256, hidden=512, classes=10):
        super().__init__()
        self.layers = torch.nn.Sequential(
            torch.nn.Linear(features, hidden), torch.nn.ReLU(),
            torch.nn.Linear(hidden, hidden), torch.nn.ReLU(),
            torch.nn.Linear(hidden, classes))

    def forward(self, x):
        return self.layers(x)


def model():
    torch.manual_seed(0)
    return MLP().eval()


def example_inputs():
    torch.manual_seed(1)
    return (torch.randn(32, 256),)
