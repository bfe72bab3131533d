"""EGARCH's filter never divides by a zero variance (constant data drive the log-variance to -inf)."""

from __future__ import annotations

import math

import numpy as np

from forecasters.garch import GarchConfig, GarchParams, filter_variance, walk_forward


def test_egarch_filter_survives_a_log_variance_that_underflows() -> None:
    p = GarchParams(mu=0.0, omega=-800.0, alpha=0.1, gamma=0.0, beta=0.5, nu=math.inf, scale=1.0, backcast=0.0)
    out = filter_variance(np.zeros(50), p, "egarch")  # exp(-800) is 0.0 in floats
    assert np.isfinite(out).all() and (out > 0).all()


def test_walk_forward_egarch_on_constant_returns_is_no_error() -> None:
    x = np.zeros(400)
    x[0] = np.nan
    result = walk_forward(x, GarchConfig(vol="egarch", min_window=100, refit_every=100, window_size=300))
    assert result.refits == 3
