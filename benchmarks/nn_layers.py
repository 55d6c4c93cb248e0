"""Benchmark: ember.nn CNN and LSTM forward+backward against PyTorch CPU, same process.

    python benchmarks/nn_layers.py [--repeats 15] [--threads N]

* CNN: batch 64 of 1x28x28, conv 1->16 3x3 (pad 1) + relu + maxpool 2 + conv 16->32 3x3
  (pad 1) + relu + linear to 10 classes, cross-entropy; forward + backward.
* LSTM: batch 32, 20 steps, input 128, hidden 128; forward + backward of a loss on the
  output sequence.

Both libraries get the same weights and inputs. Repeats are interleaved (ember, torch,
ember, torch, ...) so that machine noise hits both alike; min and median are reported,
and the ratio ember/torch of the medians. The last line is the verdict against the
target (within 1.5x of PyTorch). ``--threads`` (default 1) pins BLAS and torch to the
same thread count, set before numpy is imported, so both libraries get the same cores
(``--threads 0``: each library's default, which on a small shared machine mostly
measures thread contention).

``--malloc tuned`` (the default) keeps what ``import ember`` does: it raises glibc's
``M_MMAP_THRESHOLD`` to 32 MiB and ``M_TRIM_THRESHOLD`` to 256 MiB for the whole process,
i.e. for both libraries (see ``tensor/_malloc.py``). With
glibc's defaults, every step's multi-megabyte numpy temporaries are handed back to the
kernel when freed and fault in again on the next step (about 3,000 minor page faults per
CNN step, measured here, against 0 for PyTorch, whose allocator keeps its memory); the
per-step fault counts are printed so the effect is visible. ``--malloc default`` shows
the untuned numbers.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

TARGET = 1.5


def parse():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument(
        "--malloc",
        choices=("tuned", "default"),
        default="tuned",
        help="glibc allocator: 'tuned' keeps freed memory in the process (see docstring)",
    )
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="BLAS and torch threads for both libraries (0: each library's default)",
    )
    return ap.parse_args()


ARGS = parse()
if ARGS.threads:
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(ARGS.threads)


# ember tunes glibc's allocator for the whole process when imported (tensor/_malloc.py),
# which then applies to both libraries; EMBER_MALLOC=default leaves it untouched.
if ARGS.malloc == "default":
    os.environ["EMBER_MALLOC"] = "default"

import resource  # noqa: E402

import numpy as np  # noqa: E402

import ember  # noqa: E402
from ember import _malloc  # noqa: E402

MALLOC_TUNED = _malloc.tuned
import ember.nn as nn  # noqa: E402
import ember.nn.functional as F  # noqa: E402

try:
    import torch
except ImportError:  # torch is never a dependency: the benchmark then times ember alone
    torch = None


# ---- the two workloads, built identically in both libraries -----------------------------------


class EmberCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc = nn.Linear(32 * 14 * 14, 10)

    def forward(self, x):
        x = self.pool(self.conv1(x).relu())
        x = self.conv2(x).relu()
        return self.fc(x.reshape(x.shape[0], -1))


def torch_cnn(ember_model):
    tnn = torch.nn

    class TorchCNN(tnn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = tnn.Conv2d(1, 16, 3, padding=1)
            self.pool = tnn.MaxPool2d(2)
            self.conv2 = tnn.Conv2d(16, 32, 3, padding=1)
            self.fc = tnn.Linear(32 * 14 * 14, 10)

        def forward(self, x):
            x = self.pool(self.conv1(x).relu())
            x = self.conv2(x).relu()
            return self.fc(x.reshape(x.shape[0], -1))

    m = TorchCNN()
    copy_weights(ember_model, m)
    return m


def copy_weights(src, dst):
    sd = {k: torch.from_numpy(np.array(v.numpy())) for k, v in src.state_dict().items()}
    dst.load_state_dict(sd)


def cnn_step_ember(model, x, y):
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()


def cnn_step_torch(model, x, y):
    model.zero_grad()
    torch.nn.functional.cross_entropy(model(x), y).backward()


def lstm_step_ember(model, x, target):
    model.zero_grad()
    out, _ = model(x)
    F.mse_loss(out, target).backward()


def lstm_step_torch(model, x, target):
    model.zero_grad()
    out, _ = model(x)
    torch.nn.functional.mse_loss(out, target).backward()


FAULTS = {"ember": 0, "torch": 0}


def timeit(lib, fn, *args):
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    t = time.perf_counter()
    fn(*args)
    dt = time.perf_counter() - t
    FAULTS[lib] += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0
    return dt


def compare(name, ember_case, torch_case):
    for _ in range(ARGS.warmup):
        ember_case[0](*ember_case[1:])
        if torch_case:
            torch_case[0](*torch_case[1:])
    te, tt = [], []
    FAULTS.update(ember=0, torch=0)
    for _ in range(ARGS.repeats):  # interleaved: noise lands on both alike
        te.append(timeit("ember", *ember_case))
        if torch_case:
            tt.append(timeit("torch", *torch_case))
    n = ARGS.repeats
    print(
        f"{name:<34} ember  min {min(te) * 1e3:8.2f} ms  median {statistics.median(te) * 1e3:8.2f} ms"
        f"  ({FAULTS['ember'] / n:.0f} page faults/step)"
    )
    if not tt:
        return None
    print(
        f"{'':<34} torch  min {min(tt) * 1e3:8.2f} ms  median {statistics.median(tt) * 1e3:8.2f} ms"
        f"  ({FAULTS['torch'] / n:.0f} page faults/step)"
    )
    ratio = statistics.median(te) / statistics.median(tt)
    print(f"{'':<34} ratio ember/torch: median {ratio:.2f}x, min {min(te) / min(tt):.2f}x")
    return ratio


def main():
    rng = np.random.default_rng(0)
    ember.manual_seed(0)
    threads = ARGS.threads or "default"
    print(
        f"ember.nn layers vs {'torch ' + torch.__version__ if torch else 'no torch (ember only)'}; "
        f"threads={threads}; malloc={'tuned' if MALLOC_TUNED else 'default'}; "
        f"repeats={ARGS.repeats}, interleaved"
    )
    if torch is not None and ARGS.threads:
        torch.set_num_threads(ARGS.threads)

    # CNN
    cnn = EmberCNN()
    xb = rng.standard_normal((64, 1, 28, 28)).astype(np.float32)
    yb = rng.integers(0, 10, 64)
    ember_cnn = (cnn_step_ember, cnn, ember.tensor(xb), ember.tensor(yb))
    torch_cnn_case = None
    if torch is not None:
        torch_cnn_case = (cnn_step_torch, torch_cnn(cnn), torch.from_numpy(xb), torch.from_numpy(yb))
    r_cnn = compare("CNN fwd+bwd (64x1x28x28)", ember_cnn, torch_cnn_case)

    # LSTM
    lstm = nn.LSTM(128, 128)
    xs = rng.standard_normal((20, 32, 128)).astype(np.float32)
    ts = rng.standard_normal((20, 32, 128)).astype(np.float32)
    ember_lstm = (lstm_step_ember, lstm, ember.tensor(xs), ember.tensor(ts))
    torch_lstm_case = None
    if torch is not None:
        tl = torch.nn.LSTM(128, 128)
        copy_weights(lstm, tl)
        torch_lstm_case = (lstm_step_torch, tl, torch.from_numpy(xs), torch.from_numpy(ts))
    r_lstm = compare("LSTM fwd+bwd (T20 B32 H128)", ember_lstm, torch_lstm_case)

    if torch is None:
        print("verdict: SKIP (PyTorch not importable; ember timings above)")
        return 0
    ok = r_cnn <= TARGET and r_lstm <= TARGET
    print(
        f"verdict: {'PASS' if ok else 'FAIL'} CNN {r_cnn:.2f}x, LSTM {r_lstm:.2f}x of PyTorch CPU "
        f"(target <= {TARGET}x)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
