"""trainables/eager_optim.py: torch's own optimizer arithmetic, bit for bit, without its compiler."""

import json
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from tests.conftest import ROOT
from trainables.eager_optim import eager_step, keep_compiler_unloaded
from trainables.optim import OPTIMIZERS, build_optimizer

# Adam and SGD take their fused update on both; RMSprop its multi-tensor (foreach) path on CUDA and
# its per-tensor one on the CPU.
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device here (benchmarks/gpu_device.sh runs it)"))]


def _train(name: str, step, device: str) -> tuple[list[torch.Tensor], dict]:
    """Five steps of a small net on `device` with optimizer `name`, each taken by `step(optimizer)`."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(20, 16), torch.nn.Tanh(),
                                torch.nn.Linear(16, 4)).to(device)
    optimizer = build_optimizer({"name": name, "lr": 0.01, "weight_decay": 1e-3}, model.parameters())
    inputs = torch.randn(32, 20).to(device)
    labels = torch.randint(0, 4, (32,)).to(device)
    for _ in range(5):
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(inputs), labels).backward()
        step(optimizer)
    return [p.detach().clone() for p in model.parameters()], optimizer.state_dict()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_eager_steps_give_the_weights_and_state_of_torchs_own_steps(name, device):
    keep_compiler_unloaded()
    eager_weights, eager_state = _train(name, eager_step, device)
    torch_weights, torch_state = _train(name, lambda optimizer: optimizer.step(), device)
    assert all(torch.equal(a, b) for a, b in zip(eager_weights, torch_weights, strict=True))
    assert eager_state["param_groups"] == torch_state["param_groups"]
    for index, moments in torch_state["state"].items():
        assert moments.keys() == eager_state["state"][index].keys()
        assert all(torch.equal(value, eager_state["state"][index][key]) for key, value in moments.items())


# What a trial process does with each model and optimizer: train, evaluate, checkpoint, load.
TRIAL_PROCESS = """
import json, sys
from trainables.learner import Learner, load_state, save_state, to_tensors
from trainables.targets import build
for config in json.load(sys.stdin):
    data = to_tensors(build(config["data"], seed=config["seed"]), "cpu")
    learner = Learner(config, data, "cpu", seed=0)
    learner.train_epoch(config["train"]["batch_size"], {}, lambda _: config["optim"]["lr"], lambda _: None)
    learner.evaluate("val")
    save_state(learner.state(), sys.argv[1])
    learner.load(load_state(sys.argv[1]))
print(json.dumps(sorted(name for name in sys.modules if name.startswith("torch._dynamo"))))
"""


def test_a_trial_process_never_loads_torchs_compiler(compose_config, tmp_path):
    experiments = ("experiment=digits_mlp", "experiment=digits_cnn",
                   "experiment=mnist1d_transformer data.num_samples=500")
    configs = [compose_config(*experiment.split(), f"optim.name={name}")
               for experiment in experiments for name in OPTIMIZERS]
    done = subprocess.run([sys.executable, "-c", TRIAL_PROCESS, str(tmp_path / "state.pt")],
                          input=json.dumps(configs), cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.splitlines()[-1]) == []
