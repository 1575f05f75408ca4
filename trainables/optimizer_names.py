"""The optimizers TorchTrainable builds, by name.

Kept apart from `trainables/optim.py` so that checking a config needs no torch.
"""

OPTIMIZERS = ("adam", "sgd", "rmsprop")
