"""Market data: the validated bar schema (``market``), pair conventions (``pairs``), the sources
(``sample``, ``csv_loader``, ``ecb``, ``yahoo``, with the shared command-line flags in ``sources``),
cleaning and the close-only rules, bar timing (``frequency``), and the default depth and spread
models. This folder also holds the data files the code reads (pairs, rates, spreads, depth, the
bundled sample)."""
