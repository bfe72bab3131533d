"""The comparison report: results and text (``build``), the interactive Plotly page
(``interactive``), the shared plot style (``style``) and the learning curves (``training_curves``)."""
