"""A user's own model: any nn.Module that takes input_shape and num_classes, plus its own args."""

import math

from torch import nn


class TinyNet(nn.Module):
    def __init__(self, input_shape: tuple[int, ...], num_classes: int, width: int = 32):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), width), nn.ReLU(),
                                 nn.Linear(width, num_classes))

    def forward(self, x):
        return self.net(x)
