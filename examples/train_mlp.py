"""Train a small MLP with ember on a synthetic two-spirals task (well under a minute on a laptop CPU).

    python examples/train_mlp.py

Shows the PyTorch-shaped API: tensors, autograd, and a hand-written SGD step.
"""

from __future__ import annotations

import numpy as np

import ember


def two_spirals(n, rng):
    t = np.sqrt(rng.random(n)) * 3 * np.pi
    side = rng.integers(0, 2, n)
    r = t / (3 * np.pi)
    angle = t + side * np.pi
    x = np.stack([r * np.cos(angle), r * np.sin(angle)], 1) + rng.normal(0, 0.02, (n, 2))
    return x.astype(np.float32), side


def main(steps: int = 1500, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    ember.manual_seed(seed)
    x, y = two_spirals(2000, rng)
    X, Y = ember.tensor(x), ember.tensor(y)
    sizes = (2, 64, 64, 2)
    params = []
    for i, o in zip(sizes[:-1], sizes[1:]):
        w = (ember.randn(i, o) * (2 / i) ** 0.5).requires_grad_()
        b = ember.zeros(o, requires_grad=True)
        params += [w, b]

    def forward(inp):
        h = inp
        for k in range(0, len(params), 2):
            h = h @ params[k] + params[k + 1]
            if k < len(params) - 2:
                h = h.tanh()
        return h

    lr = 0.5
    for step in range(steps):
        logp = forward(X).log_softmax(dim=1)
        loss = -logp.gather(1, Y.unsqueeze(1)).mean()
        for p in params:
            p.grad = None
        loss.backward()
        with ember.no_grad():
            for p in params:
                p -= lr * p.grad
        if step % 300 == 0:
            print(f"step {step:5d}  loss {loss.item():.4f}")
    with ember.no_grad():
        acc = (forward(X).argmax(dim=1) == Y).float().mean().item()
    print(f"training accuracy: {acc:.1%} (chance: 50%)")
    return acc


if __name__ == "__main__":
    main()
