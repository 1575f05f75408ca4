"""Ray Tune trainables wrapping torch models, with the models, data and TensorBoard logging.

Models and data loaders are plain torch/numpy code: no Hydra, no Ray.
"""
