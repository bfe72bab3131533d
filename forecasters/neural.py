"""LSTM / GRU forecasts of next-bar volatility from causal features.

What it learns: for row t, the **log realised volatility of bar t+1**, from the last
``sequence_length`` rows (t - L + 1 .. t) of causal features
(:func:`~forecasters.features.compute_features`, positive scales log-transformed by
:func:`~forecasters.features.log_scale`, then standardised per pair and feature with
statistics of the training span ``[0, train_end)`` only).

The target proxy (a choice, documented here): the close-to-close variance of bar t is
estimated by ``v[t] = GK[t] + ln(O[t]/C[t-1])^2`` — the Garman–Klass range variance of
the bar (open to close, much less noisy than a squared return) plus the squared gap
between the previous close and this open (weekend gaps, outer-join fills); the target of
row t is ``y[t] = 0.5 ln(max(v[t+1], floor))`` with ``floor = target_floor × median(v)``
over the training span of that pair (keeps flat bars from producing -inf targets).
Targets are standardised per pair (training-span mean and std); the loss is the mean
squared error.

From log-vol to a forecast of the close-to-close return's sigma: the network predicts
a conditional mean of a log, which is biased low for ``sigma`` and ignores any gap
between the range proxy and the return. A per-pair scale ``c`` is estimated on the
training rows so that ``mean(r[t+1]^2 / sigma[t]^2) = 1`` (the quasi-likelihood
optimal scale): ``sigma[t] = c · exp(ŷ[t])``.

Spans (bar positions, see :mod:`forecasters.base`): row t's target is bar t+1, so
training rows are those whose *target* lies in ``[0, train_end)`` — rows up to
``train_end - 2``; validation rows have targets in ``[train_end, val_end)``; the
weights of the best validation epoch are kept (early stopping with ``patience``).
Forecasts are NaN for rows ``< val_end`` (and, on any market, at or before the last
timestamp of the fitting data's validation span) and for rows without a full window of
finite features.

Pooling: **one network for all pairs** (pair-pooled training: every (row, pair) is a
sample), with per-pair feature standardisation, per-pair target standardisation and a
per-pair bias scale — the network learns the shape of volatility dynamics, the per-pair
statistics carry each pair's level. More data per weight, and one model to save.

Reproducibility: weights are initialised inside ``torch.random.fork_rng`` seeded with
``config.seed`` (the global torch RNG is left untouched), mini-batches are shuffled with
``numpy.random.default_rng(config.seed)``, and ``torch.set_num_threads(num_threads)``
is set during fit/forecast and restored afterwards. Same seed, same data, same thread
count → identical forecasts on CPU.

Artefacts: :meth:`RecurrentVolForecaster.save` writes the ``state_dict`` with
``torch.save`` and, beside it (same stem, ``.json``), the config, the standardisation
statistics, the bias scales and the training history; :meth:`~RecurrentVolForecaster.load`
reads the weights with ``torch.load(..., weights_only=True)`` — no pickle anywhere.
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from numpy.lib.stride_tricks import sliding_window_view
from torch import nn

from forecasters.base import Split, VolatilityForecaster, VolForecast
from forecasters.features import GK_COEF, FeatureConfig, Standardisation, compute_features, log_scale
from simulator.common.configuration import from_mapping, to_mapping
from simulator.data.market import MarketData

FORMAT_VERSION = 2  # 2: residual quantiles of the training span saved with the model


RESIDUAL_GRID = (np.arange(2000) + 0.5) / 2000  # probabilities of the stored residual quantiles


@dataclass(frozen=True, kw_only=True)
class RecurrentVolConfig:
    """Architecture, training and feature settings of :class:`RecurrentVolForecaster`.

    ``sequence_length`` in bars; ``learning_rate`` and ``weight_decay`` for AdamW;
    ``target_floor`` as a fraction of the training-span median of the variance proxy;
    ``grad_clip`` is the max gradient norm (0 turns clipping off).
    """

    cell: str = "lstm"
    hidden_size: int = 32
    num_layers: int = 1
    sequence_length: int = 48
    batch_size: int = 256
    max_epochs: int = 30
    patience: int = 4
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    grad_clip: float = 1.0
    target_floor: float = 0.05
    seed: int = 0
    device: str = "cpu"
    num_threads: int = 1
    inference_batch_size: int = 4096
    features: FeatureConfig = field(default_factory=FeatureConfig)

    def __post_init__(self) -> None:
        if self.cell not in ("lstm", "gru"):
            raise ValueError(f"cell must be 'lstm' or 'gru', got {self.cell!r}")
        for name in ("hidden_size", "num_layers", "sequence_length", "batch_size", "max_epochs",
                     "num_threads", "inference_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.patience < 0:
            raise ValueError(f"patience must be >= 0, got {self.patience}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.weight_decay < 0 or self.grad_clip < 0:
            raise ValueError("weight_decay and grad_clip must be >= 0")
        if not 0 < self.target_floor < 1:
            raise ValueError(f"target_floor must be in (0, 1), got {self.target_floor}")
        if not (self.device == "cpu" or self.device.startswith("cuda")):
            raise ValueError(f"device must be 'cpu' or 'cuda[:n]', got {self.device!r}")


class _RecurrentNet(nn.Module):
    """Recurrent encoder over the window, linear head on the last hidden state."""

    def __init__(self, cell: str, n_inputs: int, hidden_size: int, num_layers: int) -> None:
        super().__init__()
        rnn = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = rnn(n_inputs, hidden_size, num_layers, batch_first=True)
        self.head = nn.Linear(hidden_size, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (batch, time, feature)
        out, _ = self.rnn(x)
        return self.head(out[:, -1]).squeeze(-1)


@contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    prev = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(prev)


def variance_proxy(market: MarketData) -> np.ndarray:
    """Close-to-close variance estimate per bar (time, pair): Garman–Klass + squared open gap.

    Row 0 is NaN (no previous close). Units: squared log return (fraction²).
    """
    o, h, lo, c = (market.field_array(f) for f in ("open", "high", "low", "close"))
    hl = np.log(h / lo)
    co = np.log(c / o)
    gk = np.maximum(0.5 * hl * hl - GK_COEF * co * co, 0.0)
    gap = np.full_like(c, np.nan)
    gap[1:] = np.log(o[1:] / c[:-1])
    return gk + gap * gap


class RecurrentVolForecaster(VolatilityForecaster):
    """LSTM/GRU one-step-ahead volatility forecaster (see the module docstring)."""

    def __init__(self, config: RecurrentVolConfig | None = None) -> None:
        self.config = config or RecurrentVolConfig()
        self.name = self.config.cell
        self._net: _RecurrentNet | None = None
        self._state: dict[str, Any] = {}

    # -- preparation ---------------------------------------------------------------
    @property
    def fitted(self) -> bool:
        return self._net is not None

    def _features(self, market: MarketData) -> tuple[np.ndarray, tuple[str, ...]]:
        fs = log_scale(compute_features(market, self.config.features))
        return fs.values, fs.names

    def _inputs(self, market: MarketData) -> tuple[np.ndarray, np.ndarray]:
        """Standardised float32 inputs (time, pair, feature) and full-window validity (time, pair)."""
        values, names = self._features(market)
        st = self._state
        if list(names) != st["feature_names"]:
            raise ValueError(f"market gives features {names}, the model was fitted on {tuple(st['feature_names'])}")
        cols = self._pair_columns(market)
        scaler = Standardisation(mean=st["feature_stats"].mean[cols], std=st["feature_stats"].std[cols],
                                 fit_end=st["feature_stats"].fit_end)
        x = scaler.apply(values).astype(np.float32)
        return x, self._window_ok(x)

    def _pair_columns(self, market: MarketData) -> list[int]:
        fitted = self._state["symbols"]
        missing = [s for s in market.symbols if s not in fitted]
        if missing:
            raise ValueError(f"pairs {missing} were not in the training data ({', '.join(fitted)})")
        return [fitted.index(s) for s in market.symbols]

    def _window_ok(self, x: np.ndarray) -> np.ndarray:
        """True at (t, j) when rows t-L+1..t of pair j are all finite (vectorised)."""
        L = self.config.sequence_length
        bad = (~np.isfinite(x).all(axis=2)).astype(np.int64)
        cum = np.concatenate([np.zeros((1, bad.shape[1]), np.int64), np.cumsum(bad, axis=0)])
        ok = np.zeros(bad.shape, dtype=bool)
        if bad.shape[0] >= L:
            ok[L - 1:] = (cum[L:] - cum[:-L]) == 0
        return ok

    @staticmethod
    def _windows(x: np.ndarray, L: int) -> np.ndarray:
        """View (time - L + 1, pair, L, feature): window ending at row s + L - 1 at position s."""
        return np.moveaxis(sliding_window_view(x, L, axis=0), -1, 2)

    def _predict(self, windows: np.ndarray, rows: np.ndarray, pairs: np.ndarray) -> np.ndarray:
        """Network output (standardised log-vol) for samples (rows, pairs), batched, no grad."""
        assert self._net is not None
        L = self.config.sequence_length
        out = np.empty(rows.size, dtype=np.float64)
        device = torch.device(self.config.device)
        self._net.eval()
        step = self.config.inference_batch_size
        with torch.no_grad():
            for s in range(0, rows.size, step):
                xb = torch.from_numpy(windows[rows[s:s + step] - L + 1, pairs[s:s + step]]).to(device)
                out[s:s + step] = self._net(xb).double().cpu().numpy()
        return out

    # -- fitting --------------------------------------------------------------------
    def fit(self, market: MarketData, split: Split) -> RecurrentVolForecaster:
        """Train on targets in ``[0, train_end)``, early-stop on ``[train_end, val_end)``."""
        cfg = self.config
        n = len(market)
        if split.val_end > n:
            raise ValueError(f"split.val_end {split.val_end} is beyond the {n} bars of the market")
        if split.train_end < cfg.sequence_length + 2:
            raise ValueError(f"split.train_end {split.train_end} leaves no training window of "
                             f"{cfg.sequence_length} bars")
        t0 = time.perf_counter()
        with _torch_threads(cfg.num_threads):
            values, names = self._features(market)
            feature_stats = Standardisation.fit(values, split.train_end)
            x = feature_stats.apply(values).astype(np.float32)
            ok = self._window_ok(x)

            # Targets: y[t] = 0.5 ln(max(v[t+1], floor)), standardised per pair on the training span.
            v = variance_proxy(market)
            v_train = v[1:split.train_end]
            floor = cfg.target_floor * np.nanmedian(np.where(v_train > 0, v_train, np.nan), axis=0)
            floor = np.where(np.isfinite(floor) & (floor > 0), floor, 1e-16)
            logvol = 0.5 * np.log(np.maximum(v, floor))
            y_mu = np.nanmean(logvol[1:split.train_end], axis=0)
            y_sd = np.nanstd(logvol[1:split.train_end], axis=0)
            y_sd = np.where(y_sd > 1e-12, y_sd, 1.0)
            target = np.full_like(logvol, np.nan)
            target[:-1] = (logvol[1:] - y_mu) / y_sd
            usable = ok & np.isfinite(target)

            def samples(lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
                rows, pairs = np.nonzero(usable[lo:hi])
                return rows + lo, pairs

            train_rows, train_pairs = samples(0, split.train_end - 1)
            val_rows, val_pairs = samples(max(split.train_end - 1, 0), split.val_end - 1)
            if train_rows.size == 0:
                raise ValueError("no training sample: every training row lacks a full feature window")

            windows = self._windows(x, cfg.sequence_length)
            device = torch.device(cfg.device)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(cfg.seed)
                net = _RecurrentNet(cfg.cell, x.shape[2], cfg.hidden_size, cfg.num_layers).to(device)
            self._net = net
            optimiser = torch.optim.AdamW(net.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
            rng = np.random.default_rng(cfg.seed)
            y_train = torch.from_numpy(target[train_rows, train_pairs].astype(np.float32)).to(device)
            y_val = target[val_rows, val_pairs]
            L = cfg.sequence_length
            history: list[dict[str, float]] = []
            best_val, best_epoch, best_state, stale = math.inf, -1, None, 0
            for epoch in range(cfg.max_epochs):
                net.train()
                order = rng.permutation(train_rows.size)
                total = 0.0
                for s in range(0, order.size, cfg.batch_size):
                    b = order[s:s + cfg.batch_size]
                    xb = torch.from_numpy(windows[train_rows[b] - L + 1, train_pairs[b]]).to(device)
                    loss = torch.mean((net(xb) - y_train[b]) ** 2)
                    optimiser.zero_grad(set_to_none=True)
                    loss.backward()
                    if cfg.grad_clip > 0:
                        nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
                    optimiser.step()
                    total += float(loss.detach()) * b.size
                record = {"epoch": epoch, "train_mse": total / order.size}
                if val_rows.size:
                    val_mse = float(np.mean((self._predict(windows, val_rows, val_pairs) - y_val) ** 2))
                    record["val_mse"] = val_mse
                    if val_mse < best_val:
                        best_val, best_epoch, stale = val_mse, epoch, 0
                        best_state = copy.deepcopy(net.state_dict())
                    else:
                        stale += 1
                history.append(record)
                if val_rows.size and stale >= cfg.patience:
                    break
            if best_state is not None:
                net.load_state_dict(best_state)
            else:  # no validation span: keep the last epoch
                best_epoch = len(history) - 1

            # Bias correction on the training rows: mean(r[t+1]^2 / sigma^2) = 1 per pair.
            r = market.log_returns()
            r_next = np.full_like(r, np.nan)
            r_next[:-1] = r[1:]
            z = self._predict(windows, train_rows, train_pairs)
            logvol_hat = y_mu[train_pairs] + y_sd[train_pairs] * z
            ratio = r_next[train_rows, train_pairs] ** 2 / np.exp(2.0 * logvol_hat)
            scale = np.ones(len(market.symbols))
            for j in range(len(market.symbols)):
                rj = ratio[(train_pairs == j) & np.isfinite(ratio)]
                if rj.size:
                    scale[j] = math.sqrt(float(np.mean(rj)))
            # Distribution of standardised training residuals r[t+1] / sigma[t], on a fixed
            # probability grid: the tail shape a volatility-scaled VaR needs, from training rows only.
            resid = r_next[train_rows, train_pairs] / (scale[train_pairs] * np.exp(logvol_hat))
            residual_quantiles = np.full((len(market.symbols), RESIDUAL_GRID.size), np.nan)
            for j in range(len(market.symbols)):
                rj = resid[(train_pairs == j) & np.isfinite(resid)]
                if rj.size:
                    residual_quantiles[j] = np.quantile(rj, RESIDUAL_GRID)
        self._state = {
            "symbols": list(market.symbols),
            "feature_names": list(names),
            "feature_stats": feature_stats,
            "target_mean": y_mu,
            "target_std": y_sd,
            "target_floor": floor,
            "bias_scale": scale,
            "residual_quantiles": residual_quantiles,
            "split": {"train_end": split.train_end, "val_end": split.val_end},
            "last_in_sample_time": market.index[split.val_end - 1].isoformat(),
            "history": history,
            "best_epoch": best_epoch,
            "best_val_mse": best_val if math.isfinite(best_val) else None,
            "train_samples": int(train_rows.size),
            "val_samples": int(val_rows.size),
            "fit_seconds": time.perf_counter() - t0,
        }
        return self

    # -- forecasting ----------------------------------------------------------------
    def forecast(self, market: MarketData, split: Split | None = None) -> VolForecast:
        """sigma of ``returns[t+1]`` for every row (time, pair); NaN before ``val_end``.

        Fits first when not fitted (``split`` defaults to ``Split.by_fraction``). Rows are
        NaN before ``split.val_end`` (when given) **and** at or before the last in-sample
        timestamp of the fitting data (bar ``val_end - 1`` of the market it was fitted
        on), so a fitted model never reports a forecast for a time it learned from, even
        when applied to another market (a stress scenario, a re-download) or with an
        earlier split. Rows without a full window of finite features are NaN too.
        """
        refits = 0
        if not self.fitted:
            self.fit(market, split or Split.by_fraction(len(market)))
            refits = 1
        last_in_sample = pd.Timestamp(self._state["last_in_sample_time"])
        start = int(market.index.searchsorted(last_in_sample, side="right"))
        if split is not None:
            start = max(start, split.val_end)
        L = self.config.sequence_length
        with _torch_threads(self.config.num_threads):
            x, ok = self._inputs(market)
            ok[:start] = False
            rows, pairs = np.nonzero(ok)
            sigma = np.full(ok.shape, np.nan)
            if rows.size:
                z = self._predict(self._windows(x, L), rows, pairs)
                cols = np.asarray(self._pair_columns(market))
                st = self._state
                j = cols[pairs]
                logvol = st["target_mean"][j] + st["target_std"][j] * z
                sigma[rows, pairs] = st["bias_scale"][j] * np.exp(logvol)
        info = {
            "target": "log sqrt(GK + open-gap^2) of bar t+1, bias-scaled to mean(r^2/sigma^2)=1 on training rows",
            "fitted_split": dict(self._state["split"]),
            "last_in_sample_time": self._state["last_in_sample_time"],
            "best_epoch": self._state["best_epoch"],
            "epochs": len(self._state["history"]),
            "best_val_mse": self._state["best_val_mse"],
            "fit_seconds": self._state["fit_seconds"],
            "bias_scale": dict(zip(self._state["symbols"], map(float, self._state["bias_scale"]), strict=True)),
            "residual_grid": RESIDUAL_GRID.copy(),
            "residual_quantiles": self._state["residual_quantiles"][np.asarray(self._pair_columns(market))],
        }
        return VolForecast(name=self.name, sigma=sigma, symbols=market.symbols, index=market.index,
                           refits=refits, info=info)

    # -- persistence ----------------------------------------------------------------
    @staticmethod
    def _json_path(path: Path) -> Path:
        return path.with_suffix(".json")

    def save(self, path: str | Path) -> Path:
        """Weights to ``path`` (``torch.save`` of the state_dict) and metadata to ``path.json``.

        Returns the JSON path. Everything in the JSON is plain data (config, statistics).
        """
        if not self.fitted:
            raise RuntimeError("fit the model before saving it")
        assert self._net is not None
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu() for k, v in self._net.state_dict().items()}
        torch.save(state, path)
        st = self._state
        meta = {
            "format_version": FORMAT_VERSION,
            "kind": "RecurrentVolForecaster",
            "name": self.name,
            "weights_file": path.name,
            "config": to_mapping(self.config),
            "symbols": st["symbols"],
            "feature_names": st["feature_names"],
            "n_inputs": len(st["feature_names"]),
            "feature_stats": st["feature_stats"].to_dict(),
            "target_mean": st["target_mean"].tolist(),
            "target_std": st["target_std"].tolist(),
            "target_floor": st["target_floor"].tolist(),
            "bias_scale": st["bias_scale"].tolist(),
            "residual_quantiles": st["residual_quantiles"].tolist(),
            "split": st["split"],
            "last_in_sample_time": st["last_in_sample_time"],
            "history": st["history"],
            "best_epoch": st["best_epoch"],
            "best_val_mse": st["best_val_mse"],
            "train_samples": st["train_samples"],
            "val_samples": st["val_samples"],
            "fit_seconds": st["fit_seconds"],
            "torch_version": torch.__version__,
        }
        json_path = self._json_path(path)
        json_path.write_text(json.dumps(meta, indent=2), encoding="utf-8")
        return json_path

    @classmethod
    def load(cls, path: str | Path, *, device: str | None = None) -> RecurrentVolForecaster:
        """Read a model written by :meth:`save` (weights with ``weights_only=True``)."""
        path = Path(path)
        json_path = cls._json_path(path)
        meta = json.loads(json_path.read_text(encoding="utf-8"))
        if meta.get("format_version") != FORMAT_VERSION or meta.get("kind") != "RecurrentVolForecaster":
            raise ValueError(f"{json_path}: not a RecurrentVolForecaster file of format {FORMAT_VERSION}")
        config_map = dict(meta["config"])
        if device is not None:
            config_map["device"] = device
        config = from_mapping(RecurrentVolConfig, config_map, source=str(json_path))
        model = cls(config)
        state = torch.load(path, map_location=torch.device(config.device), weights_only=True)
        net = _RecurrentNet(config.cell, int(meta["n_inputs"]), config.hidden_size, config.num_layers)
        net.load_state_dict(state)
        model._net = net.to(torch.device(config.device))
        model._state = {
            "symbols": list(meta["symbols"]),
            "feature_names": list(meta["feature_names"]),
            "feature_stats": Standardisation.from_dict(meta["feature_stats"]),
            "target_mean": np.asarray(meta["target_mean"], dtype=np.float64),
            "target_std": np.asarray(meta["target_std"], dtype=np.float64),
            "target_floor": np.asarray(meta["target_floor"], dtype=np.float64),
            "bias_scale": np.asarray(meta["bias_scale"], dtype=np.float64),
            "residual_quantiles": np.asarray(meta["residual_quantiles"], dtype=np.float64),
            "split": dict(meta["split"]),
            "last_in_sample_time": meta["last_in_sample_time"],
            "history": list(meta["history"]),
            "best_epoch": meta["best_epoch"],
            "best_val_mse": meta["best_val_mse"],
            "train_samples": meta["train_samples"],
            "val_samples": meta["val_samples"],
            "fit_seconds": meta["fit_seconds"],
        }
        return model
