"""An in-memory Kubernetes API server for tests (see README.md)."""

from .controls import RequestRecord
from .emulator import Emulator

__all__ = ["Emulator", "RequestRecord"]
