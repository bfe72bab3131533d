"""Synthetic markets: the G10-style generator (``generator``: GARCH-t, jumps, regimes, seasonality),
its calibration to a real series (``calibration``) and the planted-edge market that proves learning
(``planted_edge``)."""
