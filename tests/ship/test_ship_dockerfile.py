"""The Dockerfile, checked without a Docker engine: its structure and what it promises."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    result = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            result.append((word.upper(), rest.strip()))
    return result


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last_from:]


def test_two_stages_build_then_slim_python_312() -> None:
    froms = [args for word, args in instructions() if word == "FROM"]
    assert len(froms) == 2
    assert froms[0].endswith("AS build")
    for args in froms:
        image = args.split()[0]
        assert image.startswith("python:3.12") and "slim" in image, image
        assert not image.endswith(":latest")
    copies = [args for word, args in final_stage() if word == "COPY"]
    assert any("--from=build" in c and "/opt/ci-runner" in c for c in copies), copies


def test_final_user_is_numeric_and_not_root() -> None:
    users = [args for word, args in final_stage() if word == "USER"]
    assert users, "the final stage sets no USER: the runner would run as root"
    uid = users[-1].split(":")[0]
    assert uid.isdigit(), "use a numeric UID so Kubernetes can check runAsNonRoot"
    assert int(uid) >= 10000


def test_entrypoint_is_the_console_script_and_command_is_run() -> None:
    steps = dict(final_stage())
    assert shlex.split(steps["ENTRYPOINT"].strip("[]").replace(",", " ")) == ["ci-runner"]
    assert shlex.split(steps["CMD"].strip("[]").replace(",", " ")) == ["run"]


def test_helm_is_pinned_and_verified_by_sha256() -> None:
    text = DOCKERFILE.read_text()
    version = re.search(r"ARG HELM_VERSION=(v4\.1\.\d+)\n", text)
    checksum = re.search(r"ARG HELM_SHA256=([0-9a-f]{64})\n", text)
    assert version and checksum
    assert "get.helm.sh/helm-${HELM_VERSION}-linux-amd64.tar.gz" in text
    assert re.search(r"sha256sum (--check|-c)", text), "the download must be checked"


def test_the_shipped_helm_is_the_helm_4_the_tests_run() -> None:
    """The image's helm has the major.minor of the helm 4 that scripts/install_tools.py pins."""
    version = re.search(r"ARG HELM_VERSION=(v\d+\.\d+\.)\d+", DOCKERFILE.read_text())
    installer = (ROOT / "scripts" / "install_tools.py").read_text()
    wanted = re.search(r'"helm4/helm": "(v\d+\.\d+\.)"', installer)
    assert version and wanted
    assert version.group(1) == wanted.group(1)


@pytest.mark.parametrize(
    "variable", ["HOME", "HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"]
)
def test_writable_paths_are_tmp_or_home(variable: str) -> None:
    """With a read-only root filesystem only /tmp and HOME (emptyDirs) are writable."""
    env = " ".join(args for word, args in final_stage() if word == "ENV")
    match = re.search(rf"\b{variable}=(\S+)", env)
    assert match, f"{variable} is not set in the image"
    assert match.group(1).startswith(("/tmp/", "/home/runner")) or match.group(1) == "/home/runner"


def test_dockerignore_keeps_the_context_small() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    assert "*" in lines, "start from an empty context"
    for needed in ("!setup.cfg", "!pyproject.toml", "!README.md", "!job/"):
        assert needed in lines
