#!/usr/bin/env bash
# The project's one test command: installs the dev dependencies and the pinned tools, runs the
# linters and the whole test suite under helm 3, then every helm-touching test under helm 4, then
# the end-to-end suite against a real control plane built from source (scripts/e2e-real.sh:
# everything under helm 4, the tests only reality answers under helm 3 too).
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -x .venv/bin/python ]] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
.venv/bin/python scripts/install_tools.py
export PATH="$PWD/.venv/bin:$PATH"
ruff check .
ruff format --check .
mypy
echo "== pytest, all tests, helm $(.tools/helm3/helm version --short) =="
# The end-to-end tests write down what the runner used; every grant must have been used.
usage="$(mktemp -d)"
trap 'rm -rf "$usage"' EXIT
CI_RUNNER_HELM=3 CI_RUNNER_RBAC_USAGE="$usage" pytest -n 2 -v "$@"
if [[ $# -eq 0 ]]; then  # only the whole suite can tell that a grant is never used
  echo "== RBAC: every grant in the CICD namespace is used =="
  PATH="$PWD/.tools/helm3:$PWD/.tools/bin:$PATH" python -m tests.support.rbac_exact "$usage"
fi
echo "== pytest, helm-touching tests, helm $(.tools/helm4/helm version --short) =="
CI_RUNNER_HELM=4 pytest -n 2 -v -m helm "$@"
if [[ $# -eq 0 ]]; then
  bash scripts/e2e-real.sh
  CI_RUNNER_HELM=3 E2E_PATHS="tests/e2e/real" bash scripts/e2e-real.sh
fi
