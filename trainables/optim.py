"""Optimizers by name, from the `optim` config."""

from collections.abc import Iterable

import torch

OPTIMIZERS = ("adam", "sgd", "rmsprop")


def build_optimizer(settings: dict, parameters: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
    """The optimizer `settings["name"]` with its learning rate, weight decay, (SGD) momentum and
    (Adam) betas. The learning rate is the base one; the trainable applies the schedule."""
    name, lr = settings["name"], settings["lr"]
    weight_decay = settings.get("weight_decay", 0.0)
    momentum = settings.get("momentum", 0.9)
    if name == "adam":
        betas = (settings.get("beta1", 0.9), settings.get("beta2", 0.999))
        return torch.optim.Adam(parameters, lr=lr, betas=betas, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(parameters, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "rmsprop":
        return torch.optim.RMSprop(parameters, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"optim.name: unknown optimizer {name!r}; use one of {', '.join(OPTIMIZERS)}")
