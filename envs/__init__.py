"""Gymnasium FOREX environments (thin adapters over ``simulator``): registration, wrappers, rewards.

Importing this package registers ``FxRisk-v0`` (single environment; batched with
``gymnasium.make_vec(..., vectorization_mode="vector_entry_point")``).
"""

import gymnasium as gym

ENV_ID = "FxRisk-v0"

if ENV_ID not in gym.registry:
    gym.register(
        id=ENV_ID,
        entry_point="envs.fx_env:FxRiskEnv",
        vector_entry_point="envs.vector:FxRiskVectorEnv",
        disable_env_checker=False,
        # The env enforces reset-before-step itself (its ResetNeededError is gymnasium's
        # ResetNeeded) and has no render, so gymnasium's OrderEnforcing wrapper would only add a
        # call level to every step.
        order_enforce=False,
    )

__all__ = ["ENV_ID"]
