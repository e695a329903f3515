"""What the kubelet checks before it starts a Pod's containers: the Secrets and ConfigMaps its
volumes and environment reference. Pure functions over the Pod and a lookup of those objects.

The kubelet mounts volumes first (a missing Secret there: FailedMount Events, the Pod stays
ContainerCreating), pulls images, then builds each container's configuration (a missing Secret
or key in ``env``/``envFrom``: the container waits with CreateContainerConfigError). The
messages are the kubelet's own, cited at each.
"""

from __future__ import annotations

from collections.abc import Callable

from .store import Obj

Lookup = Callable[[str, str], Obj | None]
"""(resource, name) -> the ``secrets`` or ``configmaps`` object of that name in the Pod's
namespace, or None."""


def _not_found(resource: str, name: str) -> str:
    # The kubelet's Secret and ConfigMap managers answer NotFound for the group resources
    # "secret" and "configmap" (pkg/kubelet/secret/secret_manager.go, configmap_manager.go:
    # corev1.Resource("secret")), hence `secret "x" not found`, not the API's `secrets "x"`.
    return f'{resource.removesuffix("s")} "{name}" not found'


def _keys(obj: Obj) -> set[str]:
    return set(obj.get("data") or {}) | set(obj.get("binaryData") or {})


def _volume_error(volume: Obj, lookup: Lookup) -> str | None:
    """Why a secret or configMap volume cannot be set up (pkg/volume/secret/secret.go and
    pkg/volume/configmap/configmap.go, ``SetUpAt`` and ``MakePayload``), or None."""
    if "secret" in volume:
        source, resource = volume["secret"] or {}, "secrets"
        name, missing_key = source.get("secretName", ""), "references non-existent secret key"
    elif "configMap" in volume:
        source, resource = volume["configMap"] or {}, "configmaps"
        name, missing_key = source.get("name", ""), "configmap references non-existent config key"
    else:
        return None
    if source.get("optional"):
        return None
    obj = lookup(resource, name)
    if obj is None:
        return _not_found(resource, name)
    for item in source.get("items") or []:
        if item.get("key") not in _keys(obj):
            return f"{missing_key}: {item.get('key')}"
    return None


def mount_errors(pod: Obj, lookup: Lookup) -> list[tuple[str, str]]:
    """(volume name, FailedMount message) for each volume that cannot be mounted. The message
    is the volume manager's simple error, ``MountVolume.SetUp failed for volume "v" : <error>``
    (pkg/volume/util/operationexecutor: ``generateVolumeMsg`` joins prefix, quoted volume name
    and ``errSuffix``, ": <error>", with spaces)."""
    errors = []
    for volume in pod["spec"].get("volumes") or []:
        error = _volume_error(volume, lookup)
        if error is not None:
            name = volume.get("name", "")
            errors.append((name, f'MountVolume.SetUp failed for volume "{name}" : {error}'))
    return errors


def _env_from_error(source: Obj, lookup: Lookup) -> str | None:
    for key, resource in (("configMapRef", "configmaps"), ("secretRef", "secrets")):
        ref = source.get(key)
        if ref and not ref.get("optional") and lookup(resource, ref.get("name", "")) is None:
            return _not_found(resource, ref.get("name", ""))
    return None


def _env_error(value_from: Obj, namespace: str, lookup: Lookup) -> str | None:
    for key, resource, kind in (
        ("configMapKeyRef", "configmaps", "ConfigMap"),
        ("secretKeyRef", "secrets", "Secret"),
    ):
        ref = value_from.get(key)
        if not ref or ref.get("optional"):
            continue
        name = ref.get("name", "")
        obj = lookup(resource, name)
        if obj is None:
            return _not_found(resource, name)
        if ref.get("key") not in set(obj.get("data") or {}):
            return f"couldn't find key {ref.get('key')} in {kind} {namespace}/{name}"
    return None


def config_error(container: Obj, namespace: str, lookup: Lookup) -> str | None:
    """Why the kubelet cannot build this container's environment, as the waiting message of
    CreateContainerConfigError (pkg/kubelet/kubelet_pods.go ``makeEnvironmentVariables``:
    ``envFrom`` first, then ``env``; a missing key is "couldn't find key K in Secret NS/NAME"),
    or None. ``optional`` references are skipped, as there."""
    for source in container.get("envFrom") or []:
        error = _env_from_error(source, lookup)
        if error is not None:
            return error
    for var in container.get("env") or []:
        error = _env_error(var.get("valueFrom") or {}, namespace, lookup)
        if error is not None:
            return error
    return None


def config_errors(pod: Obj, lookup: Lookup) -> dict[str, str]:
    """Per container name, why its configuration cannot be built (only those that fail). The
    init containers come first and alone: the kubelet builds a main container's
    configuration only once they have all run, so a failing init container is the only one
    reported (pkg/kubelet/kuberuntime ``computeInitContainerActions`` starts the next init
    container and nothing else)."""
    namespace = pod["metadata"].get("namespace", "")
    for container in pod["spec"].get("initContainers") or []:
        error = config_error(container, namespace, lookup)
        if error is not None:
            return {container.get("name", ""): error}
    errors = {}
    for container in pod["spec"].get("containers") or []:
        error = config_error(container, namespace, lookup)
        if error is not None:
            errors[container.get("name", "")] = error
    return errors
