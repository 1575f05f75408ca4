"""trainables/optim.py: the optimizers by name, with torch's fused update where it fits."""

import pytest
import torch
import torch.nn.functional as F

from trainables.optim import build_optimizer


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(20, 16), torch.nn.Tanh(), torch.nn.Linear(16, 4))


def _steps(model: torch.nn.Module, optimizer: torch.optim.Optimizer, count: int) -> None:
    inputs, labels = torch.randn(32, 20), torch.randint(0, 4, (32,))
    for _ in range(count):
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(inputs), labels).backward()
        optimizer.step()


@pytest.mark.parametrize("name, fused", [("adam", True), ("sgd", True), ("rmsprop", None)])
def test_adam_and_sgd_take_the_fused_update_on_the_cpu(name, fused):
    model = _net()
    optimizer = build_optimizer({"name": name, "lr": 0.01}, model.parameters())
    assert optimizer.defaults.get("fused") is fused  # RMSprop has no fused update
    _steps(model, optimizer, 2)
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_parameters_the_fused_update_cannot_take_train_with_torchs_own_default():
    # Complex weights: torch's fused update refuses them at the first step.
    weights = torch.nn.Parameter(torch.randn(3, dtype=torch.cfloat))
    optimizer = build_optimizer({"name": "adam", "lr": 0.1}, [weights])
    assert optimizer.defaults["fused"] is None
    before = weights.detach().clone()
    weights.abs().sum().backward()
    optimizer.step()
    assert not torch.equal(weights.detach(), before)


def test_a_checkpoint_of_the_per_tensor_update_resumes_in_the_fused_one():
    # Trials of a sweep saved before the fused update resume from such checkpoints.
    model = _net()
    per_tensor = torch.optim.Adam(model.parameters(), lr=0.01)
    _steps(model, per_tensor, 3)
    fused = build_optimizer({"name": "adam", "lr": 0.01}, model.parameters())
    fused.load_state_dict(per_tensor.state_dict())
    _steps(model, fused, 1)
    assert [float(fused.state[p]["step"]) for p in model.parameters()] == [4.0] * 4
    assert all(torch.isfinite(p).all() for p in model.parameters())
