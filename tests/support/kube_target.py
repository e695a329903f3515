"""The Kubernetes API a test talks to (its own module, so tests never import a conftest)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from tests.support.kube_emulator import Emulator


@dataclass
class KubeTarget:
    """The Kubernetes API a test talks to: the emulator, or a real cluster."""

    kubeconfig: str
    namespace: str
    """A namespace of this test's own (created on a real cluster, so tests don't collide)."""
    emulator: Emulator | None

    def env(self) -> dict[str, str]:
        """Environment for a subprocess that should talk to this API."""
        return {**os.environ, "KUBECONFIG": self.kubeconfig}
