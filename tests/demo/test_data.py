"""The demo's data and networks: procedural digits, the control law, the shipped models and their retraining."""

from __future__ import annotations

import numpy as np
import pytest

from simcert import demo
from simcert.network.io import load


def test_digits_are_deterministic_images_of_every_class() -> None:
    x, y = demo.make_digits(500, seed=11)
    x2, y2 = demo.make_digits(500, seed=11)
    assert x.shape == (500, 64) and y.shape == (500,)
    assert np.array_equal(x, x2) and np.array_equal(y, y2)
    assert not np.array_equal(x, demo.make_digits(500, seed=12)[0])
    assert x.min() >= 0.0 and x.max() <= 1.0 and set(y.tolist()) == set(range(10))


def test_digits_look_like_their_glyph() -> None:
    """A nearest-template classifier (each glyph at every offset) gets most synthetic digits right, so the
    images carry their class; it is not perfect, so the task is not trivial."""
    glyphs = np.array([[[c == "#" for c in row] for row in g] for g in demo.GLYPHS], dtype=float)
    templates, labels = [], []
    for k, g in enumerate(glyphs):
        for r in range(2):
            for c in range(4):
                img = np.zeros((8, 8))
                img[r:r + 7, c:c + 5] = g
                templates.append(img.ravel() / np.linalg.norm(img))
                labels.append(k)
    x, y = demo.make_digits(1000, seed=3)
    pred = np.array(labels)[np.argmax(x @ np.array(templates).T, axis=1)]
    acc = float(np.mean(pred == y))
    assert 0.6 < acc < 1.0, acc


def test_control_law() -> None:
    x = np.array([[0.0, 0.0], [1.0, 0.3], [-1.0, -1.0]])
    y = demo.control_law(x)
    assert y[0, 0] == pytest.approx(0.0) and y[0, 1] == pytest.approx(0.8 * np.exp(-0.18) - 0.3)
    assert y[1, 1] == pytest.approx(0.8 * np.exp(-2.0) - 0.3)
    assert y[2, 0] == pytest.approx(np.tanh(2.5 * (-1.0 - 0.4 * np.sin(-3.0))))


def test_shipped_models_are_small_and_good() -> None:
    paths = [demo.shipped_model_path(n) for n in ("control", "digits")]
    assert sum(p.stat().st_size for p in paths) < 1_000_000
    control, digits = (load(p) for p in paths)
    assert control.input_shape == (2,) and control.output_size == 2
    assert digits.input_shape == (64,) and digits.output_size == 10
    x, y = demo.make_control_data(2000, seed=99)
    assert float(np.mean((control(x) - y) ** 2)) < 2e-3
    xd, yd = demo.make_digits(1000, seed=99)
    assert float(np.mean(np.argmax(digits(xd), 1) == yd)) > 0.9


def test_unknown_shipped_model() -> None:
    with pytest.raises(Exception, match="unknown demo model 'mnist'"):
        demo.shipped_model_path("mnist")


def test_retraining_reproduces_the_shipped_models(tmp_path) -> None:
    """The shipped files are what `python -m simcert.demo --regenerate` writes (same torch version)."""
    written = demo.regenerate_models(tmp_path)
    assert [p.name for p in written] == ["demo_control.onnx", "demo_digits.onnx"]
    for p in written:
        fresh, shipped = load(p), load(demo.shipped_model_path(p.stem.removeprefix("demo_")))
        x = np.random.default_rng(0).uniform(0, 1, (200, fresh.input_size))
        # training is not bit-reproducible across CPUs (BLAS kernels of another SIMD width sum in another order):
        # on an AVX2-only CPU the retrained digits net differed from the shipped one by up to 1.8e-3 on logits of
        # magnitude ~20 (2026-12-04), on the machine that wrote the files by less than 1e-5
        np.testing.assert_allclose(fresh(x), shipped(x), rtol=1e-3, atol=5e-3)
        assert np.mean(fresh(x).argmax(1) == shipped(x).argmax(1)) >= 0.99
