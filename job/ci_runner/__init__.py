"""ci-runner: one check-build-deploy cycle per run, state kept in the cluster."""

__version__ = "0.1.0"
