"""A real Kubernetes control plane on 127.0.0.1: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler, and kwok playing the kubelet of one fake node.

Everything lives in one temporary folder and on free loopback ports. Each process is started with
``PR_SET_PDEATHSIG`` = SIGKILL, so the kernel kills it when the process that started it dies, even
by SIGKILL: an interrupted test session leaves nothing running. ``stop()`` ends them in reverse
order and removes the folder.

The flags follow what a kubeadm cluster runs, less what needs a kubelet or a network: RBAC (and
Node) authorization, the default admission plugins (PodSecurity and ServiceAccount included),
ServiceAccount tokens signed with a key of our own, and a static token for the admin.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.cluster import build

STAGES = Path(__file__).resolve().parent / "stages.yaml"
DIGEST = "sha256:8e6b49e802ce46f224d1abf1ca131d485c8f1a23bf9947c4e1239ea58e3091a6"
"""The digest kwok writes as the termination message of a build pod that succeeds (stages.yaml)."""
NODE = "kwok-node-0"
READY_WITHIN = 120.0
"""Seconds the whole plane may take to become ready (about 10 s on a 2-core machine)."""
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child, before exec: SIGKILL me when the process that started me dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ControlPlane:
    """One control plane; ``start()`` it, use ``kubeconfig``, ``stop()`` it."""

    kubernetes: str = build.PINNED_KUBERNETES
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="ci-runner-cluster-")))
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    token: str = field(default_factory=lambda: secrets.token_hex(16))
    api_port: int = 0
    etcd_port: int = 0

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.api_port}"

    @property
    def etcd_url(self) -> str:
        return f"http://127.0.0.1:{self.etcd_port}"

    @property
    def ca_file(self) -> Path:
        return self.root / "pki" / "apiserver.crt"

    def start(self) -> None:
        """Build (or reuse) the binaries, start every component, return once all are ready."""
        binaries = build.build_all(self.kubernetes)
        try:
            self._start(binaries)
        except BaseException:
            self.stop()
            raise

    def _start(self, bins: dict[str, Path]) -> None:
        self.etcd_port, peer = _free_port(), _free_port()
        etcd_url = f"http://127.0.0.1:{self.etcd_port}"
        self._spawn(
            "etcd",
            [
                str(bins["etcd"]),
                "--name",
                "default",
                "--data-dir",
                str(self.root / "etcd"),
                "--listen-client-urls",
                etcd_url,
                "--advertise-client-urls",
                etcd_url,
                "--listen-peer-urls",
                f"http://127.0.0.1:{peer}",
                "--initial-advertise-peer-urls",
                f"http://127.0.0.1:{peer}",
                "--initial-cluster",
                f"default=http://127.0.0.1:{peer}",
                "--unsafe-no-fsync",  # a test cluster's data need not survive a power cut
                "--listen-metrics-urls",
                f"http://127.0.0.1:{_free_port()}",
            ],
        )
        key = self._service_account_key()
        tokens = self.root / "tokens.csv"
        tokens.write_text(f"{self.token},admin,admin,system:masters\n")
        self.api_port = _free_port()
        self._spawn(
            "kube-apiserver",
            [
                str(bins["kube-apiserver"]),
                "--etcd-servers",
                etcd_url,
                "--bind-address",
                "127.0.0.1",
                "--advertise-address",
                "127.0.0.1",
                # a loopback advertise address is refused by the endpoint reconciler
                "--endpoint-reconciler-type",
                "none",
                "--secure-port",
                str(self.api_port),
                "--cert-dir",
                str(self.root / "pki"),
                "--service-account-issuer",
                "https://kubernetes.default.svc.cluster.local",
                "--service-account-key-file",
                str(key),
                "--service-account-signing-key-file",
                str(key),
                "--service-cluster-ip-range",
                "10.96.0.0/16",
                "--authorization-mode",
                "Node,RBAC",
                "--token-auth-file",
                str(tokens),
                "--allow-privileged=true",
                # Jobs are watched from etcd, not the watch cache, so that a compaction makes an old
                # resourceVersion 410 Gone at once, as a busy cluster's rolled-over cache does after
                # a while (tests/e2e/real/test_watch.py); a supported setting of real clusters.
                "--watch-cache-sizes=jobs.batch#0",
            ],
        )
        self._wait_ready()
        self._write_kubeconfig()
        kubeconfig = str(self.kubeconfig)
        self._spawn(
            "kube-controller-manager",
            [
                str(bins["kube-controller-manager"]),
                "--kubeconfig",
                kubeconfig,
                "--leader-elect=false",
                "--controllers",
                "*",
                "--service-account-private-key-file",
                str(key),
                "--root-ca-file",
                str(self.ca_file),
                "--secure-port",
                str(_free_port()),
                "--bind-address",
                "127.0.0.1",
            ],
        )
        self._spawn(
            "kube-scheduler",
            [
                str(bins["kube-scheduler"]),
                "--kubeconfig",
                kubeconfig,
                "--leader-elect=false",
                "--secure-port",
                str(_free_port()),
                "--bind-address",
                "127.0.0.1",
            ],
        )
        self._spawn(
            "kwok",
            [
                str(bins["kwok"]),
                "--kubeconfig",
                kubeconfig,
                "--manage-all-nodes",
                "--config",
                str(STAGES),
                "--server-address",
                f"127.0.0.1:{_free_port()}",
            ],
        )
        self._add_node()
        self._wait_for(self._node_ready, f"node {NODE} Ready")
        self._wait_for(self._default_service_account, "the default ServiceAccount")

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = (self.root / f"{name}.log").open("wb")
        self.processes[name] = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,  # before exec; safe: no lock of ours is held here
            start_new_session=True,  # a ^C at the terminal is for the launcher, which stops us
        )
        log.close()

    def _service_account_key(self) -> Path:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        path = self.root / "sa.key"
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
        )
        return path

    def _write_kubeconfig(self) -> None:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "ci-runner-test",
                    "cluster": {"server": self.server, "certificate-authority": str(self.ca_file)},
                }
            ],
            "users": [{"name": "admin", "user": {"token": self.token}}],
            "contexts": [
                {"name": "admin", "context": {"cluster": "ci-runner-test", "user": "admin"}}
            ],
            "current-context": "admin",
        }
        self.kubeconfig.write_text(json.dumps(config, indent=2))

    def request(self, method: str, path: str, body: object = None) -> dict[str, object]:
        """One admin request to the API server; its JSON answer."""
        context = ssl.create_default_context(cafile=str(self.ca_file))
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.server + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.token}")
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, context=context, timeout=10) as answer:
            loaded: dict[str, object] = json.loads(answer.read() or b"{}")
            return loaded

    def _wait_ready(self) -> None:
        def ready() -> bool:
            if not self.ca_file.exists():
                return False
            context = ssl.create_default_context(cafile=str(self.ca_file))
            request = urllib.request.Request(f"{self.server}/readyz")
            request.add_header("Authorization", f"Bearer {self.token}")
            with urllib.request.urlopen(request, context=context, timeout=5) as answer:
                return bool(answer.status == 200)

        self._wait_for(ready, "kube-apiserver /readyz")

    def _add_node(self) -> None:
        self.request(
            "POST",
            "/api/v1/nodes",
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": NODE,
                    "annotations": {"kwok.x-k8s.io/node": "fake"},
                    "labels": {
                        "kubernetes.io/hostname": NODE,
                        "kubernetes.io/os": "linux",
                        "kubernetes.io/arch": "amd64",
                        "type": "kwok",
                    },
                },
            },
        )

    def _node_ready(self) -> bool:
        node = self.request("GET", f"/api/v1/nodes/{NODE}")
        conditions = node.get("status", {}).get("conditions", [])  # type: ignore[attr-defined]
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    def _default_service_account(self) -> bool:
        self.request("GET", "/api/v1/namespaces/default/serviceaccounts/default")
        return True

    def _wait_for(self, check: Callable[[], bool], what: str) -> None:
        """Poll ``check`` until it holds; a component that exits, or the deadline, fails."""
        deadline = time.monotonic() + READY_WITHIN
        while True:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited {process.returncode}: {self.log_tail(name)}")
            with contextlib.suppress(OSError, urllib.error.URLError, ValueError):
                if check():
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} not ready in {READY_WITHIN:.0f} s (logs: {self.root})")
            time.sleep(0.2)  # polling a condition with a deadline, not synchronising on time

    def log_tail(self, name: str, lines: int = 15) -> str:
        path = self.root / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """Stop every component (newest first) and remove the folder."""
        for process in reversed(list(self.processes.values())):
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
        for process in reversed(list(self.processes.values())):
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()
        shutil.rmtree(self.root, ignore_errors=True)

    def kill_apiserver(self) -> None:
        """SIGKILL kube-apiserver, as a crash or a lost control-plane node would end it."""
        process = self.processes["kube-apiserver"]
        process.kill()
        process.wait()

    def start_apiserver(self) -> None:
        """Start kube-apiserver again with the flags it had; return once it is ready."""
        argv = [str(arg) for arg in self.processes["kube-apiserver"].args]  # type: ignore[union-attr]
        self._spawn("kube-apiserver", argv)
        self._wait_ready()


def compact(etcd_url: str) -> int:
    """Compact etcd at its current revision, as kube-apiserver does every 5 minutes: a watch
    from an older resourceVersion then ends with 410 Gone. The revision compacted at."""
    head = _post_json(f"{etcd_url}/v3/kv/range", {"key": "AA==", "limit": 1})  # any key will do
    revision = int(head["header"]["revision"])
    _post_json(f"{etcd_url}/v3/kv/compaction", {"revision": revision, "physical": True})
    return revision


def _post_json(url: str, body: object) -> dict[str, dict[str, str]]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=10) as answer:
        loaded: dict[str, dict[str, str]] = json.loads(answer.read())
        return loaded


@contextlib.contextmanager
def running(kubernetes: str = build.PINNED_KUBERNETES) -> Iterator[ControlPlane]:
    """A started control plane for the ``with`` block."""
    plane = ControlPlane(kubernetes)
    plane.start()
    try:
        yield plane
    finally:
        plane.stop()
