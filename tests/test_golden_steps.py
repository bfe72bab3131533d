"""The step keeps its golden trajectories (recorded before the step was rewritten as one source).

Floats agree to 1e-12 (relative, and absolute near zero), flags exactly; every case of
:mod:`tests.golden_steps` (one- and three-pair markets, each VaR mode, reward, action mode
and size unit; vector env with autoreset and single env).
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.golden_steps import GOLDEN, MARKETS, cases, run_case, stored_data

FLAGS = ("terminated", "truncated", "var_breach", "clipped", "margin_call", "stopped_out")


@pytest.fixture(scope="module")
def store() -> dict[str, np.ndarray]:
    with np.load(GOLDEN) as z:
        return {k: z[k] for k in z.files}


@pytest.mark.parametrize("market", sorted(MARKETS))
@pytest.mark.parametrize("case", sorted(cases()))
def test_the_step_reproduces_its_golden_trajectories(store, market, case) -> None:
    # Arrange: the stored inputs of this market
    data = stored_data(store, market)
    prefix = f"{market}/{case}/"
    expected = {k[len(prefix):]: v for k, v in store.items() if k.startswith(prefix)}

    # Act
    got = run_case(data, cases()[case])

    # Assert: the same entries, the same values; entries added since (the no-trade band's counts,
    # off in these cases) are zero
    assert set(expected) <= set(got)
    for key in set(got) - set(expected):
        assert key.rsplit("/", 1)[-1] in ("band_holds", "small_orders") and not got[key].any(), key
    for key, want in expected.items():
        if key.rsplit("/", 1)[-1] in FLAGS:
            np.testing.assert_array_equal(got[key], want, err_msg=key)
        else:
            np.testing.assert_allclose(got[key], want, rtol=1e-12, atol=1e-12, err_msg=key)
