"""The lowered-network vocabulary against PyTorch's own convolution and pooling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurodtco.ops import ConvGeometry, PoolGeometry, activate


@pytest.mark.parametrize("stride,padding", [((1, 1), (0, 0)), ((2, 1), (1, 0)), ((2, 2), (2, 1))])
def test_im2col_then_matrix_product_is_pytorchs_conv2d(stride, padding):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 2 * 9 * 7))
    w, b = rng.normal(size=(4, 2, 3, 2)), rng.normal(size=4)
    geometry = ConvGeometry((2, 9, 7), (3, 2), stride, padding)
    ours = geometry.fold(geometry.patches(x) @ w.reshape(4, -1).T + b, len(x))
    theirs = torch.nn.functional.conv2d(torch.tensor(x).reshape(3, 2, 9, 7), torch.tensor(w), torch.tensor(b),
                                        stride=stride, padding=padding).reshape(3, -1).numpy()
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)
    assert geometry.patches(x).shape == (3 * geometry.n_positions, geometry.patch_size)


@pytest.mark.parametrize("kind,kernel,stride", [("max", (2, 2), (2, 2)), ("avg", (3, 3), (2, 2)), ("max", (3, 2), (1, 2))])
def test_pooling_is_pytorchs(kind, kernel, stride):
    x = np.random.default_rng(1).normal(size=(3, 2 * 9 * 7))
    pool = PoolGeometry(kind, (2, 9, 7), kernel, stride)
    fn = torch.nn.functional.max_pool2d if kind == "max" else torch.nn.functional.avg_pool2d
    maps = fn(torch.tensor(x).reshape(3, 2, 9, 7), kernel, stride).numpy()
    np.testing.assert_allclose(pool.apply(x), maps.reshape(3, -1), rtol=0, atol=1e-15)
    assert pool.out_shape == maps.shape[1:]


def test_activations_saturate_at_the_rail():
    z = np.array([-3.0, -0.5, 0.25, 2.0])
    assert activate(z, "hardtanh", 0.2).tolist() == [-0.2, -0.2, 0.2, 0.2]
    assert activate(z, "relu", 1.0).tolist() == [0.0, 0.0, 0.25, 1.0]
    assert activate(z, None).tolist() == z.tolist()


def test_bad_geometry_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="does not fit"):
        ConvGeometry((1, 4, 4), (5, 5))
    with pytest.raises(ValueError, match="stride"):
        ConvGeometry((1, 4, 4), (2, 2), (0, 1))
    with pytest.raises(ValueError, match="pool kind"):
        PoolGeometry("min", (1, 4, 4), (2, 2), (2, 2))
