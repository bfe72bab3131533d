"""Run any policy through the environment core and record every step.

Why here and not in a script: training (validation), ``scripts/evaluate.py`` and the stress
tests must score trained agents and baselines with one loop, on the same bars, the same
way. The loop drives :class:`~envs.core.FxRiskCore` directly (the arrays of
``FxRisk-v0``, no Gymnasium overhead) for a batch of accounts, calls
``policy.predict(observation)`` each bar and stores the step diagnostics.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
import pandas as pd

from agents.policies import AccountView, Policy, fraction_to_action
from envs.config import EnvConfig
from envs.core import BatchState, FxRiskCore
from envs.data import EnvData
from envs.fields import FLAG_INFO, SCALAR_INFO
from agents.evaluation.metrics import bars_per_year, summarise

#: Step diagnostics kept per step: every per-account value the step reports (envs.fields).
SCALAR_RECORDS = SCALAR_INFO


@dataclass(frozen=True, eq=False)
class EvaluationResult:
    """Per-step records (one row per account and step) and one summary row per account."""

    records: pd.DataFrame
    summary: pd.DataFrame


class ObservationNormaliser:
    """SB3 ``VecNormalize`` observation statistics, frozen (evaluation never updates them)."""

    def __init__(self, mean: np.ndarray, var: np.ndarray, clip_obs: float, epsilon: float) -> None:
        self.mean = np.asarray(mean, dtype=np.float64)
        self.std = np.sqrt(np.asarray(var, dtype=np.float64) + epsilon)
        self.clip_obs = float(clip_obs)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return np.clip((obs - self.mean) / self.std, -self.clip_obs, self.clip_obs).astype(np.float32)


class TrainedPolicy:
    """A stable-baselines3 model plus the observation normalisation it was trained with.

    Deterministic actions of an MLP policy come from :class:`~agents.evaluation.actor.MlpActor`
    (a snapshot of the weights taken here): each row's action is the same whatever batch it is
    asked in, so the stress grid asks once per bar for all its accounts (``batch_invariant``).
    Other policies (recurrent ones), and sampled actions, are asked through SB3.
    """

    def __init__(self, model: Any, normaliser: ObservationNormaliser | None = None, name: str = "ppo") -> None:
        from agents.evaluation.actor import MlpActor

        self.model = model
        self.normaliser = normaliser
        self.name = name
        self.actor = MlpActor.from_model(model)

    @property
    def batch_invariant(self) -> bool:
        """Whether a row's deterministic action is independent of the rows asked with it (no state)."""
        return self.actor is not None

    def predict(self, observation: np.ndarray, state: Any = None, episode_start: np.ndarray | None = None,
                deterministic: bool = True) -> tuple[np.ndarray, Any]:
        obs = self.normaliser(observation) if self.normaliser is not None else observation
        if deterministic and self.actor is not None:
            return self.actor(obs), None
        return self.model.predict(obs, state=state, episode_start=episode_start, deterministic=deterministic)


class SeedEnsemble:
    """Several trained policies (one per training seed) acting as one: the median of their actions.

    Why: one training seed is one draw of an unstable optimiser; the median action of a few seeds
    is a cheap, robust policy to compare with the rules (and with each seed alone). Recurrent
    policies keep one state each.
    """

    def __init__(self, members: list[TrainedPolicy], name: str = "ensemble") -> None:
        if not members:
            raise ValueError("a seed ensemble needs at least one trained policy")
        self.members = members
        self.name = name

    @property
    def batch_invariant(self) -> bool:
        """True when every member's is: the median is taken per row."""
        return all(getattr(m, "batch_invariant", False) for m in self.members)

    def predict(self, observation: np.ndarray, state: Any = None, episode_start: np.ndarray | None = None,
                deterministic: bool = True) -> tuple[np.ndarray, Any]:
        states = state if state is not None else [None] * len(self.members)
        actions, new_states = [], []
        for member, member_state in zip(self.members, states, strict=True):
            action, next_state = member.predict(observation, state=member_state, episode_start=episode_start,
                                                deterministic=deterministic)
            actions.append(np.asarray(action, dtype=np.float64))
            new_states.append(next_state)
        median = np.median(np.stack(actions), axis=0).astype(np.float32)
        return median, (new_states if any(s is not None for s in new_states) else None)


def evaluation_config(config: EnvConfig) -> EnvConfig:
    """The env config for evaluation: one episode over the whole span (no random starts)."""
    return replace(config, episode_bars=None)


def run_policy(policy: Policy, data: EnvData, config: EnvConfig, *, n_accounts: int = 1,
               starts: np.ndarray | None = None, deterministic: bool = True, label: str | None = None,
               max_steps: int | None = None) -> EvaluationResult:
    """Run ``policy`` for ``n_accounts`` accounts from ``starts`` (default: the span's first bar).

    Each account runs until stopped out or to the end of its episode (``config.episode_bars``
    bars, or the rest of the span when ``None``). Rule-based policies are bound to the
    accounts first (``bind``); SB3 models get the observation only. Returns per-step records
    and a summary per account (:func:`agents.evaluation.metrics.summarise`).
    """
    core = FxRiskCore(data, config)
    state = BatchState.empty(n_accounts, data.n_pairs)
    lo, _ = core.start_bounds()
    starts = np.full(n_accounts, lo, dtype=np.int64) if starts is None else np.asarray(starts, dtype=np.int64)
    if starts.shape != (n_accounts,):
        raise ValueError(f"starts must hold one bar per account ({n_accounts}), got shape {starts.shape}")
    core.reset_accounts(state, np.arange(n_accounts), starts)
    view = AccountView(data=data, config=config, state=state)
    if hasattr(policy, "bind"):
        policy.bind(view)
    if hasattr(policy, "reset"):
        policy.reset(None)
    name = label or getattr(policy, "name", type(policy).__name__)

    active = np.ones(n_accounts, dtype=bool)
    episode_start = np.ones(n_accounts, dtype=bool)
    rnn_state = None
    rows: dict[str, list[np.ndarray]] = {k: [] for k in ("account", "step", "t", *SCALAR_RECORDS, "reward")}
    exposures: list[np.ndarray] = []
    equity_before: list[np.ndarray] = []
    step = 0
    while active.any() and (max_steps is None or step < max_steps):
        obs = core.observe(state)
        action, rnn_state = policy.predict(obs, state=rnn_state, episode_start=episode_start,
                                           deterministic=deterministic)
        action = np.clip(np.asarray(action, dtype=np.float64).reshape(n_accounts, data.n_pairs), -1.0, 1.0)
        action[~active] = 0.0
        eq0 = state.equity.copy()
        idx = np.flatnonzero(active)
        reward, terminated, truncated, info = _step_live(core, state, action, idx)
        _record(rows, exposures, equity_before, idx, step, info, reward, eq0)
        active[idx[terminated | truncated]] = False
        episode_start = np.zeros(n_accounts, dtype=bool)
        step += 1

    columns = {k: np.concatenate(v) if v else np.array([]) for k, v in rows.items()}
    columns["equity_before"] = np.concatenate(equity_before) if equity_before else np.array([])
    expo = np.concatenate(exposures) if exposures else np.zeros((0, data.n_pairs))
    records = _records_frame(columns, expo, name, data)
    return EvaluationResult(records=records, summary=summarise_records(records, data))


def _record(rows: dict[str, list[np.ndarray]], exposures: list[np.ndarray], equity_before: list[np.ndarray],
            idx: np.ndarray, step: int, info: dict, reward: np.ndarray, eq0: np.ndarray) -> None:
    """Append one step of the accounts ``idx`` (``info``/``reward`` rows in that order)."""
    rows["account"].append(idx)
    rows["step"].append(np.full(idx.size, step))
    rows["t"].append(np.asarray(info["t"]))
    for key in SCALAR_RECORDS:
        rows[key].append(np.asarray(info[key], dtype=np.float64))
    rows["reward"].append(np.asarray(reward, dtype=np.float64))
    exposures.append(np.asarray(info["exposure"]))
    equity_before.append(eq0[idx])


def _records_frame(columns: dict[str, np.ndarray], expo: np.ndarray, name: str, data: EnvData) -> pd.DataFrame:
    """The per-step records table of one policy from its concatenated step arrays."""
    equity_before = columns.pop("equity_before")
    records = pd.DataFrame(columns)
    records.insert(0, "policy", name)
    records["timestamp"] = pd.to_datetime(data.index[records["t"].to_numpy(dtype=np.int64)], utc=True) \
        if len(records) else pd.Series(dtype="datetime64[ns, UTC]")
    records["equity_before"] = equity_before
    for j, symbol in enumerate(data.symbols):
        records[f"exposure_{symbol}"] = expo[:, j]
    for key in FLAG_INFO:
        records[key] = records[key].astype(bool)
    return records.sort_values(["account", "step"], kind="stable").reset_index(drop=True)


def run_policies(policies: Sequence[Policy], data: EnvData, config: EnvConfig, *,
                 labels: Sequence[str] | None = None, deterministic: bool = True) -> list[EvaluationResult]:
    """Each policy on its own account of one batched core, from the span's first bar to its end.

    Why: several policies over the same market; one core steps all their accounts per bar, and
    each rule-based policy answers for its own account. Per account the arithmetic is
    :func:`run_policy`'s, so each result is the one ``run_policy(policy, data, config)`` gives
    alone (account 0; a test holds them equal). :func:`run_grid` over one market.
    """
    return run_grid(policies, [data], config, labels=labels, deterministic=deterministic)[0]


def summarise_records(records: pd.DataFrame, data: EnvData) -> pd.DataFrame:
    """One row of metrics per (policy, account) from per-step records."""
    per_year = bars_per_year(data.index)
    out = []
    for (policy, account), g in records.groupby(["policy", "account"], sort=True):
        pnl = g["equity"].to_numpy() - g["equity_before"].to_numpy()
        equity = np.concatenate([g["equity_before"].to_numpy()[:1], g["equity"].to_numpy()])
        row = summarise(
            equity=equity,
            bars_per_year=per_year,
            turnover=g["turnover"].to_numpy(),
            costs=g["costs"].to_numpy(),
            margin_calls=g["margin_call"].to_numpy(),
            stop_outs=g["stopped_out"].to_numpy(),
            var_breaches=g["var_breach"].to_numpy(),
            utilisation=g["var_utilisation"].to_numpy(),
            # Exceptions count bars that carried a position (a flat bar has no VaR to exceed).
            var_forecast=np.where(g["var"].to_numpy() > 0, g["var"].to_numpy(), np.nan),
            realised_loss=-pnl,
        )
        row["breach_rate"] = row["var_breaches"] / row["n_bars"] if row["n_bars"] else float("nan")
        row["turnover_x_equity"] = row["turnover"] / row["initial_equity"] if row["n_bars"] else float("nan")
        row["mean_var_utilisation"] = float(np.mean(np.minimum(g["var_utilisation"].to_numpy(), 10.0))) \
            if len(g) else float("nan")
        out.append({"policy": policy, "account": int(account), **row})
    return pd.DataFrame(out)


_FIELDS = tuple(BatchState.__dataclass_fields__)


def _step_live(core: FxRiskCore, state: BatchState, action: np.ndarray, idx: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """Step the live accounts ``idx`` only (finished ones stay frozen); outputs are theirs, in ``idx`` order."""
    if idx.size == len(state.t):
        return core.step(state, action)
    sub = _take(state, idx)
    out = core.step(sub, action[idx])
    _put(state, idx, sub)
    return out


def _take(state: BatchState, idx: np.ndarray) -> BatchState:
    return BatchState(**{k: getattr(state, k)[idx].copy() for k in state.__dataclass_fields__})


def _put(state: BatchState, idx: np.ndarray, sub: BatchState) -> None:
    for k in state.__dataclass_fields__:
        getattr(state, k)[idx] = getattr(sub, k)


# -- many markets at once: the stress grid ----------------------------------------------------
def stack_data(parts: Sequence[EnvData]) -> tuple[EnvData, np.ndarray]:
    """Several prepared markets laid end to end along time as one :class:`EnvData`, and the row
    where each part starts in it.

    Why: the step reads rows t and t + 1 of its market only, so accounts of different markets
    (the seeds and scenarios of a stress grid) can be stepped by one core: account of part k
    lives at rows ``offset[k] + t``. The parts must agree on pairs, features, bar length and
    the step's bars-per-year (which the core takes from the first part); the per-pair rate
    differential becomes a (time, pair) array (the step reads it per row). Raises ValueError.
    """
    if not parts:
        raise ValueError("stack_data needs at least one market")
    head = parts[0]
    from envs.core import bars_per_year as core_bars_per_year

    per_year = core_bars_per_year(head)
    for k, part in enumerate(parts):
        same = (part.symbols == head.symbols and part.feature_names == head.feature_names
                and part.bar_hours == head.bar_hours and core_bars_per_year(part) == per_year
                and all((getattr(part, f.name) is None) == (getattr(head, f.name) is None) for f in fields(EnvData)))
        if not same:
            raise ValueError(f"market {k} cannot be stacked with market 0: pairs, features, bar length or "
                             f"bars per year differ")
    sizes = np.array([p.n_bars for p in parts], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    # Every array over bars (first axis: time) is stacked, whatever fields EnvData holds.
    stacked_fields: dict[str, Any] = {"span_end": None, "differential": np.concatenate(
        [np.broadcast_to(np.asarray(p.differential, dtype=np.float64), p.open.shape) for p in parts], axis=0)}
    for f in fields(EnvData):
        first = getattr(head, f.name)
        if f.name in stacked_fields or not isinstance(first, np.ndarray) or first.ndim == 0:
            continue
        values = [getattr(p, f.name) for p in parts]
        if all(isinstance(v, np.ndarray) and v.ndim and v.shape[0] == p.n_bars
               for v, p in zip(values, parts, strict=True)):
            stacked_fields[f.name] = np.concatenate(values, axis=0)
        elif any(not np.array_equal(v, first) for v in values):
            raise ValueError(f"the markets cannot be stacked: {f.name} is not an array over bars and differs")
    stacked = replace(head, **stacked_fields)
    return stacked, offsets


def run_grid(policies: Sequence[Policy], parts: Sequence[EnvData], config: EnvConfig, *,
             labels: Sequence[str] | None = None, deterministic: bool = True) -> list[list[EvaluationResult]]:
    """Every policy over every market, all as accounts of one batched core: ``out[k][i]`` is
    policy i over ``parts[k]``, from the part's first bar to its end.

    Why: a stress grid runs the same policies over many stressed markets; one loop over the bars
    steps every (market, policy) account at once (:func:`stack_data`), and each rule-based policy
    answers for all its accounts in one vectorised call (bound with
    :meth:`~agents.baselines.RuleBasedPolicy.bind_stacked`, its causal arrays computed per market).
    Per account the arithmetic is :func:`run_policy`'s, so ``out[k][i]`` is what
    ``run_policy(policy, parts[k], config)`` gives alone (a test holds them equal). Other policies
    (trained agents) whose ``batch_invariant`` is true (an MLP policy's deterministic action,
    :mod:`agents.evaluation.actor`: a row's action does not depend on the rows asked with it) are
    asked once per bar for all their live accounts; the rest are asked per account, each with its
    own recurrent state (through torch, a batched forward pass differs from a one-row pass in the
    last bits of float32, ~1e-7, which would move the results). Those must keep per-account memory
    in the state they return (SB3's contract), as one instance serves its accounts on every market.
    """
    from agents.baselines import RuleBasedPolicy
    from envs import step as kernel

    n_pol, n_parts = len(policies), len(parts)
    if n_pol == 0 or n_parts == 0:
        return [[] for _ in parts]
    names = list(labels) if labels is not None else [getattr(p, "name", type(p).__name__) for p in policies]
    if len(names) != n_pol:
        raise ValueError(f"got {len(names)} labels for {n_pol} policies")
    stacked, offsets = stack_data(parts)
    window = config.in_bars(stacked.bar_hours).window
    # Each part's own feature windows (none reaches into the part before it).
    core = FxRiskCore(stacked, config, table=np.concatenate([kernel.pack_table(p, window) for p in parts], axis=0))
    n = n_pol * n_parts  # account i * n_parts + k: policy i on part k (a policy's accounts are one slice)
    state = BatchState.empty(n, stacked.n_pairs)
    starts = np.empty(n, dtype=np.int64)
    ends = np.empty(n, dtype=np.int64)
    episode = core.config.episode_bars
    for k, part in enumerate(parts):
        last = part.last_step + 1
        end = last if episode is None else min(part.first_step + episode, last)
        starts[k::n_parts] = offsets[k] + part.first_step
        ends[k::n_parts] = offsets[k] + end
    core.reset_accounts(state, np.arange(n), starts)
    state.end[:] = ends
    is_rule = [isinstance(p, RuleBasedPolicy) for p in policies]
    batched = [not is_rule[i] and getattr(p, "batch_invariant", False) is True for i, p in enumerate(policies)]
    for i, policy in enumerate(policies):
        if is_rule[i]:
            policy.bind_stacked(AccountView(data=stacked, config=config, state=_slice(state, i, n_parts)), parts)
        else:
            if hasattr(policy, "bind"):
                raise ValueError(f"policy {names[i]!r} binds to accounts but is not rule-based: run it with "
                                 f"run_policy")
            if hasattr(policy, "reset"):
                policy.reset(None)
    rule_rows = np.concatenate([np.arange(i * n_parts, (i + 1) * n_parts) for i in range(n_pol) if is_rule[i]]
                               or [np.zeros(0, dtype=np.int64)])
    needs_obs = not all(is_rule)
    fractions = np.zeros((n, stacked.n_pairs))
    active = np.ones(n, dtype=bool)
    rnn_states: list[Any] = [None] * n
    rows: dict[str, list[np.ndarray]] = {k: [] for k in ("account", "step", "t", *SCALAR_RECORDS, "reward")}
    exposures: list[np.ndarray] = []
    equity_before: list[np.ndarray] = []
    action = np.zeros((n, stacked.n_pairs))
    step = 0
    views: list[AccountView] = []
    while active.any():
        obs = core.observe(state) if needs_obs else None
        if not views or any(getattr(views[0].state, k).base is not getattr(state, k) for k in _FIELDS):
            # views of the state's arrays, rebuilt if an array was replaced
            views = [AccountView(data=stacked, config=config, state=_slice(state, i, n_parts)) for i in range(n_pol)]
        start_flag = np.ones(1, dtype=bool) if step == 0 else np.zeros(1, dtype=bool)
        for i, policy in enumerate(policies):
            lo, hi = i * n_parts, (i + 1) * n_parts
            if not active[lo:hi].any():
                continue
            if is_rule[i]:  # all its accounts in one call (finished ones are computed and not used)
                view = views[i]
                if step == 0:
                    policy.reset(np.arange(n_parts))
                f = np.asarray(policy.target_fraction(view), dtype=np.float64)
                fractions[lo:hi] = np.where(np.isfinite(f), f, 0.0)
                continue
            if batched[i]:  # one call for all its live accounts: each row's action is the one it gets alone
                live = lo + np.flatnonzero(active[lo:hi])
                out, _ = policy.predict(obs[live], state=None, episode_start=np.full(live.size, step == 0),
                                        deterministic=deterministic)
                action[live] = np.clip(np.asarray(out, dtype=np.float64).reshape(live.size, stacked.n_pairs),
                                       -1.0, 1.0)
                continue
            for a in range(lo, hi):
                if active[a]:
                    out, rnn_states[a] = policy.predict(obs[a:a + 1], state=rnn_states[a], episode_start=start_flag,
                                                        deterministic=deterministic)
                    action[a] = np.clip(np.asarray(out, dtype=np.float64).reshape(1, stacked.n_pairs), -1.0, 1.0)[0]
        rules = rule_rows[active[rule_rows]]
        if rules.size:  # element-wise maths: each account's action is the one its own predict returns
            mapped = fraction_to_action(fractions[rules], AccountView(data=stacked, config=config,
                                                                      state=_take(state, rules)))
            action[rules] = np.clip(np.asarray(mapped, dtype=np.float64), -1.0, 1.0)
        idx = np.flatnonzero(active)
        eq0 = state.equity.copy()
        reward, terminated, truncated, info = _step_live(core, state, action, idx)
        _record(rows, exposures, equity_before, idx, step, info, reward, eq0)
        active[idx[terminated | truncated]] = False
        step += 1

    columns = {k: np.concatenate(v) for k, v in rows.items()}
    columns["equity_before"] = np.concatenate(equity_before)
    expo = np.concatenate(exposures)
    order = np.argsort(columns["account"], kind="stable")  # each account's rows, in step order
    columns = {k: v[order] for k, v in columns.items()}
    expo = expo[order]
    bounds = np.searchsorted(columns["account"], np.arange(n + 1))
    out: list[list[EvaluationResult]] = [[None] * n_pol for _ in parts]  # type: ignore[list-item]
    for i, name in enumerate(names):
        for k, part in enumerate(parts):
            a = i * n_parts + k
            mine = slice(bounds[a], bounds[a + 1])
            own = {key: v[mine] for key, v in columns.items()}
            own["account"] = np.zeros(own["account"].size, dtype=columns["account"].dtype)
            own["t"] = own["t"] - offsets[k]
            records = _records_frame(own, expo[mine], name, part)
            out[k][i] = EvaluationResult(records=records, summary=summarise_records(records, part))
    return out


def _slice(state: BatchState, i: int, size: int) -> BatchState:
    """Accounts ``[i * size, (i + 1) * size)`` of ``state`` as a state of their own (views: read-only use)."""
    return BatchState(**{k: getattr(state, k)[i * size:(i + 1) * size] for k in _FIELDS})
