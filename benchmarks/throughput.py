"""Training throughput of the trial loop against a bare PyTorch loop, side by side.

Both loops train the same model on the same batches: the bare loop is forward, loss,
backward and an SGD step with the optimiser's own weight decay; the trial loop is
:func:`nonbinary_ft.training.loop.train_one_epoch` with its param groups, scheduler and
L2-SP/L2 penalty. The two are interleaved (A B A B ...) so that a noisy, shared machine
slows both alike; the ratio of medians is printed. Goal: >= 0.95.

    python -m benchmarks.throughput [--model tf_efficientnet_lite0] [--size 96] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import timm
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from nonbinary_ft.config import TrainConfig, TrialSettings
from nonbinary_ft.models.layers import build_layer_map, plan_layers
from nonbinary_ft.regularization import L2SPRegulariser
from nonbinary_ft.training.loop import Precision, train_one_epoch
from nonbinary_ft.training.optim import build_param_groups, create_optimizer, create_scheduler


def bare_epoch(
    model: nn.Module, loader: DataLoader, optimizer: torch.optim.Optimizer, device: torch.device
) -> int:
    """The reference: the plainest correct PyTorch training loop."""
    model.train()
    criterion = nn.CrossEntropyLoss()
    seen = 0
    for images, targets in loader:
        images, targets = images.to(device), targets.to(device)
        loss = criterion(model(images), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        seen += targets.size(0)
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tf_efficientnet_lite0")
    parser.add_argument("--size", type=int, default=96, help="Image side in pixels.")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--batches", type=int, default=6, help="Batches per timed epoch.")
    parser.add_argument("--rounds", type=int, default=5, help="Timed epochs of each loop.")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()

    device = torch.device(args.device)
    torch.manual_seed(0)
    images = torch.randn(args.batch * args.batches, 3, args.size, args.size)
    labels = torch.randint(0, 10, (len(images),))
    loader = DataLoader(TensorDataset(images, labels), batch_size=args.batch, shuffle=False)

    # Two identical models, so neither loop's updates change the other's work.
    bare_model = timm.create_model(args.model, pretrained=False, num_classes=10).to(device)
    trial_model = timm.create_model(args.model, pretrained=False, num_classes=10).to(device)
    trial_model.load_state_dict(bare_model.state_dict())

    bare_opt = torch.optim.SGD(
        bare_model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-4
    )
    settings = TrialSettings(
        reinit_layers=2,
        lr_high=0.01,
        low_layers=3,
        lr_low=0.001,
        l2sp_layers=4,
        alpha=0.01,
        beta=1e-4,
    )
    train_cfg = TrainConfig(epochs=args.rounds + 1, warmup_epochs=1)
    layer_map = build_layer_map(trial_model, args.model)
    plan = plan_layers(layer_map, settings)
    optimizer = create_optimizer(
        build_param_groups(trial_model, layer_map, plan, settings), train_cfg
    )
    scheduler = create_scheduler(optimizer, train_cfg, steps_per_epoch=len(loader))
    regulariser = L2SPRegulariser(trial_model, layer_map, plan, settings.alpha, settings.beta)
    precision = Precision.for_device(device, amp=False, channels_last=False)
    scaler = torch.amp.GradScaler(device.type, enabled=False)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    def timed(run) -> float:
        sync()
        start = time.perf_counter()
        seen = run()
        sync()
        return seen / (time.perf_counter() - start)

    def run_bare() -> int:
        return bare_epoch(bare_model, loader, bare_opt, device)

    def run_trial_loop() -> int:
        return train_one_epoch(
            trial_model, loader, optimizer, scheduler, regulariser, precision, scaler
        ).samples

    run_bare()  # warm-up: allocator, kernels, caches
    run_trial_loop()
    bare, trial = [], []
    for _ in range(args.rounds):
        bare.append(timed(run_bare))
        trial.append(timed(run_trial_loop))
    result = {
        "model": args.model,
        "device": str(device),
        "batch": args.batch,
        "image_size": args.size,
        "bare_images_per_s": statistics.median(bare),
        "trial_images_per_s": statistics.median(trial),
        "ratio": statistics.median(trial) / statistics.median(bare),
        "goal": 0.95,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
