"""TLS to a real API server with a self-signed certificate: VERIFY_SSL unset leaves it to the
kubeconfig, as kubectl and helm do; set, it decides."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.e2e.appkit import App
from tests.e2e.real.realkit import require_real

pytestmark = pytest.mark.helm


def insecure_kubeconfig(app: App, tmp_path: Path) -> dict[str, str]:
    """The admin's kubeconfig with ``insecure-skip-tls-verify: true`` instead of the CA."""
    config = yaml.safe_load(Path(app.kube.kubeconfig).read_text())
    cluster = config["clusters"][0]["cluster"]
    cluster.pop("certificate-authority", None)
    cluster.pop("certificate-authority-data", None)
    cluster["insecure-skip-tls-verify"] = True
    path = tmp_path / "insecure-kubeconfig"
    path.write_text(json.dumps(config))
    return {"KUBECONFIG": str(path)}


def without_verify_ssl(app: App) -> None:
    app.env.pop("VERIFY_SSL", None)


def test_a_kubeconfig_that_skips_tls_verification_is_honoured(app: App, tmp_path: Path) -> None:
    require_real(app)
    without_verify_ssl(app)
    done = app.run(**insecure_kubeconfig(app, tmp_path))
    assert done.code == 0, done.output
    assert app.heads[-1] in app.deployed_image()


def test_a_kubeconfig_with_the_ca_is_verified(app: App) -> None:
    require_real(app)
    without_verify_ssl(app)  # the test ground's kubeconfig names the API server's CA
    done = app.run()
    assert done.code == 0, done.output


def test_verify_ssl_true_overrides_a_kubeconfig_that_skips_verification(
    app: App, tmp_path: Path
) -> None:
    require_real(app)
    done = app.run(VERIFY_SSL="true", **insecure_kubeconfig(app, tmp_path))
    assert done.code == 3, done.output
    assert "CERTIFICATE_VERIFY_FAILED" in done.stderr or "certificate" in done.stderr.lower()
    assert "Traceback" not in done.stderr
