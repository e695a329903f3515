"""The test suite of ci-runner (a package, so that tests import their helpers by full name)."""
