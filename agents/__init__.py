"""PPO and constrained-PPO position-sizing agents, rule-based sizing baselines, callbacks, hyperparameters."""
