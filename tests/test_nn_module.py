"""Module contract: registration, iteration, modes, state dicts, hooks, devices (ember.nn)."""

from __future__ import annotations

import numpy as np
import pytest

import ember
import ember.nn as nn
from ember.nn import Parameter


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(3, 4)
        self.bn = nn.BatchNorm1d(4)
        self.fc2 = nn.Linear(4, 2)
        self.scale = Parameter(ember.ones(1))
        self.register_buffer("steps", ember.zeros(1))
        self.register_buffer("cache", ember.zeros(2), persistent=False)

    def forward(self, x):
        return self.fc2(self.bn(self.fc1(x)).relu()) * self.scale


def test_parameter_is_a_plain_leaf_tensor_that_requires_grad():
    p = Parameter(ember.randn(2, 3))
    assert isinstance(p, Parameter) and type(p) is ember.Tensor
    assert p.requires_grad and p.is_leaf
    assert not isinstance(ember.randn(2), Parameter)
    frozen = Parameter(ember.randn(2), requires_grad=False)
    assert isinstance(frozen, Parameter) and not frozen.requires_grad


def test_attribute_assignment_registers_parameters_buffers_and_submodules():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["scale", "fc1.weight", "fc1.bias", "bn.weight", "bn.bias", "fc2.weight", "fc2.bias"]
    assert [n for n, _ in net.named_buffers()] == [
        "steps",
        "cache",
        "bn.running_mean",
        "bn.running_var",
        "bn.num_batches_tracked",
    ]
    assert [n for n, _ in net.named_children()] == ["fc1", "bn", "fc2"]
    assert [n for n, _ in net.named_modules()] == ["", "fc1", "bn", "fc2"]
    assert len(list(net.parameters())) == 7 and len(list(net.children())) == 3
    assert len(list(net.modules())) == 4
    assert [n for n, _ in net.named_parameters(recurse=False)] == ["scale"]
    net.plain = 3  # not a tensor: an ordinary attribute
    assert net.plain == 3 and "plain" not in dict(net.named_parameters())
    net.fc1 = None
    assert "fc1.weight" not in dict(net.named_parameters())


def test_shared_parameters_are_listed_once():
    lin = nn.Linear(2, 2)
    seq = nn.Sequential(lin, nn.ReLU(), lin)
    assert len(list(seq.parameters())) == 2


def test_assigning_a_plain_tensor_to_a_parameter_slot_is_an_error():
    lin = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="weight"):
        lin.weight = ember.zeros(2, 2)


def test_train_eval_propagates_to_every_submodule():
    net = Net().eval()
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())


def test_zero_grad_sets_to_none_or_zeros():
    net = Net()
    net(ember.randn(5, 3)).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad(set_to_none=False)
    assert all(float(p.grad.abs().sum()) == 0 for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_requires_grad_and_apply():
    net = Net().requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())
    seen = []
    net.apply(lambda m: seen.append(type(m).__name__))
    assert seen == ["Linear", "BatchNorm1d", "Linear", "Net"]  # children first, then self


def test_to_dtype_keeps_parameter_identity_and_leaves_int_buffers_alone():
    net = Net()
    w = net.fc1.weight
    net.to(ember.float64)
    assert net.fc1.weight is w and w.dtype == np.float64 and isinstance(w, Parameter)
    assert net.bn.num_batches_tracked.dtype == np.int64
    assert net(ember.randn(4, 3, dtype=ember.float64)).dtype == np.float64


def test_to_device_moves_parameters_and_buffers(device):
    net = Net().to(device)
    assert all(str(p.device).startswith(device) for p in net.parameters())
    assert all(str(b.device).startswith(device) for b in net.buffers())
    out = net(ember.randn(4, 3, device=device))
    out.sum().backward()
    assert str(net.fc1.weight.grad.device).startswith(device)


def test_state_dict_round_trip_reproduces_outputs_bit_for_bit():
    ember.manual_seed(0)
    a, b = Net(), Net()
    a.train()(ember.randn(8, 3))  # move the running stats away from their defaults
    sd = a.state_dict()
    assert list(sd) == [
        "scale",
        "steps",
        "fc1.weight",
        "fc1.bias",
        "bn.weight",
        "bn.bias",
        "bn.running_mean",
        "bn.running_var",
        "bn.num_batches_tracked",
        "fc2.weight",
        "fc2.bias",
    ]  # non-persistent "cache" left out
    assert not any(t.requires_grad for t in sd.values())
    result = b.load_state_dict(sd)
    assert result.missing_keys == [] and result.unexpected_keys == []
    x = ember.randn(6, 3)
    a.eval(), b.eval()
    np.testing.assert_array_equal(a(x).detach().numpy(), b(x).detach().numpy())
    # copies, not aliases
    assert b.fc1.weight._data is not a.fc1.weight._data


def test_strict_load_lists_missing_unexpected_and_mismatched_keys():
    net = Net()
    sd = net.state_dict()
    del sd["fc1.bias"]
    sd["extra.weight"] = ember.zeros(1)
    sd["fc2.weight"] = ember.zeros(3, 3)
    with pytest.raises(RuntimeError) as err:
        net.load_state_dict(sd)
    msg = str(err.value)
    assert 'Missing key(s) in state_dict: "fc1.bias"' in msg
    assert 'Unexpected key(s) in state_dict: "extra.weight"' in msg
    assert "size mismatch for fc2.weight: copying a param with shape (3, 3)" in msg
    assert "current model is (2, 4)" in msg


def test_non_strict_load_reports_keys_but_still_refuses_shape_mismatch():
    net = Net()
    sd = {k: v for k, v in net.state_dict().items() if k != "scale"}
    sd["bogus"] = ember.zeros(1)
    res = net.load_state_dict(sd, strict=False)
    assert res.missing_keys == ["scale"] and res.unexpected_keys == ["bogus"]
    sd["fc1.weight"] = ember.zeros(1, 1)
    with pytest.raises(RuntimeError, match="size mismatch for fc1.weight"):
        net.load_state_dict(sd, strict=False)


def test_state_dict_round_trip_through_save_and_load(tmp_path):
    if not hasattr(ember, "save"):
        pytest.skip("ember.save not available")
    ember.manual_seed(1)
    a, b = Net().eval(), Net().eval()
    ember.save(a.state_dict(), tmp_path / "net.ckpt")
    b.load_state_dict(ember.load(tmp_path / "net.ckpt"))
    x = ember.randn(3, 3)
    np.testing.assert_array_equal(a(x).detach().numpy(), b(x).detach().numpy())


def test_repr_is_nested_and_readable():
    text = repr(nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Sequential(nn.Dropout(0.2))))
    assert text == (
        "Sequential(\n"
        "  (0): Linear(in_features=2, out_features=3, bias=True)\n"
        "  (1): ReLU()\n"
        "  (2): Sequential(\n"
        "    (0): Dropout(p=0.2, inplace=False)\n"
        "  )\n"
        ")"
    )
    assert (
        repr(nn.Conv2d(1, 2, 3, stride=2, groups=1, bias=False))
        == "Conv2d(1, 2, kernel_size=(3, 3), stride=(2, 2), bias=False)"
    )


def test_forward_hooks_run_can_replace_values_and_be_removed():
    lin = nn.Linear(2, 2)
    calls = []
    pre = lin.register_forward_pre_hook(lambda m, args: (args[0] * 0,))
    post = lin.register_forward_hook(lambda m, args, out: calls.append(out.shape) or out + 1)
    out = lin(ember.randn(3, 2))
    np.testing.assert_allclose(
        out.detach().numpy(), lin.bias.detach().numpy() + 1 + np.zeros((3, 2)), rtol=1e-6
    )
    assert calls == [(3, 2)]
    pre.remove(), post.remove()
    x = ember.randn(3, 2)
    np.testing.assert_allclose(lin(x).detach().numpy(), (x @ lin.weight.T + lin.bias).detach().numpy())


def test_containers_index_iterate_and_register():
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert isinstance(seq[0], nn.Linear) and isinstance(seq[-1], nn.Linear) and len(seq) == 3
    assert len(seq[:2]) == 2
    assert seq(ember.randn(4, 2)).shape == (4, 1)
    from collections import OrderedDict

    named = nn.Sequential(OrderedDict([("inp", nn.Linear(2, 2)), ("act", nn.Tanh())]))
    assert [n for n, _ in named.named_parameters()] == ["inp.weight", "inp.bias"]
    ml = nn.ModuleList([nn.Linear(1, 1) for _ in range(3)])
    ml.append(nn.Linear(1, 1))
    assert len(ml) == 4 and len(list(ml.parameters())) == 8
    assert [n for n, _ in ml.named_parameters()][-1] == "3.bias"
    md = nn.ModuleDict({"a": nn.Linear(1, 2), "b": nn.ReLU()})
    md["c"] = nn.Linear(2, 2)
    assert list(md.keys()) == ["a", "b", "c"] and "a" in md
    assert [n for n, _ in md.named_parameters()] == ["a.weight", "a.bias", "c.weight", "c.bias"]


def test_clip_grad_norm_scales_to_max_norm_and_returns_total():
    a = Parameter(ember.zeros(3))
    b = Parameter(ember.zeros(2))
    a.grad = ember.tensor([3.0, 0.0, 0.0])
    b.grad = ember.tensor([0.0, 4.0])
    total = nn.utils.clip_grad_norm_([a, b], 1.0)
    assert float(total) == pytest.approx(5.0)
    joint = np.concatenate([a.grad.numpy(), b.grad.numpy()])
    assert np.linalg.norm(joint) == pytest.approx(1.0, rel=1e-5)
    np.testing.assert_allclose(joint, np.array([3, 0, 0, 0, 4]) / 5, rtol=1e-5)
    assert float(nn.utils.clip_grad_norm_([a, b], 10.0)) == pytest.approx(1.0, rel=1e-5)  # no-op
    inf_total = nn.utils.clip_grad_norm_([a, b], 0.3, norm_type="inf")
    assert float(inf_total) == pytest.approx(0.8, rel=1e-5)


def test_clip_grad_value_clamps_elementwise():
    p = Parameter(ember.zeros(4))
    p.grad = ember.tensor([-3.0, -0.5, 0.2, 9.0])
    nn.utils.clip_grad_value_([p], 1.0)
    np.testing.assert_allclose(p.grad.numpy(), [-1.0, -0.5, 0.2, 1.0])


def test_clip_grad_norm_handles_sparse_row_gradients():
    emb = nn.Embedding(50, 4, sparse=True)
    emb(ember.tensor([1, 2, 2])).sum().backward()
    g = emb.weight.grad
    before = np.sqrt((np.asarray(g.values) ** 2).sum())
    total = nn.utils.clip_grad_norm_(emb.parameters(), 0.5)
    assert float(total) == pytest.approx(before, rel=1e-5)
    assert np.sqrt((np.asarray(emb.weight.grad.values) ** 2).sum()) == pytest.approx(0.5, rel=1e-4)
