"""On-disk cache of forecasts, keyed by the data and the configuration.

Why: walk-forward GARCH over 10^5 bars takes seconds and an LSTM minutes; features and
the environment ask for the same forecasts again and again. The key is the market's
content fingerprint + the forecaster's name and config hash + the split, so a change to
any of them misses the cache. Files are ``.npz`` (``allow_pickle=False``) plus JSON
metadata, written atomically: never a pickle. Each entry has a SHA-256 checksum beside it
(``<key>.sha256``): a truncated, empty, corrupt or wrong-shape entry is reported (logged at
WARNING on ``fxrisk.cache`` with its path) and recomputed, never an error of a later run.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from forecasters.base import Split, VolatilityForecaster, VolForecast
from simulator.data.market import MarketData
from simulator.common.run_folder import atomic_write_bytes

logger = logging.getLogger("fxrisk.cache")

FORMAT_VERSION = 2  # bump when a forecaster's output for the same config changes


def default_cache_dir() -> Path:
    root = os.environ.get("FXRISK_CACHE_DIR")
    base = Path(root) if root else Path.home() / ".cache" / "fx-risk-gym"
    return base / "forecasts"


class ForecastCache:
    """Forecasts stored under ``root`` (default ``$FXRISK_CACHE_DIR/forecasts`` or ``~/.cache/fx-risk-gym``)."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()

    @staticmethod
    def key(market: MarketData, forecaster: VolatilityForecaster, split: Split | None) -> str:
        split_part = "nosplit" if split is None else f"{split.train_end}-{split.val_end}"
        return f"v{FORMAT_VERSION}-{forecaster.cache_key()}-{market.fingerprint()}-{split_part}"

    def path(self, key: str) -> Path:
        return self.root / f"{key}.npz"

    def checksum_path(self, key: str) -> Path:
        return self.root / f"{key}.sha256"

    def _corrupt(self, path: Path, why: str) -> None:
        logger.warning(f"{path}: corrupt forecast cache entry ({why}) — recomputing it")

    def load(self, key: str, *, n_bars: int | None = None) -> VolForecast | None:
        """The entry ``key``, or ``None`` when absent or corrupt (corrupt: reported with its path).

        ``n_bars``: the market's length; an entry of another length is corrupt too.
        """
        path = self.path(key)
        if not path.exists():
            return None
        try:
            raw = path.read_bytes()
            expected = self.checksum_path(key).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            self._corrupt(path, f"unreadable or no checksum: {type(exc).__name__}")
            return None
        if hashlib.sha256(raw).hexdigest() != expected:
            self._corrupt(path, "checksum mismatch: truncated or modified")
            return None
        try:
            with np.load(io.BytesIO(raw), allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                arrays = {name: data[name] for name in data.files if name not in ("meta", "sigma", "index")}
                sigma = data["sigma"]
                index = pd.DatetimeIndex(data["index"].astype("datetime64[ns]"), tz="UTC", name="time")
            info = dict(meta["info"])
            symbols = tuple(meta["symbols"])
            if sigma.shape != (len(index), len(symbols)) or (n_bars is not None and len(index) != n_bars):
                raise ValueError(f"sigma shape {sigma.shape} for {len(index)} bars and {len(symbols)} pairs")
        except Exception as exc:  # noqa: BLE001 - any unreadable entry: report it and recompute
            self._corrupt(path, f"{type(exc).__name__}: {' '.join(str(exc).split())[:120]}")
            return None
        info.update(arrays)
        return VolForecast(name=meta["name"], sigma=sigma, symbols=symbols, index=index,
                           refits=meta["refits"], fallbacks=meta["fallbacks"], info=info)

    def save(self, key: str, forecast: VolForecast) -> Path:
        arrays = {k: v for k, v in forecast.info.items() if isinstance(v, np.ndarray)}
        scalars = {k: v for k, v in forecast.info.items() if not isinstance(v, np.ndarray)}
        meta = {"name": forecast.name, "symbols": list(forecast.symbols), "refits": forecast.refits,
                "fallbacks": forecast.fallbacks, "info": scalars}
        buffer = io.BytesIO()
        np.savez(buffer, sigma=forecast.sigma, index=forecast.index.as_unit("ns").asi8,
                 meta=np.array(json.dumps(meta, default=str)), **arrays)
        data = buffer.getvalue()
        path = atomic_write_bytes(self.path(key), data)
        atomic_write_bytes(self.checksum_path(key), hashlib.sha256(data).hexdigest().encode())
        return path


def cached_forecast(
    forecaster: VolatilityForecaster,
    market: MarketData,
    split: Split | None = None,
    cache: ForecastCache | None = None,
) -> tuple[VolForecast, bool]:
    """``(forecast, hit)``: served from ``cache`` when present, else computed and stored."""
    cache = cache or ForecastCache()
    key = cache.key(market, forecaster, split)
    hit = cache.load(key, n_bars=len(market))
    if hit is not None:
        return hit, True
    result = forecaster.forecast(market, split)
    cache.save(key, result)
    return result, False
