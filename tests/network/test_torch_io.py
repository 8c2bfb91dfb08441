"""torch.nn.Module -> IR: outputs equal the module's eval-mode outputs; unsupported modules are named."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from simcert.errors import InputError, UnsupportedOpError
from simcert.network.io import load, save


def _randomize_bn(bn: nn.Module) -> nn.Module:
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.uniform_(0.5, 2.0)
        bn.bias.uniform_(-1, 1)
    return bn


def _same(module: nn.Module, input_shape: tuple[int, ...], n: int = 64) -> np.ndarray:
    torch.manual_seed(0)
    module = module.double().eval()
    net = load(module, input_shape=input_shape)
    x = np.random.default_rng(0).normal(size=(n, *input_shape))
    with torch.no_grad():
        ref = module(torch.as_tensor(x)).reshape(n, -1).numpy()
    np.testing.assert_allclose(net(x), ref, rtol=1e-10, atol=1e-10)
    return net


def test_mlp_with_batchnorm_dropout_identity_is_folded() -> None:
    torch.manual_seed(1)
    m = nn.Sequential(nn.Linear(6, 8), _randomize_bn(nn.BatchNorm1d(8)), nn.ReLU(), nn.Dropout(0.5), nn.Identity(),
                      nn.Linear(8, 3))
    net = _same(m, (6,))
    assert [l.kind for l in net.layers] == ["dense", "relu", "dense"]  # BatchNorm folded into the Linear


def test_conv_net_nested_sequential() -> None:
    torch.manual_seed(2)
    m = nn.Sequential(
        nn.Sequential(nn.Conv2d(2, 4, 3, stride=2, padding=1), _randomize_bn(nn.BatchNorm2d(4)), nn.ReLU()),
        nn.AvgPool2d(2),
        nn.Conv2d(4, 4, 1, groups=2, bias=False),
        nn.Flatten(),
        nn.Linear(16, 5),
    )
    net = _same(m, (2, 8, 8))
    assert [l.kind for l in net.layers] == ["conv2d", "relu", "avgpool2d", "conv2d", "reshape", "dense"]


def test_standalone_batchnorm_becomes_elementwise_affine() -> None:
    torch.manual_seed(3)
    net = _same(nn.Sequential(_randomize_bn(nn.BatchNorm1d(4)), nn.ReLU(), nn.Linear(4, 2)), (4,))
    assert net.layers[0].kind == "elementwise_affine"


def test_custom_forward_is_traced() -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Linear(12, 7)
            self.b = nn.Linear(7, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = x.view(x.size(0), -1)
            x = (x - 0.5) / 0.25
            return self.b(F.relu(self.a(x)) * 2.0)

    torch.manual_seed(4)
    net = _same(Net(), (3, 4))
    assert [l.kind for l in net.layers] == ["reshape", "elementwise_affine", "dense", "relu", "elementwise_affine",
                                            "dense"]


def test_skip_connection_is_rejected() -> None:
    class Residual(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Linear(3, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + self.a(x)

    with pytest.raises(UnsupportedOpError, match="Residual"):
        load(Residual(), input_shape=(3,))


@pytest.mark.parametrize("module,name", [(nn.Tanh(), "Tanh"), (nn.MaxPool2d(2), "MaxPool2d"),
                                         (nn.Softmax(dim=1), "Softmax")])
def test_unsupported_module_is_named(module: nn.Module, name: str) -> None:
    with pytest.raises(UnsupportedOpError, match=name):
        load(nn.Sequential(nn.Linear(4, 4), module), input_shape=(4,))


def test_input_shape_is_required_and_checked() -> None:
    with pytest.raises(InputError, match="input_shape"):
        load(nn.Linear(3, 2))
    with pytest.raises(InputError, match="dense layer expects input shape"):
        load(nn.Linear(3, 2), input_shape=(4,))


def test_torch_model_saves_to_onnx_and_nnet(tmp_path) -> None:  # noqa: ANN001
    torch.manual_seed(5)
    m = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2)).double().eval()
    net = load(m, input_shape=(4,))
    x = np.random.default_rng(1).normal(size=(20, 4))
    np.testing.assert_array_equal(load(save(net, tmp_path / "m.nnet"))(x), net(x))
    np.testing.assert_array_equal(load(save(net, tmp_path / "m.onnx", dtype=np.float64))(x), net(x))


def test_nan_weight_names_the_module() -> None:
    m = nn.Sequential(nn.Linear(3, 3), nn.ReLU(), nn.Linear(3, 2))
    with torch.no_grad():
        m[2].weight[0, 0] = float("nan")
    with pytest.raises(InputError, match=r"Sequential\.2 \(Linear\): dense weight contains NaN"):
        load(m, input_shape=(3,))
