"""What a running TorchTrainable can change without rebuilding its model.

PBT mutates these, and a replayed PBT schedule (`pbt_schedule`) sets them at given epochs. Kept
apart from the trainable so that checking a config needs neither torch nor Ray.
"""

LIVE_SETTINGS = ("optim.lr", "optim.weight_decay", "optim.momentum", "optim.beta1", "optim.beta2",
                 "model.dropout", "train.batch_size")
