"""End-to-end learning with ember.nn: fixed seeds, small data, stated accuracy floors.

Each model trains in a few seconds on two CPU cores; the floors sit well under what the
seeded runs reach, so they catch a broken layer or gradient, not bad luck.
"""

from __future__ import annotations

import numpy as np
import pytest

import ember
import ember.nn as nn
import ember.nn.functional as F

optim = pytest.importorskip("ember.optim")


def accuracy(logits, labels):
    return float((logits.detach().numpy().argmax(-1) == np.asarray(labels)).mean())


def two_spirals(n_per_class, rng):
    t = np.sqrt(rng.uniform(0, 1, n_per_class)) * 3 * np.pi
    a = np.stack([t * np.cos(t), t * np.sin(t)], 1)
    pts = np.concatenate([a, -a]) / (3 * np.pi) + rng.normal(0, 0.02, (2 * n_per_class, 2))
    return pts.astype(np.float32), np.repeat([0, 1], n_per_class)


def test_mlp_fits_two_spirals_above_95_percent():
    ember.manual_seed(0)
    rng = np.random.default_rng(0)
    x, y = two_spirals(200, rng)
    model = nn.Sequential(nn.Linear(2, 64), nn.Tanh(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 2))
    opt = optim.Adam(model.parameters(), lr=0.01)
    xt, yt = ember.tensor(x), ember.tensor(y)
    for _ in range(400):
        opt.zero_grad()
        F.cross_entropy(model(xt), yt).backward()
        opt.step()
    assert accuracy(model(xt), y) > 0.95


def bars_and_crosses(n, rng, size=12):
    """Class 0: a horizontal bar, 1: a vertical bar, 2: a cross; random place and length, noise."""
    imgs = rng.normal(0, 0.1, (n, 1, size, size)).astype(np.float32)
    labels = rng.integers(0, 3, n)
    for img, c in zip(imgs, labels):
        r, col = rng.integers(2, size - 2, 2)
        length = rng.integers(5, 9)
        r0, c0 = max(0, r - length // 2), max(0, col - length // 2)
        if c in (0, 2):
            img[0, r, c0 : c0 + length] += 1.0
        if c in (1, 2):
            img[0, r0 : r0 + length, col] += 1.0
    return imgs, labels


def test_small_cnn_classifies_bars_and_crosses_well_above_chance():
    ember.manual_seed(0)
    rng = np.random.default_rng(0)
    x, y = bars_and_crosses(600, rng)
    x_test, y_test = bars_and_crosses(300, rng)
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Dropout(0.1),
        nn.Linear(16 * 3 * 3, 3),
    )
    opt = optim.Adam(model.parameters(), lr=0.01)
    for _epoch in range(6):
        perm = rng.permutation(len(x))
        for i in range(0, len(x), 50):
            b = perm[i : i + 50]
            opt.zero_grad()
            F.cross_entropy(model(ember.tensor(x[b])), ember.tensor(y[b])).backward()
            opt.step()
    model.eval()
    # chance is 1/3; floor 0.85 on held-out images
    assert accuracy(model(ember.tensor(x_test)), y_test) > 0.85


def test_lstm_learns_running_parity():
    ember.manual_seed(0)
    rng = np.random.default_rng(0)
    seq_len, hidden = 10, 24

    class Parity(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(1, hidden, batch_first=True)
            self.head = nn.Linear(hidden, 2)

        def forward(self, bits):
            out, _ = self.lstm(bits)
            return self.head(out)

    model = Parity()
    opt = optim.Adam(model.parameters(), lr=0.02)
    for _ in range(250):
        bits = rng.integers(0, 2, (64, seq_len))
        target = np.cumsum(bits, 1) % 2
        opt.zero_grad()
        logits = model(ember.tensor(bits[:, :, None].astype(np.float32)))
        F.cross_entropy(logits.reshape(-1, 2), ember.tensor(target.reshape(-1))).backward()
        opt.step()
    bits = rng.integers(0, 2, (256, seq_len))
    logits = model(ember.tensor(bits[:, :, None].astype(np.float32)))
    # floor: 95% of all (sequence, step) parities right; chance is 50%
    assert accuracy(logits, np.cumsum(bits, 1) % 2) > 0.95


def test_transformer_encoder_block_overfits_a_tiny_batch():
    ember.manual_seed(0)
    rng = np.random.default_rng(0)
    vocab, d_model, seq = 8, 16, 6
    tokens = rng.integers(0, vocab, (4, seq))
    targets = rng.integers(0, 3, (4, seq))  # arbitrary labels: only memorisation can fit them
    emb = nn.Embedding(vocab, d_model)
    pos = nn.Parameter(ember.randn(seq, d_model) * 0.1)
    block = nn.TransformerEncoderLayer(d_model, 2, dim_feedforward=32, dropout=0.0, batch_first=True)
    head = nn.Linear(d_model, 3)
    params = [*emb.parameters(), pos, *block.parameters(), *head.parameters()]
    opt = optim.Adam(params, lr=0.01)

    def logits():
        return head(block(emb(ember.tensor(tokens)) + pos))

    first = None
    for _ in range(150):
        opt.zero_grad()
        loss = F.cross_entropy(logits().reshape(-1, 3), ember.tensor(targets.reshape(-1)))
        loss.backward()
        opt.step()
        first = first if first is not None else float(loss)
    final = float(F.cross_entropy(logits().reshape(-1, 3), ember.tensor(targets.reshape(-1))))
    assert final < 0.05 * first
    assert accuracy(logits(), targets) == 1.0
