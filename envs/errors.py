"""The environments' invalid-call error: ours (one line) and gymnasium's ``ResetNeeded`` at once."""

from __future__ import annotations

import gymnasium as gym

from simulator.errors import InvalidCallError


class ResetNeededError(InvalidCallError, gym.error.ResetNeeded):
    """``step`` before ``reset``, after ``terminated``/``truncated``, or past the end of the data.

    Raised by every core (numpy, the compiled generic and one-pair kernels, the single environment);
    a script or a gymnasium wrapper can catch it as either type.
    """


STEP_PAST_DATA = "step() past the end of the episode or the data (or before reset()) — call reset() first"
