"""Planted-bug check: plausible bugs in the fast paths, each of which the test suite must catch.

``python -m tests.mutants`` (from the repository root) applies each mutant of
``catalogue.MUTANTS`` to a copy of the package in a temporary directory (the
working tree is never modified), runs the tests selected for it there and
fails if any mutant survives. See ``run.py`` for the options.
"""
