"""A kubeconfig that acts as a ServiceAccount, on the emulator and on a real cluster alike."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from tests.support.kube_target import KubeTarget


def service_account_kubeconfig(
    kube: KubeTarget, kubectl: str, namespace: str, name: str, path: Path
) -> str:
    """Write a kubeconfig for ServiceAccount ``namespace/name`` to ``path``: the cluster of
    ``kube``'s kubeconfig and a token from ``kubectl create token`` (a TokenRequest).

    client-go (kubectl, helm) sends a kubeconfig's credentials only over TLS ("only try to read
    the auth information if we are secure", tools/clientcmd/client_config.go), but its
    impersonation always: for a plain-HTTP server (the emulator) the kubeconfig also
    impersonates the ServiceAccount, which the emulator takes as that ServiceAccount.
    """
    token = subprocess.run(
        [kubectl, "create", "token", name, "--namespace", namespace],
        env=kube.env(), capture_output=True, text=True, check=True, timeout=60,
    ).stdout.strip()  # fmt: skip
    config = yaml.safe_load(Path(kube.kubeconfig).read_text())
    context = next(c for c in config["contexts"] if c["name"] == config["current-context"])
    cluster = next(c for c in config["clusters"] if c["name"] == context["context"]["cluster"])
    user: dict[str, str] = {"token": token}
    if cluster["cluster"]["server"].startswith("http://"):
        user["as"] = f"system:serviceaccount:{namespace}:{name}"
    config["users"] = [{"name": "service-account", "user": user}]
    context["context"] = {**context["context"], "user": "service-account", "namespace": namespace}
    config["contexts"] = [context]
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
    return str(path)
