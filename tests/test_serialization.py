"""ember.save / ember.load: bit-for-bit round trips, no pickle, refusing bad files."""

from __future__ import annotations

import os

import h5py
import numpy as np
import pytest

import ember
from ember import optim


def test_round_trip_is_bit_for_bit_and_keeps_dtypes(tmp_path, rng):
    obj = {
        "f32": ember.tensor(rng.standard_normal((3, 4)).astype(np.float32)),
        "f64": ember.tensor(rng.standard_normal(5)),
        "f16": ember.tensor(rng.standard_normal(2).astype(np.float16)),
        "i64": ember.tensor(rng.integers(-(2**40), 2**40, size=4)),
        "u8": ember.tensor(np.arange(5, dtype=np.uint8)),
        "bool": ember.tensor(np.array([True, False])),
        "scalar0d": ember.tensor(np.float32(np.nan)),
        "w": ember.ones(2, requires_grad=True),
    }
    ember.save(obj, tmp_path / "t.h5")
    back = ember.load(tmp_path / "t.h5")
    assert list(back) == list(obj)
    for k, t in obj.items():
        assert type(back[k]) is ember.Tensor
        assert back[k].dtype == t.dtype and back[k].shape == t.shape
        assert t._data.tobytes() == back[k]._data.tobytes(), k
    assert back["w"].requires_grad and not back["f32"].requires_grad


def test_nested_containers_and_python_scalars(tmp_path):
    obj = {
        "state": {0: {"step": 3, "exp_avg": ember.zeros(2)}, 7: {}},
        "param_groups": [
            {"lr": 0.1, "betas": (0.9, 0.999), "amsgrad": False, "name": None, "params": [0, 7]}
        ],
        "text": "héllo",
        "big": 2**70,
        "inf": float("inf"),
        "empty": [],
    }
    ember.save(obj, tmp_path / "n.h5")
    back = ember.load(tmp_path / "n.h5")
    assert set(back["state"]) == {0, 7}  # integer keys stay integers
    assert back["state"][0]["step"] == 3 and back["state"][7] == {}
    g = back["param_groups"][0]
    assert g == {"lr": 0.1, "betas": (0.9, 0.999), "amsgrad": False, "name": None, "params": [0, 7]}
    assert isinstance(g["betas"], tuple)
    assert back["text"] == "héllo" and back["big"] == 2**70 and back["inf"] == float("inf")
    assert back["empty"] == []


def test_optimizer_state_round_trip_through_file(tmp_path):
    p = ember.randn(4, 3, requires_grad=True)
    opt = optim.Adam([p], lr=0.01, amsgrad=True)
    p.grad = ember.ones(4, 3)
    opt.step()
    ember.save(opt.state_dict(), tmp_path / "o.h5")
    sd = ember.load(tmp_path / "o.h5", map_location="cpu")
    assert sd["param_groups"][0]["betas"] == (0.9, 0.999)
    assert np.array_equal(sd["state"][0]["exp_avg"]._data, opt.state[p]["exp_avg"]._data)


def test_save_refuses_objects_it_would_have_to_pickle(tmp_path):
    with pytest.raises(TypeError, match="cannot save a function"):
        ember.save({"f": lambda x: x}, tmp_path / "x.h5")
    with pytest.raises(TypeError, match="dict keys"):
        ember.save({(1, 2): 0}, tmp_path / "x.h5")
    assert os.listdir(tmp_path) == []  # no temporary file left behind


def test_failed_save_leaves_existing_file_intact(tmp_path):
    path = tmp_path / "ckpt.h5"
    ember.save({"a": ember.ones(3)}, path)
    with pytest.raises(TypeError):
        ember.save({"a": ember.zeros(3), "bad": object()}, path)
    assert np.array_equal(ember.load(path)["a"]._data, np.ones(3, np.float32))
    assert sorted(os.listdir(tmp_path)) == ["ckpt.h5"]


def test_truncated_file_is_refused_naming_it(tmp_path):
    path = tmp_path / "ckpt.h5"
    ember.save({"a": ember.randn(100, 100)}, path)
    data = path.read_bytes()
    cut = tmp_path / "cut.h5"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"cut\.h5.*(truncated|corrupt)"):
        ember.load(cut)


def test_foreign_files_are_refused_naming_them(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not a checkpoint\n")
    with pytest.raises(ValueError, match=r"notes\.txt is not a file written by ember\.save"):
        ember.load(text)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = np.arange(3)
    with pytest.raises(ValueError, match=r"other\.h5 is an HDF5 file but not one written"):
        ember.load(other)
    with pytest.raises(FileNotFoundError, match="missing.h5"):
        ember.load(tmp_path / "missing.h5")


def test_map_location_moves_tensors(tmp_path):
    ember.save({"a": ember.ones(2)}, tmp_path / "m.h5")
    assert ember.load(tmp_path / "m.h5", map_location="standin")["a"].device == "standin"
    ember.save({"a": ember.ones(2).to("standin")}, tmp_path / "s.h5")
    assert ember.load(tmp_path / "s.h5")["a"].device == "standin"
    assert ember.load(tmp_path / "s.h5", map_location="cpu")["a"].device == "cpu"
    if not ember.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            ember.load(tmp_path / "m.h5", map_location="cuda")


# ---- file objects, as torch.save / torch.load --------------------------------------------


def test_state_dict_round_trips_through_bytesio_and_open_files(tmp_path):
    import io

    model = ember.nn.Sequential(ember.nn.Linear(3, 4), ember.nn.ReLU(), ember.nn.Linear(4, 2))
    opt = ember.optim.Adam(model.parameters(), lr=0.1)
    model(ember.randn(5, 3)).sum().backward()
    opt.step()
    buf = io.BytesIO()
    ember.save({"model": model.state_dict(), "opt": opt.state_dict(), "epoch": 3}, buf)
    assert buf.getvalue().startswith(b"\x89HDF")
    buf.seek(0)
    ck = ember.load(buf, weights_only=True)
    fresh = ember.nn.Sequential(ember.nn.Linear(3, 4), ember.nn.ReLU(), ember.nn.Linear(4, 2))
    fresh.load_state_dict(ck["model"])
    x = ember.randn(2, 3)
    assert np.array_equal(fresh(x).detach().numpy(), model(x).detach().numpy())
    assert ck["epoch"] == 3
    with open(tmp_path / "m.h5", "wb") as f:
        ember.save(model.state_dict(), f)
        assert not f.closed  # the caller's file stays open
    with open(tmp_path / "m.h5", "rb") as f:
        back = ember.load(f, map_location="cpu")
    assert sorted(back) == sorted(model.state_dict())
    assert ember.load(tmp_path / "m.h5")["0.weight"].dtype == np.float32


def test_a_file_object_is_written_at_its_position_and_read_to_its_end():
    import io

    buf = io.BytesIO()
    buf.write(b"header")
    ember.save(ember.arange(4), buf)
    buf.seek(6)
    assert ember.load(buf).tolist() == [0, 1, 2, 3]


def test_map_location_dict_maps_saved_devices():
    import io

    buf = io.BytesIO()
    ember.save({"a": ember.ones(2)}, buf)
    buf.seek(0)
    assert ember.load(buf, map_location={"cpu": "standin"})["a"].device == "standin"


def test_bad_file_objects_and_pickle_options_are_refused(tmp_path):
    import io

    with pytest.raises(ValueError, match="not a file written by ember.save"):
        ember.load(io.BytesIO(b"not hdf5 at all"))
    whole = io.BytesIO()
    ember.save({"a": ember.randn(100, 100)}, whole)
    with pytest.raises(ValueError, match="truncated or corrupt"):
        ember.load(io.BytesIO(whole.getvalue()[:2000]))
    (tmp_path / "t.txt").write_text("x")
    with open(tmp_path / "t.txt") as f, pytest.raises(TypeError, match="text mode"):
        ember.load(f)
    with pytest.raises(TypeError, match="never pickles"):
        ember.save({}, io.BytesIO(), pickle_module=object())
    with pytest.raises(TypeError, match="never unpickles"):
        ember.load(io.BytesIO(whole.getvalue()), pickle_module=object())
    with pytest.raises(TypeError, match="map_location must be a device"):
        ember.load(io.BytesIO(whole.getvalue()), map_location=lambda s, loc: s)
    with pytest.raises(TypeError, match="path or a writable binary file object"):
        ember.save({}, 42)
