"""Shared by every package: strict configuration loading (``configuration``), the error types
(``errors``), run folders written atomically (``run_folder``) and the scripts' command-line
helpers (``cli``)."""
