"""Waiting for a build: the progress line a person sees while a build pod runs."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest
from ci_runner.kube import build_watch as buildwatch
from ci_runner.kube.build_job import build_job
from ci_runner.kube.client import JOBS, Kube
from kubernetes import config

from tests.support.kube_target import KubeTarget
from tests.support.settings import app_settings


def test_a_running_build_logs_its_progress_until_it_ends(
    kube: KubeTarget, emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every look logs (instead of every 30 s), so the test needs no clock.
    monkeypatch.setattr(buildwatch, "PROGRESS_SECONDS", 0)
    monkeypatch.setattr(buildwatch, "LOOK_SECONDS", 1)
    settings = app_settings(CICD_NS=kube.namespace)
    emulator.jobs.behave("hold", namespace=kube.namespace)
    body = build_job(settings, "a" * 40, 1)
    progressed = threading.Event()

    class Seen(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "elapsed" in record.getMessage():
                progressed.set()

    handler = Seen()
    logging.getLogger("ci_runner.kube.build_watch").addHandler(handler)
    logging.getLogger("ci_runner.kube.build_watch").setLevel(logging.INFO)
    results: list[buildwatch.BuildResult] = []
    with Kube(config.new_client_from_config(kube.kubeconfig), 10) as api:
        api.create(JOBS, body)
        name = body["metadata"]["name"]
        waiter = threading.Thread(
            target=lambda: results.append(buildwatch.Watcher(api, settings, name).wait())
        )
        waiter.start()
        try:
            assert progressed.wait(60), "no progress line was logged"
        finally:
            emulator.jobs.release(kube.namespace, name, "succeed")
            waiter.join(60)
            logging.getLogger("ci_runner.kube.build_watch").removeHandler(handler)
    assert results == [buildwatch.BuildResult(True)]
