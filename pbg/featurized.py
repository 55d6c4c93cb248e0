"""Featurized entity types in training and in every reader of a trained model.

An entity of a featurized type is a bag of features (``pbg import --features``); its
embedding is the mean of its features' rows in the type's table (the feature table, the
only thing trained), plus the type's global embedding. `entity_vectors` is the one place
that derives a type's entity vectors from its checkpoint table: evaluation, export,
predict, neighbors, the index and the report all call it (through
`ember.pbg.api.EmbeddingModel.read_partition` or `ember.pbg.eval`), with the very
arithmetic the trainer's `ember.sparse.BagMean` used.

In training, `DeviceBags` holds a type's bags on the training device and turns a batch's
entity ids (positives and negatives alike) into their bags' flat feature ids, so that one
`BagMean` node gathers them and its gradient is one coalesced `RowSparseGrad` over the
features the batch touched.
"""

from __future__ import annotations

import numpy as np

from ember._backend import array_module, to_host
from ember.sparse import BagMean, bag_mean_array

__all__ = ["DeviceBags", "entity_vectors", "featurized_vectors"]


def entity_vectors(table, offsets, features, glob=None, ids=None):
    """The (n, d) float32 entity vectors of a featurized type: the mean of each entity's
    feature rows of ``table`` (its checkpoint table, (num_features, d)), plus ``glob``
    (the type's global embedding, or None). ``offsets``/``features``: the type's bags
    (CSR, on ``table``'s device); ``ids``: only these entities (default: all)."""
    xp = array_module(table)
    if ids is not None:
        features, offsets = expand(xp, offsets, features, ids)
    out = bag_mean_array(table, features, offsets)
    out = out if out.dtype == np.float32 else out.astype(np.float32)
    return out + glob if glob is not None else out


def featurized_vectors(ws, etype, table, glob=None, dev=np.asarray):
    """`entity_vectors` of a workspace's featurized type ``etype`` from its checkpoint
    ``table`` (on the device ``dev`` copies the bags to), checking the table's rows."""
    bags = ws.bags(etype)
    if table.shape[0] != bags.num_features:
        from ember.errors import InputFileError

        raise InputFileError(
            f"the checkpoint's table of featurized type {etype!r} has {table.shape[0]} rows, "
            f"the workspace has {bags.num_features} features; train again"
        )
    g = None if glob is None else dev(np.asarray(glob, np.float32))
    return entity_vectors(table, dev(bags.offsets), dev(bags.features), g)


def expand(xp, offsets, features, ids):
    """The flat feature ids and bag offsets of the bags of entities ``ids`` (any shape,
    flattened), in whole-array ops on the arrays' device: one host read, the total."""
    ids = ids.reshape(-1)
    starts = offsets[ids]
    lens = offsets[ids + 1] - starts
    new = xp.zeros(ids.shape[0] + 1, dtype=offsets.dtype)
    xp.cumsum(lens, out=new[1:])
    total = int(to_host(new[-1:])[0])
    pos = xp.arange(total, dtype=offsets.dtype)
    seg = xp.searchsorted(new[1:], pos, side="right")
    return features[starts[seg] + pos - new[seg]], new


class DeviceBags:
    """A featurized type's bags on the training device: ``offsets`` (entities + 1) and
    ``features`` (int64)."""

    def __init__(self, bags, to_device):
        self.offsets = to_device(np.asarray(bags.offsets, np.int64))
        self.features = to_device(np.asarray(bags.features, np.int64))
        self.num_entities = int(bags.num_entities)
        self.nbytes = int(self.offsets.nbytes + self.features.nbytes)

    def rows(self, leaf, ids):
        """The mean rows of the bags of entity ids ``ids`` (flat) as one `BagMean` node of
        the table ``leaf`` (a leaf tensor), its gradient row-sparse over features."""
        feats, offs = expand(array_module(leaf._data), self.offsets, self.features, ids)
        return BagMean.apply(leaf, feats, offs, True)
