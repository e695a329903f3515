"""Shipping tests: the chart, the manifests, the Dockerfile, RBAC and a checkov scan."""
