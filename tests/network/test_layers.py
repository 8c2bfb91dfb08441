import numpy as np
import torch

from simcert.network import AvgPool2d, Conv2d, Dense, ElementwiseAffine, Network, ReLU, Reshape


def _vjp_matches_autograd(layer, in_shape):
    x = torch.randn(3, *in_shape, dtype=torch.float64, requires_grad=True)
    y = layer.linear(x)
    a = torch.randn_like(y)
    (g,) = torch.autograd.grad((y * a).sum(), x)
    assert torch.allclose(layer.vjp(a, in_shape), g, atol=1e-10)


def test_vjp_of_every_affine_layer_is_the_transpose(rng):
    _vjp_matches_autograd(Dense(rng.normal(size=(4, 6)), rng.normal(size=4)), (6,))
    _vjp_matches_autograd(Conv2d(rng.normal(size=(3, 2, 3, 3)), rng.normal(size=3), stride=2, padding=1), (2, 7, 7))
    _vjp_matches_autograd(AvgPool2d(2, 2), (2, 5, 5))
    _vjp_matches_autograd(Reshape((-1,)), (2, 3, 3))
    _vjp_matches_autograd(ElementwiseAffine(rng.normal(size=(1, 3, 3)), rng.normal(size=(1, 3, 3))), (2, 3, 3))


def test_simplified_network_computes_the_same_function(rng):
    net = Network(
        [
            ElementwiseAffine(np.array(2.0), np.array(-1.0)),
            Reshape((-1,)),
            Dense(rng.normal(size=(5, 4)), rng.normal(size=5)),
            Dense(rng.normal(size=(3, 5)), rng.normal(size=3)),
            ReLU(),
            Dense(rng.normal(size=(2, 3)), rng.normal(size=2)),
        ],
        input_shape=(1, 4),
    )
    s = net.simplified()
    assert [type(l).__name__ for l in s.layers] == ["Dense", "ReLU", "Dense"]
    x = rng.uniform(-1, 1, size=(10, 4))
    np.testing.assert_allclose(net(x), s(x), rtol=1e-12, atol=1e-12)
