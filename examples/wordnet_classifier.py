"""Downstream use of graph embeddings: predict a WordNet synset's part of speech from its
ComplEx embedding alone, with a small `ember.nn` classifier.

    pbg quickstart                                       # trains + exports the embeddings
    python examples/wordnet_classifier.py --export ember_quickstart/wordnet_k3_pbg/exports/parquet
    python examples/wordnet_classifier.py --workspace ember_quickstart/wordnet_k3_pbg
    python examples/wordnet_classifier.py                # trains its own (about 15 s)

The label is the first letter of the synset id (n noun, v verb, a adjective; the WN18RR
ids of the bundled graph have no s or r); the graph never sees it, only the relations
between synsets. The
script reports held-out accuracy against the majority-class baseline (always "noun").
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

import ember
import ember.nn as nn
import ember.nn.functional as F
import ember.optim

POS = {"n": "noun", "v": "verb", "a": "adjective", "s": "adjective satellite", "r": "adverb"}


def train_embeddings(folder: Path, epochs: int) -> Path:
    """Import the bundled WordNet 3-core graph and train ComplEx on it (library calls)."""
    from ember.datasets import real_graph
    from ember.partitioning import ImportOptions, import_edges
    from ember.pbg.config import load_config
    from ember.pbg.train import train

    g = real_graph("wordnet_k3")
    ws = folder / "wordnet_k3_pbg"
    import_edges([g.train], ImportOptions(out=ws, valid=[g.valid], test=[g.test], overwrite=True))
    cfg = load_config(ws / "config.toml", overrides=[f"num_epochs={epochs}", "regularization_coef=0.001"])
    print(f"training ComplEx on WordNet for {epochs} epochs ...", file=sys.stderr)
    train(cfg, progress=False, log=lambda m: None)
    return ws


def load_embeddings(args) -> tuple[list[str], np.ndarray]:
    if args.export:  # any format `pbg export` writes
        from ember.pbg.export import read_export

        return read_export(args.export, "all")
    import ember.pbg

    ws = args.workspace or train_embeddings(Path(tempfile.mkdtemp()), args.epochs)
    model = ember.pbg.load(ws)
    names = model.entities()
    return names, model.embeddings(names)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--export", type=Path, help="an export folder (pbg export, any format)")
    ap.add_argument("--workspace", type=Path, help="a trained workspace (or its config)")
    ap.add_argument("--epochs", type=int, default=10, help="when training here")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    names, emb = load_embeddings(args)
    classes = sorted({n[0] for n in names}, key=list(POS).index)
    y = np.array([classes.index(n[0]) for n in names])
    # standardise: embedding scales differ between models; the classifier should not care
    x = ((emb - emb.mean(0)) / (emb.std(0) + 1e-6)).astype(np.float32)
    rng = np.random.default_rng(args.seed)
    perm = rng.permutation(len(y))
    cut = int(0.8 * len(y))
    tr, te = perm[:cut], perm[cut:]

    ember.manual_seed(args.seed)
    clf = nn.Sequential(nn.Linear(x.shape[1], 128), nn.ReLU(), nn.Dropout(0.2), nn.Linear(128, len(classes)))
    opt = ember.optim.Adam(clf.parameters(), lr=3e-3, weight_decay=1e-4)
    X, Y = ember.tensor(x), ember.tensor(y)
    batch = 1024
    for step in range(args.steps):
        idx = ember.tensor(rng.choice(tr, batch, replace=False))
        loss = F.cross_entropy(clf(X[idx]), Y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 0:
            print(f"step {step:4d}  loss {loss.item():.4f}", file=sys.stderr)
    clf.eval()
    with ember.no_grad():
        pred = clf(X[ember.tensor(te)]).argmax(dim=1).numpy()
    acc = float((pred == y[te]).mean())
    majority = int(np.bincount(y[tr]).argmax())
    base = float((y[te] == majority).mean())
    print(f"synsets: {len(y):,} ({', '.join(f'{c} {int((y == i).sum()):,}' for i, c in enumerate(classes))})")
    print(
        f"part-of-speech accuracy on {len(te):,} held-out synsets: {acc:.1%} "
        f"(majority class '{classes[majority]}': {base:.1%})"
    )
    for i, c in enumerate(classes):
        m = y[te] == i
        if m.any():
            print(f"  {POS[c]:10s} recall {float((pred[m] == i).mean()):.1%}")
    return {"accuracy": acc, "baseline": base}


if __name__ == "__main__":
    main()
