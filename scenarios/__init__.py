"""Liquidity stress scenarios: YAML schema, loader and market transforms."""
