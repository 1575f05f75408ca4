"""Plain torch models built from keyword arguments (the `model` config, minus `_target_`).

Every model takes `input_shape` and `num_classes`, filled in from the data set. A model's
CHOICES name the values its settings of a fixed set take, and MULTIPLE_OF the settings that must
divide evenly by another; the driver reads them (and INPUT_DIMS) from this source, so a value that
does not fit is refused before the sweep starts.
"""

import math

import torch
from torch import nn

ACTIVATION_NAMES = ("relu", "gelu", "tanh", "silu", "elu")
ACTIVATIONS = dict(zip(ACTIVATION_NAMES, (nn.ReLU, nn.GELU, nn.Tanh, nn.SiLU, nn.ELU), strict=True))

NORMS = ("none", "batch", "layer")
# "torch" keeps torch's own (Kaiming-uniform, a = sqrt(5)); the others replace it, biases zeroed.
INITS = ("torch", "xavier", "kaiming", "orthogonal")
_INITIALIZERS = {"xavier": nn.init.xavier_uniform_, "orthogonal": nn.init.orthogonal_,
                 "kaiming": lambda weight: nn.init.kaiming_normal_(weight, nonlinearity="relu")}


def initialize(model: nn.Module, scheme: str) -> None:
    """Initialize the weights of every linear and convolutional layer of `model` by `scheme`;
    ValueError naming the choices for an unknown one."""
    if scheme not in INITS:
        raise ValueError(f"model.init: unknown initialization {scheme!r}; use one of {', '.join(INITS)}")
    if scheme != "torch":
        for module in model.modules():
            if isinstance(module, nn.Linear | nn.Conv1d | nn.Conv2d):
                _INITIALIZERS[scheme](module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)


def norm_layer(name: str, width: int, images: bool = False) -> nn.Module:
    """Batch or layer normalization over `width` features (channels for images), or nothing."""
    if name not in NORMS:
        raise ValueError(f"model.norm: unknown normalization {name!r}; use one of {', '.join(NORMS)}")
    if name == "batch":
        return nn.BatchNorm2d(width) if images else nn.BatchNorm1d(width)
    if name == "layer":
        # One group: normalizes over channels, height and width together, as LayerNorm would.
        return nn.GroupNorm(1, width) if images else nn.LayerNorm(width)
    return nn.Identity()


def activation_layer(name: str) -> nn.Module:
    """The activation module called `name`; ValueError naming the choices otherwise."""
    if name not in ACTIVATIONS:
        raise ValueError(f"model.activation: unknown activation {name!r}; use one of "
                         f"{', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


class MLP(nn.Module):
    """Fully connected layers of equal width, each followed by normalization, activation and
    dropout."""

    CHOICES = {"activation": ACTIVATION_NAMES, "norm": NORMS, "init": INITS}

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, hidden_layers: int = 2,
                 hidden_units: int = 128, dropout: float = 0.0, activation: str = "relu",
                 norm: str = "none", init: str = "torch"):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(input_shape)
        for _ in range(hidden_layers):
            layers += [nn.Linear(width, hidden_units), norm_layer(norm, hidden_units),
                       activation_layer(activation), nn.Dropout(dropout)]
            width = hidden_units
        layers.append(nn.Linear(width, num_classes))
        self.net = nn.Sequential(*layers)
        initialize(self.net, init)

    def forward(self, x):
        return self.net(x)


class SmallCNN(nn.Module):
    """Two same-padded convolutions (each normalized), one 2x2 pooling, then a dense layer."""

    INPUT_DIMS = ("channels", "height", "width")
    CHOICES = {"activation": ACTIVATION_NAMES, "norm": NORMS, "init": INITS}

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, channels: int = 32,
                 kernel_size: int = 3, hidden_units: int = 128, dropout: float = 0.0,
                 activation: str = "relu", norm: str = "none", init: str = "torch"):
        super().__init__()
        if len(input_shape) != len(self.INPUT_DIMS):
            raise ValueError(f"SmallCNN needs images (channels, height, width), got input shape "
                             f"{input_shape}; use data=digits_images")
        in_channels, height, width = input_shape
        pad = kernel_size // 2
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, channels, kernel_size, padding=pad),
            norm_layer(norm, channels, images=True), activation_layer(activation),
            nn.Conv2d(channels, channels, kernel_size, padding=pad),
            norm_layer(norm, channels, images=True), activation_layer(activation),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(channels * (height // 2) * (width // 2), hidden_units),
            activation_layer(activation),
            nn.Dropout(dropout),
            nn.Linear(hidden_units, num_classes),
        )
        initialize(self.net, init)

    def forward(self, x):
        return self.net(x)


class SequenceTransformer(nn.Module):
    """A small Transformer encoder over a 1-D signal.

    A strided 1-D convolution turns the signal into tokens (`patch` points apart, each seeing
    `kernel_size` points), a learned position embedding is added, `layers` pre-norm encoder
    layers follow, and the mean over tokens is classified.
    """

    INPUT_DIMS = ("length",)
    CHOICES = {"activation": ACTIVATION_NAMES, "init": INITS}
    MULTIPLE_OF = {"width": "heads"}  # each head attends over width / heads of the features

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, layers: int = 2,
                 width: int = 64, heads: int = 4, dropout: float = 0.1, activation: str = "gelu",
                 patch: int = 2, kernel_size: int = 5, init: str = "torch"):
        super().__init__()
        if len(input_shape) != len(self.INPUT_DIMS):
            raise ValueError(f"SequenceTransformer needs sequences (length,), got input shape "
                             f"{input_shape}; use data=mnist1d")
        if width % heads:
            raise ValueError(f"model.width ({width}) must be a multiple of model.heads ({heads})")
        kernel = max(kernel_size, patch)
        self.embed = nn.Conv1d(1, width, kernel, stride=patch, padding=kernel // 2)
        tokens = (input_shape[0] + 2 * (kernel // 2) - kernel) // patch + 1
        self.position = nn.Parameter(torch.zeros(1, tokens, width))
        nn.init.normal_(self.position, std=0.02)
        layer = nn.TransformerEncoderLayer(width, heads, dim_feedforward=2 * width, dropout=dropout,
                                           activation=activation_layer(activation), batch_first=True,
                                           norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, num_classes)
        initialize(self, init)  # the position embedding keeps its own

    def forward(self, x):
        tokens = self.embed(x.unsqueeze(1)).transpose(1, 2) + self.position
        return self.head(self.norm(self.encoder(tokens)).mean(dim=1))
