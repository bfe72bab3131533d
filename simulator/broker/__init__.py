"""The broker as pure functions: fills with costs and square-root impact (``execution``), account
and margin maths (``account``), financing (``financing``), the numpy accounting step (``engine``,
the readable reference the compiled step in ``envs.step`` is tested against) and the settings a
stress scenario may change (``settings``)."""
