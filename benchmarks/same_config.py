"""hypersweep's training against peers.py's plain loop, config by config: whether a trial of the
same config ends at the same accuracy in both, so that the sweeps' comparison is one of searches.

    python benchmarks/same_config.py --configs 64 --data-seeds 0 1 2 3

Draws `--configs` configs at random from the default sweep's space (the same ones for each data
seed) and trains each for the full 20 epochs twice from the same initial weights: in the loop the
peers run (benchmarks/peers.py: train_epochs) and in the trainable's Learner (its own data order
and dropout stream). Prints per data seed, and over all, the mean difference in final val_acc
(Learner minus plain loop) with its 95% interval, over the configs both loops trained past 0.5
(one at the edge of divergence diverges in one loop and not in the other by chance), and how
many diverged in each loop.
"""

import argparse
import math
import os
import random
import statistics
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.peers import MAX_EPOCHS, SPACE, mean_interval, train_epochs  # noqa: E402

LEARNED = 0.5  # a final val_acc above this learned; a diverged MLP stays near 0.1 on ten digits


def draw_configs(count: int, seed: int) -> list[dict]:
    """`count` configs drawn uniformly from SPACE (the learning rate log-uniformly)."""
    rng = random.Random(seed)
    return [{name: 10 ** rng.uniform(math.log10(spec[1]), math.log10(spec[2]))
             if spec[0] == "loguniform" else rng.choice(spec[1]) for name, spec in SPACE.items()}
            for _ in range(count)]


def plain_loop(params: dict, data, seed: int) -> float:
    """Final val_acc of peers.py's loop, its weights drawn after torch.manual_seed(seed)."""
    import torch

    torch.manual_seed(seed)
    reports: list[float] = []

    def record(epoch: int, accuracy: float) -> bool:
        reports.append(accuracy)
        return False  # never stop the trial: every config trains its full epochs

    train_epochs(params, data, record)
    return reports[-1]


def learner_loop(params: dict, tensors: dict, seed: int) -> float:
    """Final val_acc of the trainable's Learner, its weights drawn from `seed` as plain_loop's."""
    import torch

    from trainables.learner import Learner

    config = {"model": {"_target_": "trainables.models.MLP", "norm": "none",
                        **{key: params[key] for key in ("hidden_layers", "hidden_units", "dropout",
                                                        "activation")}},
              "optim": {"name": params["optimizer"], "lr": params["lr"]}}
    learner = Learner(config, tensors, torch.device("cpu"), seed)
    with learner.own_random_state():
        for _ in range(MAX_EPOCHS):
            learner.train_epoch(params["batch_size"], {}, lambda fraction: params["lr"],
                                lambda loss: None)
    return learner.evaluate("val")[1]


def final_accuracies(loop: str, data_seed: int, configs: list[dict]) -> list[float]:
    """Each config's final val_acc in `loop` ("plain" or "learner") on the data seed's split."""
    import torch

    from trainables.data import load_digits
    from trainables.learner import to_tensors

    torch.set_num_threads(1)
    data = load_digits(seed=data_seed)
    if loop == "plain":
        return [plain_loop(params, data, index) for index, params in enumerate(configs)]
    tensors = to_tensors(data, torch.device("cpu"))
    return [learner_loop(params, tensors, index) for index, params in enumerate(configs)]


def differences(plain: list[float], learner: list[float]) -> list[float]:
    """Learner minus plain loop, over the configs both trained past LEARNED."""
    return [ours - theirs for theirs, ours in zip(plain, learner, strict=True)
            if theirs > LEARNED and ours > LEARNED]


def summary(label: str, plain: list[float], learner: list[float]) -> str:
    """One line: the mean difference with its 95% interval, and the diverged counts."""
    compared = differences(plain, learner)
    mean, low, high = mean_interval(compared)
    return (f"{label}: learner - plain {mean:+.4f} (95% interval {low:+.4f} to {high:+.4f}) over "
            f"{len(compared)} configs; mean {statistics.fmean(learner):.4f} against "
            f"{statistics.fmean(plain):.4f}; diverged {sum(a <= LEARNED for a in learner)} against "
            f"{sum(a <= LEARNED for a in plain)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", type=int, default=64)
    parser.add_argument("--data-seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--config-seed", type=int, default=1000)
    args = parser.parse_args()
    configs = draw_configs(args.configs, args.config_seed)
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        jobs = {(loop, seed): pool.submit(final_accuracies, loop, seed, configs)
                for seed in args.data_seeds for loop in ("plain", "learner")}
        results = {key: job.result() for key, job in jobs.items()}
    plain_all, learner_all = [], []
    for seed in args.data_seeds:
        plain, learner = results["plain", seed], results["learner", seed]
        print(summary(f"data seed {seed}", plain, learner), flush=True)
        plain_all += plain
        learner_all += learner
    print(summary(f"all {len(args.data_seeds)} data seeds", plain_all, learner_all))


if __name__ == "__main__":
    main()
