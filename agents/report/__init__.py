"""The stress-test comparison report, one concept a module.

``results`` reads the run folder (results.csv, per-step cells, plan); ``ranking`` computes the
risk-first ranking, the paired test and the deflated Sharpe ratio; ``analysis`` holds one
report's numbers; ``formatting`` and ``text`` write numbers and words (verdict, tables,
sections); ``plots`` is the registry of PNG plots; ``publish`` makes the HTML and renames the
finished folder; ``build`` ties them together (``build_report``). Also: ``interactive`` (the
Plotly page), ``style`` (what both pages share) and ``training_curves`` (learning curves).
"""
