"""The floor of a study: flops counted by hand, and the seconds they take at a measured rate."""

from __future__ import annotations

import math

import numpy as np
import pytest
from torch.utils.flop_counter import FlopCounterMode

from neurodtco.correction import BatchedAffineCalibration, BatchedLogisticCorrector, BatchedMLPCorrector, native
from neurodtco.study.floor import floor_seconds, gemm_rate, study_floor


def _data(k: int, n: int, f: int, c: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(k, n, f))
    return x, rng.integers(0, c, size=n)


def test_mlp_flops_per_evaluation_are_the_hand_count():
    # F = 3 inputs, h = 2 hidden, C = 4 classes, N = 5 images. Forward: W1 x is [2,3]x[3,5] (2*2*3*5 = 60 flops),
    # W2 a is [4,2]x[2,5] (80). Backward: dW2 = dz a^T (80), da = W2^T dz (80), dW1 = da x^T (60). Total 360.
    assert BatchedMLPCorrector(hidden=2).flops_per_evaluation(3, 4, 5) == 360
    # Logistic: W x is [4,3]x[3,5] (120) and dW = dz x^T (120).
    assert BatchedLogisticCorrector().flops_per_evaluation(3, 4, 5) == 240


@pytest.mark.parametrize("model", [BatchedMLPCorrector(hidden=3, max_iter=15), BatchedLogisticCorrector(max_iter=15)],
                         ids=["mlp", "logistic"])
def test_a_fit_reports_the_product_flops_it_ran(model, monkeypatch):
    """fit_flops_ is what torch's own flop counter sees in the fit's matrix products (line searches included),
    less the biases: the fit carries each bias as one more column of its layer's product (a row of ones
    under the layer's inputs), which the floor, the flops of the linear maps themselves, does not count.
    Counted on the torch fit (the compiled one, which torch cannot see into, runs the same evaluations:
    tests/test_native_fits.py)."""
    monkeypatch.setattr(native, "available", lambda: False)
    k, n, f, c = 3, 40, 6, 4
    x, y = _data(k, n, f, c)
    with FlopCounterMode(display=False) as counter:
        model.fit(x, y)
    assert model.backend_ == "torch"
    # Each output row of a layer's forward product and of its weight gradient gets one more multiply-add per image.
    bias_rows = int(model.hidden) + c if model.name == "mlp" else c
    bias_flops = 2 * 2 * n * bias_rows * model.n_evaluations_ * k
    assert model.fit_flops_ + bias_flops == pytest.approx(counter.get_total_flops(), rel=1e-12)
    assert model.n_evaluations_ >= model.n_iter_.max()  # at least one evaluation per iteration


def test_affine_fit_flops_count_its_elementwise_map():
    x, y = _data(2, 30, 4, 4)
    model = BatchedAffineCalibration(max_iter=10).fit(x, y)
    assert model.fit_flops_ == pytest.approx(5 * 30 * 4 * model.n_evaluations_ * 2)


def test_floor_seconds_are_flops_over_rate_plus_simulation_over_workers():
    assert floor_seconds(6e9, 3e9, simulate_s=2.0, workers=2) == pytest.approx((2.0 + 2.0) / 2)
    with pytest.raises(ValueError, match="rate=0"):
        floor_seconds(1.0, 0.0)


def test_study_floor_adds_the_tasks_and_skips_what_a_task_lacks():
    infos = [{"fit_flops": 4e9, "simulate_s": 1.0}, {"fit_flops": 2e9, "simulate_s": math.nan},
             {"simulate_s": 0.5}]
    floor = study_floor(infos, rate=2e9, workers=3)
    assert floor["fit_flops"] == 6e9 and floor["simulate_s"] == 1.5
    assert floor["floor_s"] == pytest.approx((3.0 + 1.5) / 3)


def test_gemm_rate_is_the_flops_of_the_product_over_its_time():
    rate64 = gemm_rate(500, 10, 16, "float64", seconds=0.05)
    rate32 = gemm_rate(500, 10, 16, "float32", seconds=0.05)
    assert 1e7 < rate64 < 1e13 and 1e7 < rate32 < 1e13  # from a slow, busy core to a fast one
    with pytest.raises(ValueError, match="dtype='float16'"):
        gemm_rate(10, 10, 10, "float16")
    with pytest.raises(ValueError, match="hidden=0"):
        gemm_rate(10, 10, 0)
