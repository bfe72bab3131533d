"""Golden trajectories of the environment's step: recorded once, required ever after.

Why: the step is the thing every feature touches; a refactor of it (one step source, a
new layout) must leave every number where it was. The cases cover one-pair markets (the
account currency as quote, and a moving conversion rate with thin depth, so that fills are
partial) and a three-pair correlated market; each VaR mode, each reward, both action modes
and both size units; a vector env with autoreset and a single env.

The inputs (:class:`envs.data.EnvData` arrays) are stored beside the outputs, so that a
change in the forecasters does not move these trajectories: they test the step alone.

Regenerate (only when the step's behaviour is meant to change, and say so in the commit):
``python -m tests.golden_steps``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from envs.config import EnvConfig
from simulator.broker.account import AccountConfig
from envs.data import EnvData, prepare_env_data
from simulator.data.market import MarketData
from simulator.synthetic.generator import default_config, generate_market

GOLDEN = Path(__file__).parent / "data" / "golden_steps.npz"
CONFIG = EnvConfig(vol_model="ewma", var_window=200, episode_bars=100)
N_BARS = 900
STEPS = 60
N_ENVS = 2
MARKETS = {"eurusd": (("EURUSD",), 1.0), "usdjpy_thin": (("USDJPY",), 0.02),
           "three_pairs": (("EURUSD", "USDJPY", "GBPUSD"), 0.05)}
CORR3 = [[1.0, 0.3, -0.2], [0.3, 1.0, 0.1], [-0.2, 0.1, 1.0]]
_REWARDS = (("log_return", "variance"), ("differential_sharpe", "variance"), ("risk_penalised", "variance"),
            ("risk_penalised", "drawdown"))


def cases() -> dict[str, dict]:
    """Config overrides by case name (applied to :data:`CONFIG`)."""
    out: dict[str, dict] = {}
    for var_mode in ("shield", "penalty", "cost"):
        for reward, penalty in _REWARDS:
            out[f"exposure-{var_mode}-{reward}-{penalty}"] = dict(var_mode=var_mode, reward=reward,
                                                                  risk_penalty=penalty, risk_aversion=2.0)
    out["sizing-leverage-shield-log_return"] = dict(action_mode="sizing", var_mode="shield")
    out["sizing-leverage-cost-differential_sharpe"] = dict(action_mode="sizing", var_mode="cost",
                                                           reward="differential_sharpe")
    out["sizing-var_budget-shield-drawdown"] = dict(action_mode="sizing", size_unit="var_budget",
                                                    reward="risk_penalised", risk_penalty="drawdown")
    out["sizing-var_budget-penalty-log_return"] = dict(action_mode="sizing", size_unit="var_budget",
                                                       var_mode="penalty", var_penalty=0.5)
    # High leverage: stop-outs, liquidation and gaps through the stop-out level.
    wild = AccountConfig(max_leverage=500.0, stop_out_level=0.9)
    out["exposure-leverage500-penalty-log_return"] = dict(account=wild, var_mode="penalty")
    out["exposure-leverage500-cost-differential_sharpe"] = dict(account=wild, var_mode="cost",
                                                                reward="differential_sharpe")
    return out


def _market(symbols: tuple[str, ...], liquidity_scale: float) -> MarketData:
    corr = CORR3 if len(symbols) == 3 else None
    market = generate_market(default_config(symbols, corr), N_BARS, rng=np.random.default_rng(7)).market
    bars = market.bars.copy()
    for s in market.symbols:
        bars[(s, "liquidity")] *= liquidity_scale
    return MarketData(bars=bars, pairs=market.pairs, source=f"golden x{liquidity_scale:g}")


def _data_arrays(data: EnvData) -> dict[str, np.ndarray]:
    out = {}
    for f in dataclasses.fields(EnvData):
        value = getattr(data, f.name)
        if value is None:
            continue
        out[f.name] = np.asarray(value)
    return out


def stored_data(store: dict[str, np.ndarray], market: str) -> EnvData:
    """The :class:`EnvData` of ``market`` as stored in the golden file."""
    prefix = f"data/{market}/"
    values = {k[len(prefix):]: v for k, v in store.items() if k.startswith(prefix)}
    kwargs = {}
    for f in dataclasses.fields(EnvData):
        if f.name not in values:
            kwargs[f.name] = None
            continue
        v = values[f.name]
        if f.name in ("symbols", "feature_names", "notes"):
            kwargs[f.name] = tuple(str(x) for x in v)
        elif f.name in ("first_step", "span_end"):
            kwargs[f.name] = int(v)
        elif f.name == "bar_hours":
            kwargs[f.name] = float(v)
        else:
            kwargs[f.name] = v
    return EnvData(**kwargs)


def _actions(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Uniform actions, a third of them small (so that some accounts survive, some are stopped out)."""
    a = rng.uniform(-1.0, 1.0, size=shape)
    small = rng.uniform(size=shape[:-1]) < 1 / 3
    a[small] *= 0.05
    return a.astype(np.float32)


def _obs_record(obs: np.ndarray, market_dim: int) -> tuple[np.ndarray, np.ndarray]:
    """The account part of observations as they are, the market part as a row checksum (float64 sum)."""
    obs = np.asarray(obs)
    return obs[..., market_dim:], obs[..., :market_dim].astype(np.float64).sum(axis=-1)


def run_case(data: EnvData, overrides: dict) -> dict[str, np.ndarray]:
    """Trajectories of a vector env (autoreset) and a single env under ``overrides``."""
    from envs.fx_env import FxRiskEnv
    from envs.vector import FxRiskVectorEnv

    config = dataclasses.replace(CONFIG, **overrides)
    rng = np.random.default_rng(11)
    out: dict[str, list] = {}
    vec = FxRiskVectorEnv(N_ENVS, data=data, config=config)
    obs, _ = vec.reset(seed=3)
    market_dim = config.window * data.features.shape[1]
    out.setdefault("vec/obs", []).append(_obs_record(obs, market_dim)[0])
    out.setdefault("vec/obs_market_sum", []).append(_obs_record(obs, market_dim)[1])
    for _ in range(STEPS):
        obs, reward, terminated, truncated, info = vec.step(_actions(rng, (N_ENVS, data.n_pairs)))
        account, market = _obs_record(obs, market_dim)
        for key, value in (("obs", account), ("obs_market_sum", market), ("reward", reward),
                           ("terminated", terminated), ("truncated", truncated)):
            out.setdefault(f"vec/{key}", []).append(np.asarray(value))
        for key, value in info.items():
            if not key.startswith("_"):
                out.setdefault(f"vec/info/{key}", []).append(np.asarray(value, dtype=np.float64))
    env = FxRiskEnv(data=data, config=config)
    obs, _ = env.reset(seed=5)
    out.setdefault("env/obs", []).append(_obs_record(obs, market_dim)[0])
    out.setdefault("env/obs_market_sum", []).append(_obs_record(obs, market_dim)[1])
    for _ in range(STEPS):
        obs, reward, terminated, truncated, info = env.step(_actions(rng, (data.n_pairs,)))
        account, market = _obs_record(obs, market_dim)
        for key, value in (("obs", account), ("obs_market_sum", market), ("reward", reward),
                           ("terminated", terminated), ("truncated", truncated)):
            out.setdefault(f"env/{key}", []).append(np.asarray(value))
        for key, value in info.items():
            out.setdefault(f"env/info/{key}", []).append(np.asarray(value, dtype=np.float64).reshape(-1))
        if terminated or truncated:
            obs, _ = env.reset()
            account, market = _obs_record(obs, market_dim)  # the observation the next step starts from
            out["env/obs"][-1], out["env/obs_market_sum"][-1] = account, market
    return {k: np.stack(v) for k, v in out.items()}


def record(path: Path = GOLDEN) -> None:
    """Write the golden file (inputs and outputs of every case)."""
    store: dict[str, np.ndarray] = {}
    for name, (symbols, scale) in MARKETS.items():
        data = prepare_env_data(_market(symbols, scale), CONFIG)
        for key, value in _data_arrays(data).items():
            store[f"data/{name}/{key}"] = value
        for case, overrides in cases().items():
            for key, value in run_case(data, overrides).items():
                store[f"{name}/{case}/{key}"] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **store)
    tmp.replace(path)


if __name__ == "__main__":
    record()
    print(f"wrote {GOLDEN} ({GOLDEN.stat().st_size / 1e6:.1f} MB)")
