"""The VaR limit: portfolio VaR of an exposure vector, and the shield that enforces the limit.

Pure functions over arrays shaped (batch, pair). Exposures are signed account-currency
notionals; per-pair VaR fractions come from the forecast made at the decision bar
(long and short tails separately).
"""

from __future__ import annotations

import numpy as np


def portfolio_var(exposure: np.ndarray, var_long: np.ndarray, var_short: np.ndarray,
                  corr: np.ndarray | None) -> np.ndarray:
    """One-bar VaR (account currency, >= 0) of positions with the given exposures.

    Each pair contributes its own-tail VaR ``v_j = |e_j| × VaR_j(side)``; pairs aggregate
    with the correlation matrix, ``sqrt(s' C s)`` with ``s_j = sign(e_j) v_j`` — exact for
    elliptical returns, and equal to ``v`` for one pair.
    """
    side_var = np.where(exposure >= 0, var_long, var_short)
    signed = exposure * side_var
    if corr is None or exposure.shape[-1] == 1:
        return np.abs(signed).sum(axis=-1)
    # Elementwise products and last-axis sums, not einsum: einsum's kernels sum in an order that
    # depends on the batch size, so a batch of N would differ from N single accounts in the last bit.
    quad = (signed * (corr * signed[..., None, :]).sum(axis=-1)).sum(axis=-1)
    return np.sqrt(np.maximum(quad, 0.0))


def shield_scale(var_value: np.ndarray, limit: np.ndarray) -> np.ndarray:
    """Factor in [0, 1] that brings a position's VaR down to the limit (1 when within it).

    VaR is positively homogeneous, so scaling every exposure by this factor scales the
    VaR by it: the shielded position is the requested one shrunk along its own direction.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(var_value > limit, limit / np.where(var_value > 0, var_value, 1.0), 1.0)
    return np.clip(scale, 0.0, 1.0)
