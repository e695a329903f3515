"""The runner's settings: one table (``settings``) and loading and validating it once from the
command line and the environment (``loading``); the parsers are ``ci_runner.parsing``, a layer
below, so that neither module needs this package to be imported first."""

from .loading import given_secrets, load, load_fetch, misspelt
from .settings import OBSOLETE, FetchSettings, FleetSettings, Settings, StateSettings, table

__all__ = [
    "OBSOLETE",
    "FetchSettings",
    "FleetSettings",
    "Settings",
    "StateSettings",
    "given_secrets",
    "load",
    "load_fetch",
    "misspelt",
    "table",
]
