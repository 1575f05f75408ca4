"""Ray Tune trainables wrapping torch models, with the models, data and TensorBoard logging.

Models and data loaders are plain torch/numpy code: no Hydra, no Ray.
"""

from hypersweep.deferred_imports import defer_unused_imports

# Every trial process imports this package before Ray Tune (the trainable's module is in it).
defer_unused_imports()
