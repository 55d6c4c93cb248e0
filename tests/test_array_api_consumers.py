"""Standard-conformant libraries run on ember tensors through ``__array_namespace__``:
scikit-learn estimators under ``array_api_dispatch`` and scipy.stats functions under
``SCIPY_ARRAY_API=1`` give numpy's results, as ember tensors.

Both switches must be set before scipy is imported, so each check runs in a fresh
interpreter.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("sklearn", reason="scikit-learn is in the dev extra (pip install -e '.[dev]')")

_SKLEARN = """
import numpy as np, sklearn, ember
from sklearn.decomposition import PCA
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.linear_model import Ridge
from sklearn.preprocessing import StandardScaler

rng = np.random.default_rng(0)
X = rng.standard_normal((80, 5)) * [1.0, 2.0, 0.5, 3.0, 1.5] + [0.0, 1.0, -2.0, 0.5, 0.0]
y = (X[:, 0] + 0.5 * X[:, 1] > 0.5).astype(np.int64) + (X[:, 3] > 1)
t = rng.standard_normal(80)
Xe, ye, te = ember.tensor(X, dtype=ember.float64), ember.tensor(y), ember.tensor(t, dtype=ember.float64)
cases = {
    "PCA": (lambda: PCA(3, svd_solver="full"), lambda m, a, b, c: m.fit(a).transform(a)),
    "LinearDiscriminantAnalysis": (
        LinearDiscriminantAnalysis,
        lambda m, a, b, c: m.fit(a, b).predict_proba(a),
    ),
    "StandardScaler": (StandardScaler, lambda m, a, b, c: m.fit_transform(a)),
    "Ridge": (lambda: Ridge(alpha=0.5, solver="svd"), lambda m, a, b, c: m.fit(a, c).predict(a)),
}
for name, (make, run) in cases.items():
    want = run(make(), X, y, t)
    with sklearn.config_context(array_api_dispatch=True):
        got = run(make(), Xe, ye, te)
    assert type(got) is ember.Tensor, (name, type(got))
    got = got.numpy()
    if name == "PCA":  # components are defined up to sign
        got, want = got * np.sign(got[0]), want * np.sign(want[0])
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-10, err_msg=name)
    print(name, "ok")
"""

_SCIPY = """
import numpy as np, ember, scipy.special, scipy.stats as st

X = np.random.default_rng(1).standard_normal((30, 3)) * 2 + 1
Xe = ember.tensor(X, dtype=ember.float64)
cases = {
    "moment": lambda a: st.moment(a, 3, axis=0),
    "zscore": lambda a: st.zscore(a, axis=0),
    "skew": lambda a: st.skew(a, axis=0),
    "kurtosis": lambda a: st.kurtosis(a, axis=0),
    "variation": lambda a: st.variation(a, axis=1),
    "gmean": lambda a: st.gmean(a * a + 1, axis=0),
    "ttest_1samp": lambda a: st.ttest_1samp(a, 0.5, axis=0).statistic,
    "logsumexp": lambda a: scipy.special.logsumexp(a, axis=1),
}
for name, f in cases.items():
    got = f(Xe)
    assert type(got) is ember.Tensor, (name, type(got))
    np.testing.assert_allclose(got.numpy(), f(X), rtol=1e-10, atol=1e-12, err_msg=name)
    print(name, "ok")
"""


def _run(code, **env):
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={**os.environ, "SCIPY_ARRAY_API": "1", **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_sklearn_estimators_fitted_on_ember_arrays_equal_numpys():
    out = _run(_SKLEARN)
    for name in ("PCA", "LinearDiscriminantAnalysis", "StandardScaler", "Ridge"):
        assert f"{name} ok" in out


def test_scipy_stats_on_ember_arrays_equal_numpys():
    out = _run(_SCIPY)
    assert out.count(" ok") == 8
