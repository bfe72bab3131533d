"""Reward functions: log return, differential Sharpe ratio, risk-penalised return.

Pure functions of the step's equity change and a small running state.
"""

from __future__ import annotations

import numpy as np


def log_return(equity_before: np.ndarray, equity_after: np.ndarray) -> np.ndarray:
    """Log growth of equity over the step, net of every cost (−inf guarded at a wipe-out)."""
    ratio = np.maximum(equity_after, 1e-12) / np.maximum(equity_before, 1e-12)
    return np.log(ratio)


def differential_sharpe(r: np.ndarray, a: np.ndarray, b: np.ndarray, eta: float
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Moody & Saffell (1998) differential Sharpe ratio: ``(D, A_new, B_new)``.

    ``A`` and ``B`` are exponential moving averages (rate ``eta``) of returns and squared
    returns; ``D = (B ΔA − A ΔB / 2) / (B − A²)^{3/2}``, 0 while the variance estimate is 0.
    """
    delta_a = r - a
    delta_b = r * r - b
    variance = b - a * a
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.where(variance > 1e-20, (b * delta_a - 0.5 * a * delta_b) / np.power(np.maximum(variance, 1e-20), 1.5),
                     0.0)
    return d, a + eta * delta_a, b + eta * delta_b


def risk_penalty(r: np.ndarray, kind: str, aversion: float, drawdown_before: np.ndarray,
                 drawdown_after: np.ndarray) -> np.ndarray:
    """Penalty subtracted from the return: ``aversion × r²`` or ``aversion × (drawdown increase)``."""
    if kind == "variance":
        return aversion * r * r
    return aversion * np.maximum(drawdown_after - drawdown_before, 0.0)
