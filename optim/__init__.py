"""Optimizers and learning-rate schedulers, with PyTorch's names and semantics.

``SGD``, ``Adam``, ``AdamW``, ``Adagrad``, ``RMSprop``, ``Adadelta``, ``Adamax``,
``NAdam``, ``RAdam``, ``LBFGS`` (with a closure; strong-Wolfe line search optional) and
``RowAdagrad`` (one accumulator per embedding row, PyTorch-BigGraph's optimizer). ``SGD``, ``Adagrad`` and
``RowAdagrad`` accept the sparse row gradients of ``embedding(..., sparse=True)`` and
update only the touched rows; the others refuse them.

>>> opt = ember.optim.Adam(model.parameters(), lr=1e-3)
>>> sched = ember.optim.lr_scheduler.StepLR(opt, step_size=10, gamma=0.5)
>>> loss.backward(); opt.step(); opt.zero_grad(); sched.step()
"""

from ember.optim import lr_scheduler
from ember.optim.adagrad import Adagrad, RowAdagrad
from ember.optim.adam import Adam, AdamW
from ember.optim.adaptive import Adadelta, Adamax, NAdam, RAdam
from ember.optim.lbfgs import LBFGS
from ember.optim.optimizer import Optimizer
from ember.optim.rmsprop import RMSprop
from ember.optim.sgd import SGD

__all__ = [
    "Optimizer",
    "SGD",
    "Adam",
    "AdamW",
    "Adagrad",
    "RMSprop",
    "Adadelta",
    "Adamax",
    "NAdam",
    "RAdam",
    "LBFGS",
    "RowAdagrad",
    "lr_scheduler",
]
