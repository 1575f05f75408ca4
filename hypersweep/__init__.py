"""hypersweep: hyperparameter sweeps for PyTorch models on Ray clusters, configured with Hydra."""

__version__ = "0.1.0"
