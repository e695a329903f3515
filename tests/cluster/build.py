"""Build the real control plane from source, once per pinned version, and keep the binaries.

Three small Go modules beside this file pin what is built, each with its go.mod and go.sum:
``kubernetes-<minor>/`` (kube-apiserver, kube-controller-manager, kube-scheduler from
``k8s.io/kubernetes``), ``etcd/`` (the etcd server) and ``kwok/`` (the fake kubelet). The binaries
land in ``$XDG_CACHE_HOME/ci-runner/control-plane/<module>-<hash>/`` (``~/.cache`` by default),
keyed by the module's files, so a changed pin builds afresh and an unchanged one costs nothing.
Go's own caches (GOMODCACHE, GOCACHE) make a rebuild after a pin change mostly incremental.

``k8s.io/kubernetes`` is not meant to be imported: its go.mod requires about 30 staging modules
(``k8s.io/api``, ``k8s.io/client-go``, ...) at v0.0.0 with ``=> ./staging/...`` replaces, so each
of our kubernetes modules replaces every one of them with its published ``v0.<minor>.<patch>``.
Without version ldflags ``/version`` says v0.0.0 and helm's ``kubeVersion`` checks fail, so they
are set as upstream's ``hack/lib/version.sh`` sets them.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
PINNED_KUBERNETES = "1.37"
"""The minor CI runs against: the newest on the module proxy (its newest patch is in go.mod)."""
OLDEST_KUBERNETES = "1.35"
"""The oldest minor upstream still supports; ``build.py --kubernetes 1.35`` builds it."""

DOWNLOAD_ATTEMPTS = 3
"""`go mod download` tries: a module proxy that fails once must not fail the build."""
DOWNLOAD_BACKOFF = 10


@dataclass(frozen=True)
class Module:
    """One Go module of ours and the commands built from it."""

    directory: str
    packages: tuple[str, ...]
    """Import paths of the ``main`` packages to build."""

    @property
    def path(self) -> Path:
        return HERE / self.directory

    def version(self, dependency: str) -> str:
        """The version go.mod requires of ``dependency``."""
        gomod = (self.path / "go.mod").read_text()
        found = re.search(rf"^\s*(?:require\s+)?{re.escape(dependency)} (v\S+)$", gomod, re.M)
        if not found:
            raise SystemExit(f"{self.path / 'go.mod'} requires no {dependency}")
        return found.group(1)

    def key(self) -> str:
        """A hash of every file that decides what is built."""
        digest = hashlib.sha256()
        for file in sorted(self.path.iterdir()):
            if file.suffix in (".mod", ".sum", ".go"):
                digest.update(file.name.encode() + b"\0" + file.read_bytes())
        return digest.hexdigest()[:12]

    def ldflags(self) -> str:
        if not self.directory.startswith("kubernetes-"):
            return "-s -w"
        version = self.version("k8s.io/kubernetes")
        major, minor, _ = version.lstrip("v").split(".", 2)
        stamp = [
            f"-X k8s.io/component-base/version.{name}={value}"
            for name, value in (("gitVersion", version), ("gitMajor", major), ("gitMinor", minor))
        ]
        return " ".join(["-s", "-w", *stamp])


def kubernetes_module(minor: str) -> Module:
    cmd = "k8s.io/kubernetes/cmd/"
    return Module(
        f"kubernetes-{minor}",
        (f"{cmd}kube-apiserver", f"{cmd}kube-controller-manager", f"{cmd}kube-scheduler"),
    )


ETCD = Module("etcd", ("ci-runner.test/cluster/etcd",))
KWOK = Module("kwok", ("sigs.k8s.io/kwok/cmd/kwok",))


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ci-runner" / "control-plane"


def _go(args: list[str], module: Module) -> None:
    # -mod=readonly: a go.sum that does not cover the build is an error, never an edit.
    env = {**os.environ, "GOFLAGS": "-mod=readonly -buildvcs=false", "CGO_ENABLED": "0"}
    subprocess.run(["go", *args], cwd=module.path, env=env, check=True)


def _download(module: Module) -> None:
    for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
        try:
            _go(["mod", "download"], module)
            return
        except subprocess.CalledProcessError:
            if attempt == DOWNLOAD_ATTEMPTS:
                raise
            print(f"go mod download failed in {module.directory}; trying again", file=sys.stderr)
            time.sleep(DOWNLOAD_BACKOFF * attempt)


def build(module: Module) -> Path:
    """The folder holding ``module``'s binaries: reused when cached, else built into it."""
    target = cache_root() / f"{module.directory}-{module.key()}"
    if target.is_dir():
        return target
    if shutil.which("go") is None:
        raise SystemExit("go is not on PATH: the control plane is built from source with Go")
    started = time.monotonic()
    print(f"building {module.directory} into {target} (minutes on a fresh machine)", flush=True)
    _download(module)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{module.directory}-", dir=target.parent))
    try:
        command = ["build", "-trimpath", "-ldflags", module.ldflags(), "-o", f"{staging}/"]
        _go([*command, *module.packages], module)
        staging.rename(target)  # whole or not at all: a killed build leaves no half cache
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(f"built {module.directory} in {time.monotonic() - started:.0f} s", flush=True)
    return target


def build_all(kubernetes: str = PINNED_KUBERNETES) -> dict[str, Path]:
    """Every binary the control plane needs, by name: built or taken from the cache."""
    binaries: dict[str, Path] = {}
    for module in (kubernetes_module(kubernetes), ETCD, KWOK):
        folder = build(module)
        binaries.update({path.name: path for path in folder.iterdir()})
    return binaries
