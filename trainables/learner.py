"""The torch side of a trial: its data as tensors, its model, optimizer and random streams.

Built from the trial's plain config; trains an epoch, evaluates a split, saves and loads its
state. No Ray and no Hydra here: TorchTrainable (trainable.py) drives it from the trial processes.
The driver imports TorchTrainable only to hand it to Ray, so it never imports this module, nor
torch (which would cost it about a second of start-up and 180 MiB).
"""

import io
import math
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F

from trainables.augment import augment
from trainables.data import SplitData
from trainables.eager_optim import eager_step, keep_compiler_unloaded
from trainables.optim import build_optimizer
from trainables.targets import build


def pick_device() -> torch.device:
    """The trial's device: Ray sets CUDA_VISIBLE_DEVICES to the GPUs it gave this actor, so
    cuda:0 is ours when it gave any."""
    import ray

    if ray.get_gpu_ids() and torch.cuda.is_available():
        return torch.device("cuda", 0)
    return torch.device("cpu")


def use_threads(count: int) -> None:
    """Let torch use as many threads as the trial has CPUs."""
    torch.set_num_threads(max(1, count))


def to_tensors(data: SplitData, device: torch.device) -> dict[str, Any]:
    """The splits of a data set as (inputs, labels) tensors on `device`, with its shapes."""
    # Copies: the object store's arrays are read-only, and torch wants writable memory.
    splits = {name: (torch.tensor(x, device=device), torch.tensor(y, device=device))
              for name, x, y in (("train", data.x_train, data.y_train),
                                 ("val", data.x_val, data.y_val),
                                 ("test", data.x_test, data.y_test))}
    return {"splits": splits, "input_shape": data.input_shape, "num_classes": data.num_classes}


def save_state(state: dict, path: str) -> None:
    """Write a checkpoint's state; write then rename, so a crash never leaves half of one."""
    torch.save(state, path + ".tmp")
    os.replace(path + ".tmp", path)


def load_state(source: str | bytes, device: torch.device | str = "cpu") -> dict:
    """A checkpoint's state, from its path or its bytes (tensors only: weights_only)."""
    stream = io.BytesIO(source) if isinstance(source, bytes) else source
    return torch.load(stream, weights_only=True, map_location=device)


class Learner:
    """A trial's model, optimizer and random streams on its data, from its config and seed."""

    def __init__(self, config: dict, tensors: dict[str, Any], device: torch.device, seed: int):
        self.data = tensors["splits"]
        self.device = device
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.model = build(config["model"], input_shape=tensors["input_shape"],
                               num_classes=tensors["num_classes"]).to(device)
            self.rng_state = torch.get_rng_state()
        keep_compiler_unloaded()
        self.optimizer = build_optimizer(config["optim"], self.model.parameters())
        self.shuffle = torch.Generator().manual_seed(seed)

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def set_lr(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def apply_settings(self, optim: dict, dropout: float | None) -> None:
        """Write the live settings into the optimizer (weight decay, SGD's momentum, Adam's
        betas) and the model (dropout); the learning rate goes through set_lr."""
        for group in self.optimizer.param_groups:
            group["weight_decay"] = optim.get("weight_decay", 0.0)
            if optim["name"] == "sgd" and "momentum" in optim:  # RMSprop's momentum stays off
                group["momentum"] = optim["momentum"]
            if optim["name"] == "adam":
                group["betas"] = (optim.get("beta1", 0.9), optim.get("beta2", 0.999))
        if dropout is not None:
            for module in self.model.modules():
                if isinstance(module, torch.nn.Dropout):
                    module.p = dropout

    @contextmanager
    def own_random_state(self) -> Iterator[None]:
        """Dropout draws from torch's global generator: run with this trial's own state, so its
        curve depends on nothing else that ran in the same process."""
        with torch.random.fork_rng(devices=[]):
            torch.set_rng_state(self.rng_state)
            yield
            self.rng_state = torch.get_rng_state()

    def train_epoch(self, batch_size: int, augmentation: dict, lr_at: Callable[[float], float],
                    on_batch: Callable[[float], None]) -> float:
        """One epoch in a fresh order; the mean training loss, or the first non-finite one.

        `lr_at(fraction)` gives the rate after that fraction of the epoch; `on_batch(loss)` is
        told each batch's loss.
        """
        x, y = self.data["train"]
        self.model.train()
        order = torch.randperm(len(y), generator=self.shuffle).to(self.device)
        total, batches = 0.0, 0
        steps = math.ceil(len(y) / batch_size)
        for index, start in enumerate(range(0, len(y), batch_size)):
            batch = order[start:start + batch_size]
            self.set_lr(lr_at((index + 1) / steps))
            self.optimizer.zero_grad(set_to_none=True)
            inputs = augment(x[batch], augmentation, self.shuffle)
            loss = F.cross_entropy(self.model(inputs), y[batch])
            loss.backward()
            eager_step(self.optimizer)
            value = loss.item()
            on_batch(value)
            if not math.isfinite(value):
                return value  # diverged: more steps only spread the NaN
            total, batches = total + value, batches + 1
        return total / batches

    @torch.no_grad()
    def evaluate(self, split: str) -> tuple[float, float]:
        """Loss and accuracy on the split ("val" or "test")."""
        x, y = self.data[split]
        self.model.eval()
        logits = self.model(x)
        loss = F.cross_entropy(logits, y).item()
        accuracy = (logits.argmax(dim=1) == y).float().mean().item()
        return loss, accuracy

    def state(self) -> dict[str, Any]:
        """Model, optimizer and random streams, for a checkpoint."""
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "torch_rng": self.rng_state, "shuffle_rng": self.shuffle.get_state()}

    def load(self, state: dict[str, Any]) -> None:
        """Take back what `state()` gave."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.rng_state = state["torch_rng"]
        self.shuffle.set_state(state["shuffle_rng"])
