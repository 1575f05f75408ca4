"""Data augmentation of training batches: random shifts of images and Gaussian input noise.

Draws from the trial's own generator, so an augmented trial is as reproducible as any other.
Only training batches go through here; validation and test data are never changed.
"""

import torch
import torch.nn.functional as F


def augment(inputs: torch.Tensor, settings: dict, generator: torch.Generator) -> torch.Tensor:
    """`inputs` shifted by up to settings["shift"] pixels and with settings["noise"] std noise."""
    shift, noise = int(settings.get("shift", 0)), float(settings.get("noise", 0.0))
    if shift:
        if inputs.dim() != 4:
            raise ValueError(f"augment.shift: shifting needs images (batch, channels, height, "
                             f"width), got inputs of shape {tuple(inputs.shape)}; use "
                             f"data=digits_images or augment.shift=0")
        inputs = random_shift(inputs, shift, generator)
    if noise:
        draw = torch.randn(inputs.shape, generator=generator).to(inputs.device)
        inputs = inputs + noise * draw
    return inputs


def random_shift(images: torch.Tensor, shift: int, generator: torch.Generator) -> torch.Tensor:
    """Each image moved by its own random offset in [-shift, shift] on both axes, zero-filled."""
    batch, _, height, width = images.shape
    padded = F.pad(images, (shift, shift, shift, shift))
    offsets = torch.randint(0, 2 * shift + 1, (2, batch), generator=generator).to(images.device)
    rows = offsets[0][:, None] + torch.arange(height, device=images.device)  # (batch, height)
    cols = offsets[1][:, None] + torch.arange(width, device=images.device)  # (batch, width)
    picked = padded[torch.arange(batch, device=images.device)[:, None, None], :,
                    rows[:, :, None], cols[:, None, :]]  # (batch, height, width, channels)
    return picked.permute(0, 3, 1, 2)
