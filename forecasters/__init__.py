"""Causal features, volatility forecasters (EWMA, GARCH family, LSTM/GRU), VaR/ES and VaR backtests."""
