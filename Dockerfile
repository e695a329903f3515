# syntax=docker/dockerfile:1
# ci-runner image: the `ci-runner` console script plus a pinned, checksum-verified helm.
# Build: docker build -t REGISTRY/ci-runner:0.1.0 .
# Runs as UID/GID 10001 with a read-only root filesystem; the only writable paths it needs are
# /tmp and $HOME (/home/runner), both mounted as emptyDir volumes by the chart and the manifests.
# Both stages use the same base, so the virtualenv's interpreter path stays valid when copied.
# The base is pinned by tag only: its digest can only be read from the registry (docker
# buildx imagetools inspect python:3.12-slim-bookworm), which our machines cannot reach; pin it
# as python:3.12-slim-bookworm@sha256:<digest> in both FROM lines where a registry is reachable.
FROM python:3.12-slim-bookworm AS build
# helm 4.1, the release the tests run under CI_RUNNER_HELM=4 (helm 3 security fixes end in
# February 2027). Pinned by version and by the sha256 Helm publishes for the release tarball
# helm-${HELM_VERSION}-linux-amd64.tar.gz (its .sha256sum file); only linux/amd64 is built.
ARG HELM_VERSION=v4.1.4
ARG HELM_SHA256=70b2c30a19da4db264dfd68c8a3664e05093a361cefd89572ffb36f8abfa3d09
# python:slim has no curl or wget; Python's urllib fetches the tarball, sha256sum checks it.
RUN python -c "import sys, urllib.request; urllib.request.urlretrieve(sys.argv[1], sys.argv[2])" \
        "https://get.helm.sh/helm-${HELM_VERSION}-linux-amd64.tar.gz" /tmp/helm.tar.gz \
    && echo "${HELM_SHA256}  /tmp/helm.tar.gz" | sha256sum --check --strict - \
    && tar -xzf /tmp/helm.tar.gz -C /tmp linux-amd64/helm \
    && install -m 0755 /tmp/linux-amd64/helm /usr/local/bin/helm \
    && rm -rf /tmp/helm.tar.gz /tmp/linux-amd64 \
    && helm version --short

WORKDIR /src
RUN python -m venv /opt/ci-runner
COPY setup.cfg pyproject.toml README.md ./
COPY job ./job
RUN /opt/ci-runner/bin/pip install --no-cache-dir --disable-pip-version-check . \
    && /opt/ci-runner/bin/ci-runner --help > /dev/null

FROM python:3.12-slim-bookworm
# checkov:skip=CKV_DOCKER_2: a batch job, not a service: there is nothing to probe between start and exit, and Kubernetes ignores Docker HEALTHCHECK anyway
RUN groupadd --gid 10001 runner \
    && useradd --uid 10001 --gid 10001 --home-dir /home/runner --create-home \
        --shell /usr/sbin/nologin runner
COPY --from=build /usr/local/bin/helm /usr/local/bin/helm
# The virtualenv keeps its absolute path: its scripts' shebangs point into /opt/ci-runner.
COPY --from=build /opt/ci-runner /opt/ci-runner
# helm writes its cache, config and plugin data under these; /tmp is an emptyDir in the pod.
ENV PATH=/opt/ci-runner/bin:${PATH} \
    HOME=/home/runner \
    HELM_CACHE_HOME=/tmp/helm/cache \
    HELM_CONFIG_HOME=/tmp/helm/config \
    HELM_DATA_HOME=/tmp/helm/data \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
WORKDIR /home/runner
USER 10001:10001
ENTRYPOINT ["ci-runner"]
CMD ["run"]
