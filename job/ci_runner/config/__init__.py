"""The runner's settings: one table (``settings``), its parsers (``parse``), and loading and
validating it once from the command line and the environment (``loading``)."""

from .loading import given_secrets, load, misspelt
from .settings import OBSOLETE, Settings, StateSettings, table

__all__ = [
    "OBSOLETE",
    "Settings",
    "StateSettings",
    "given_secrets",
    "load",
    "misspelt",
    "table",
]
