#!/usr/bin/env bash
# The end-to-end suite against a real Kubernetes API server.
#
#   bash scripts/e2e-real.sh [PYTEST ARGS]
#
# Without CI_RUNNER_TEST_KUBECONFIG it builds (or reuses, from ~/.cache/ci-runner) the pinned
# control plane from source -- etcd, kube-apiserver, kube-controller-manager, kube-scheduler and
# kwok as the kubelet -- starts it on 127.0.0.1, runs the suite against it and stops it.
# With CI_RUNNER_TEST_KUBECONFIG=/path/to/kubeconfig it runs the same suite against that cluster
# (kind, k3d, ...) instead; tests that need kwok's staged pod fates then skip.
# CI_RUNNER_HELM=3 runs it under helm 3.18 (default: helm 4, the image's); E2E_PATHS="tests/e2e/real"
# runs only some of it.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -x .venv/bin/python ]] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
.venv/bin/python scripts/install_tools.py >/dev/null
export PATH="$PWD/.venv/bin:$PATH"
export CI_RUNNER_HELM="${CI_RUNNER_HELM:-4}"
read -r -a tests <<< "${E2E_PATHS:-tests/e2e tests/fidelity tests/ship}"
# The tests that kill kube-apiserver run alone, after the rest, so that no other test sees it.
suite="pytest -n 2 -v -p no:cacheprovider -m 'not disruptive' ${tests[*]} $*; a=\$?;
pytest -v -p no:cacheprovider -m disruptive ${tests[*]} $*; b=\$?; [ \$b = 5 ] && b=0; exit \$(( a ? a : b ))"
echo "== pytest, end-to-end against a real API server, helm $(.tools/helm$CI_RUNNER_HELM/helm version --short) =="
if [[ -n "${CI_RUNNER_TEST_KUBECONFIG:-}" ]]; then
  exec bash -c "$suite"
fi
exec python -m tests.cluster run -- bash -c "$suite"
