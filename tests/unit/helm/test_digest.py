"""The image values a deploy gives the chart: by tag, or pinned to the digest that was pushed."""

from __future__ import annotations

from pathlib import Path

from ci_runner.helm.deploy import Deploy
from ci_runner.helm.values import image_values

from tests.support.settings import app_settings

SHA = "0123456789abcdef0123456789abcdef01234567"
DIGEST = "sha256:" + "cd" * 32
settings = app_settings


def test_the_tag_becomes_sha_at_digest_so_repository_colon_tag_pulls_by_digest() -> None:
    assert image_values(settings(), SHA, DIGEST) == {
        "image": {"repository": "r.example.com/acme/shop", "tag": f"{SHA}@{DIGEST}"}
    }


def test_with_image_digest_key_the_digest_goes_there_and_the_tag_stays_the_sha() -> None:
    values = image_values(settings(IMAGE_DIGEST_KEY="app.image.digest"), SHA, DIGEST)
    assert values == {
        "image": {"repository": "r.example.com/acme/shop", "tag": SHA},
        "app": {"image": {"digest": DIGEST}},
    }


def test_plain_tags_without_a_digest_or_with_deploy_by_digest_off() -> None:
    plain = {"image": {"repository": "r.example.com/acme/shop", "tag": SHA}}
    assert image_values(settings(), SHA, None) == plain
    assert image_values(settings(IMAGE_DIGEST_KEY="image.digest"), SHA, None) == plain
    assert image_values(settings(DEPLOY_BY_DIGEST="false"), SHA, DIGEST) == plain


def test_pinning_a_deploy_keeps_its_other_values() -> None:
    s = settings(IMAGE_DIGEST_KEY="image.digest")
    deploy = Deploy(
        s, Path("/chart"), {"replicas": 2, "image": {"pullPolicy": "Always", "tag": SHA}}
    )
    pinned = deploy.pinned(SHA, DIGEST)
    assert pinned.values == {
        "replicas": 2,
        "image": {
            "pullPolicy": "Always",
            "tag": SHA,
            "repository": "r.example.com/acme/shop",
            "digest": DIGEST,
        },
    }
    assert deploy.values["image"] == {"pullPolicy": "Always", "tag": SHA}  # not changed in place
