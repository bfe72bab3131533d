"""The environments' errors: ours (one line) and gymnasium's at once (``ResetNeeded``, ``InvalidAction``)."""

from __future__ import annotations

import gymnasium as gym

from simulator.common.errors import FxRiskError, InvalidCallError


class ResetNeededError(InvalidCallError, gym.error.ResetNeeded):
    """``step`` before ``reset``, after ``terminated``/``truncated``, or past the end of the data.

    Raised by the compiled step (batched and single) and the environments;
    a script or a gymnasium wrapper can catch it as either type.
    """


class InvalidActionError(FxRiskError, ValueError, gym.error.InvalidAction):
    """An action of the wrong shape, non-finite, or outside the action space (one line naming it).

    Also a ``ValueError`` and gymnasium's ``InvalidAction``, so callers may catch any of the three.
    """


STEP_PAST_DATA = "step() past the end of the episode or the data (or before reset()) — call reset() first"
