"""Shared by every package: strict configuration loading (``configuration``), the error types
(``errors``), run folders written atomically (``run_folder``), the scripts' command-line helpers
(``cli``) and the numba compiler with its plain-Python fallback (``compiled``)."""
