"""End to end on a simulated GARCH-t series: walk-forward GARCH-t VaR covers, normal VaR does not."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest

from forecasters.backtests import exceptions, kupiec_pof
from forecasters.base import realised_next
from forecasters.garch import GarchConfig, walk_forward
from forecasters.var import conditional_var, normal_var
from tests.conftest import simulate_garch_t

ALPHA = 0.99


@pytest.fixture(scope="module")
def series() -> np.ndarray:
    x = simulate_garch_t(24_000, omega=0.02, alpha=0.08, beta=0.90, nu=5.0, rng=np.random.default_rng(2024))
    return np.r_[np.nan, x * 1e-3][:, None]  # hourly-sized returns, row 0 NaN


@pytest.fixture(scope="module")
def forecasts(series):
    t_model = walk_forward(series[:, 0], GarchConfig(vol="garch", dist="t", refit_every=1000, min_window=2000,
                                                     window_size=5000))
    n_model = walk_forward(series[:, 0], GarchConfig(vol="garch", dist="normal", refit_every=1000,
                                                     min_window=2000, window_size=5000))
    return t_model, n_model


def _hits(series, var):
    r_next = realised_next(series[:, 0])
    keep = np.isfinite(var) & np.isfinite(r_next)
    keep[: 5000] = False  # same evaluation rows for every model
    return exceptions(r_next[keep], var[keep])


def test_garch_t_var_passes_kupiec_and_normal_var_does_not_cover(series, forecasts) -> None:
    t_model, n_model = forecasts
    sigma_t = np.sqrt(t_model.variance)[:, None]
    var_t = conditional_var(sigma_t, ALPHA, dist="t", nu=t_model.nu[:, None]).var[:, 0]
    sigma_n = np.sqrt(n_model.variance)[:, None]
    var_garch_normal = conditional_var(sigma_n, ALPHA, dist="normal").var[:, 0]
    var_normal = normal_var(series, ALPHA, window=1000).var[:, 0]

    hits_t = _hits(series, var_t)
    hits_gn = _hits(series, var_garch_normal)
    hits_n = _hits(series, var_normal)

    # GARCH-t: exception rate consistent with 1% (Kupiec does not reject at 5%)
    assert kupiec_pof(int(hits_t.sum()), hits_t.size, 1 - ALPHA).pvalue > 0.05
    # Normal quantiles: measurably more exceptions, on the same bars
    assert hits_gn.mean() > 1.25 * hits_t.mean()
    assert hits_n.mean() > 1.25 * hits_t.mean()
    assert binomtest(int(hits_gn.sum()), hits_gn.size, 1 - ALPHA, alternative="greater").pvalue < 0.05
