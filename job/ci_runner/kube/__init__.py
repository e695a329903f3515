"""Kubernetes: the client, the state ConfigMap, the Lease, Events, the build Job and its watch."""
