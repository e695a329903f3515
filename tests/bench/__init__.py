"""The benchmark: ``python -m tests.bench`` (see ``__main__``). Not tests: no file here is named
``test_*``, so pytest collects nothing from it, and CI does not run it."""
