"""How a setting is declared (``setting``) and parsed.

A parser takes the text given and returns the value, or raises ``ValueError("must ...")``;
``config.load`` adds the variable's name and the text, so a message reads
"MAX_RETRIES must be at least 1, got '0'". The table itself is in ``config/settings.py``.

Kaniko's flags (KANIKO_ARGS) are those of the maintained fork (github.com/osscontainertools/kaniko,
``cmd/executor/cmd/root.go``; README "Additional Flags"), which parses them with spf13/pflag:
``--name=value``, ``--name value`` and, for a few, a one-letter shorthand.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field
from typing import Any
from urllib.parse import urlsplit

REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
# A DNS-1123 label: namespaces, and helm release names (which helm caps at 53 characters).
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# A DNS-1123 subdomain: ConfigMap and Secret names.
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
# An image repository without tag or digest: registry/path, lowercase path components.
IMAGE = re.compile(r"^[A-Za-z0-9.-]+(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)+$")
# git check-ref-format, roughly: no spaces, control characters, '..', '~^:?*[\' or leading '-';
# and no '#', which separates the ref from the commit in Kaniko's git context.
_BRANCH_BAD = re.compile(r"[\x00-\x20~^:?*\[\\#]|\.\.|@\{|^-|^/|/$|\.lock$|//")
_DURATION = re.compile(r"^(?=\d)(\d+h)?(\d+m)?(\d+s)?$")


def matching(pattern: re.Pattern[str], must: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if not pattern.match(text):
            raise ValueError(must)
        return text

    return parse


def dns_label(limit: int) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if len(text) > limit or not _DNS_LABEL.match(text):
            raise ValueError(f"must be a lowercase DNS label of at most {limit} characters")
        return text

    return parse


def object_name(what: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if len(text) > 253 or not _DNS_SUBDOMAIN.match(text):
            raise ValueError(f"must be a valid {what} name")
        return text

    return parse


def positive(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise ValueError("must be a whole number") from None
    if number < 1:
        raise ValueError("must be at least 1")
    return number


def at_most(limit: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        number = positive(text)
        if number > limit:
            raise ValueError(f"must be at most {limit}")
        return number

    return parse


def boolean(text: str) -> bool:
    lowered = text.lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError("must be true or false")


def directory(text: str) -> str:
    text = text.strip("/") or "."
    if ".." in text.split("/"):
        raise ValueError("must be a relative path inside the repository")
    return text


def chart_path(text: str) -> str:
    text = text.strip("/")
    if not text or ".." in text.split("/"):
        raise ValueError("must be a relative path in the repository")
    return text


def file_path(text: str) -> str:
    if text.startswith("/") or ".." in text.split("/"):
        raise ValueError("must be a relative path inside the repository")
    return text


def branch(text: str) -> str:
    if _BRANCH_BAD.search(text):
        raise ValueError("is not a valid git branch name")
    return text


def url(text: str) -> str:
    text = text.rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ValueError("must be an http(s) URL")
    return text


# GitHub Enterprise Cloud with data residency: an enterprise's own subdomain of GHE.com, where
# git is served at SUBDOMAIN.ghe.com and the REST API at api.SUBDOMAIN.ghe.com with no path
# prefix (GitHub Docs: "Network details for GHE.com", docs.github.com/en/enterprise-cloud@latest/
# admin/data-residency/network-details-for-ghecom; the docs' variables data_residency_domain
# SUBDOMAIN.ghe.com and data_residency_api api.SUBDOMAIN.ghe.com).
_GHE_COM = re.compile(r"^(?:api\.)?(?P<sub>[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)\.ghe\.com$")


def ghe_com_subdomain(host: str) -> str | None:
    """The enterprise's subdomain when ``host`` is on GHE.com (its own host or its API's)."""
    found = _GHE_COM.match(host.lower())
    return found.group("sub") if found else None


def github_api_url(text: str) -> str:
    """An http(s) URL; on GHE.com the API root as GitHub documents it, ``https://api.SUB.ghe.com``,
    also when the enterprise's own address is given."""
    text = url(text)
    parts = urlsplit(text)
    sub = ghe_com_subdomain(parts.hostname or "")
    if sub is None:
        return text
    if parts.path not in {"", "/"}:
        raise ValueError(f"must be https://api.{sub}.ghe.com on GHE.com (its API has no path)")
    return f"https://api.{sub}.ghe.com"


# logs.MIN_SECRET, the shortest secret masked with all its forms (a test keeps them equal; config
# and logs are on one layer and do not import each other).
MIN_SECRET = 8


def credential(text: str) -> str:
    """A credential the runner masks wherever it may show: one shorter than 8 characters would
    mask ordinary words instead (and no GitHub token is that short)."""
    if len(text) < MIN_SECRET:
        raise ValueError(f"is shorter than {MIN_SECRET} characters: too short to mask reliably")
    return text


def choice(*choices: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text.lower() not in choices:
            raise ValueError("must be " + " or ".join(choices))
        return text.lower()

    return parse


def values_key(text: str) -> str:
    if any(not part for part in text.split(".")):
        raise ValueError("must be a dotted values key like image.tag")
    return text


def values_files(text: str) -> tuple[str, ...]:
    files = tuple(f.strip() for f in text.split(",") if f.strip())
    if any(f.startswith("/") or ".." in f.split("/") for f in files):
        raise ValueError("entries must be paths in the chart")
    return files


def app_id(text: str) -> str:
    # GitHub takes the numeric App ID or the App's client ID ("Iv1.…", "Iv23…") as the JWT's iss.
    if not (text.isdigit() or re.fullmatch(r"Iv[0-9A-Za-z.]+", text)):
        raise ValueError("must be the App's numeric ID or its client ID (Iv...)")
    return text


def duration(text: str) -> str:
    """A Go duration of hours, minutes and seconds (Kaniko's --cache-ttl), e.g. 168h or 1h30m."""
    if not _DURATION.match(text) or not any(c.isdigit() and c != "0" for c in text):
        raise ValueError("must be a duration like 168h or 90m")
    return text


def patterns(text: str) -> tuple[str, ...]:
    """Comma-separated glob patterns of paths in the repository."""
    found = tuple(f.strip().strip("/") for f in text.split(",") if f.strip().strip("/"))
    if any(".." in f.split("/") for f in found):
        raise ValueError("entries must be patterns of paths in the repository")
    return found


# A label selector as the API server takes it (equality-based, and key existence): ``key``,
# ``!key``, ``key=value``, ``key==value``, ``key!=value``, comma-separated. Set-based terms
# (``in``, ``notin``) are not taken: none is needed to pick a fleet's CronJobs.
_LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
_SELECTOR_TERM = re.compile(r"^(!?)([^=!]+)(?:(==|!=|=)(.*))?$")


def label_selector(text: str) -> str:
    """A comma-separated, equality-based label selector, normalised (no spaces)."""
    terms = []
    for raw in text.split(","):
        match = _SELECTOR_TERM.match(raw.strip())
        if not match:
            raise ValueError("must be a label selector such as app.kubernetes.io/component=runner")
        negated, key, operator, value = match.groups()
        key = key.strip()
        if len(key) > 316 or not _LABEL_KEY.match(key) or (negated and operator):
            raise ValueError(f"has a bad label key {key!r}")
        if operator and (len(value.strip()) > 63 or not _LABEL_VALUE.match(value.strip())):
            raise ValueError(f"has a bad label value {value.strip()!r}")
        terms.append(f"{negated}{key}{operator or ''}{(value or '').strip()}")
    return ",".join(terms)


def check_names(text: str) -> tuple[str, ...]:
    """Comma-separated names of check runs or commit-status contexts, or ``all`` alone."""
    found = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    if "all" in found and len(found) > 1:
        raise ValueError("'all' stands alone: it requires every check and status there is")
    return found


repo = matching(REPO, "must look like owner/name")
image = matching(IMAGE, "must be a registry/repository without tag or digest")
release = dns_label(53)
namespace = dns_label(63)
secret_name = object_name("Secret")
configmap_name = object_name("ConfigMap")
log_format = choice("text", "json")


# -- the build's settings --------------------------------------------------------------------------

# ghcr.io/osscontainertools/kaniko is the maintained fork of the archived GoogleContainerTools
# project; pinned so a build does not change under a user without a release of ours. v1.28.5 is
# its newest release we found (its repository's tags stop at v1.28.3 on 2026-08-13 in our
# snapshot; v1.28.4 and v1.28.5 are in public use since).
DEFAULT_KANIKO_IMAGE = "ghcr.io/osscontainertools/kaniko:v1.28.5"

# What the runner itself gives Kaniko, and the setting to use instead. pflag shorthands:
# -c --context, -f --dockerfile, -d --destination (root.go).
RUNNER_FLAGS = {
    "context": "REPO and BRANCH (the runner fetches the exact commit for Kaniko)",
    "context-sub-path": "BUILD_CONTEXT",
    "dockerfile": "DOCKERFILE",
    "destination": "IMAGE (the runner pushes <sha> and <branch>-latest)",
    "digest-file": "DEPLOY_BY_DIGEST (the runner reads the pushed digest from it)",
}
CACHE_FLAGS = {"cache": "BUILD_CACHE", "cache-repo": "CACHE_REPO", "cache-ttl": "BUILD_CACHE_TTL"}
_SHORTHANDS = {"c": "context", "f": "dockerfile", "d": "destination"}
# Build arguments the runner always passes, so that a Dockerfile can label its image.
RUNNER_BUILD_ARGS = ("CI_RUNNER_SHA", "CI_RUNNER_BRANCH")
# What BUILD_POD may set, each with the JSON type it must have.
POD_FIELDS: dict[str, type] = {
    "resources": dict,
    "nodeSelector": dict,
    "tolerations": list,
    "affinity": dict,
    "serviceAccountName": str,
    "priorityClassName": str,
    # The build pod pulls the runner's own image too (its init container): a private one needs
    # the pull Secrets the runner's pod has.
    "imagePullSecrets": list,
}
_JSON_TYPES: dict[type, str] = {dict: "object", list: "array", str: "string"}
_ARG_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def flag_name(word: str) -> str | None:
    """The long name of the Kaniko flag ``word`` sets (``-c`` is ``context``), None for a value."""
    if word.startswith("--"):
        return word[2:].split("=", 1)[0]
    if word.startswith("-") and len(word) > 1:
        return _SHORTHANDS.get(word[1], word[1])
    return None


def kaniko_args(text: str) -> tuple[str, ...]:
    """KANIKO_ARGS: split as a shell splits words; never a flag the runner sets itself."""
    try:
        words = tuple(shlex.split(text))
    except ValueError as e:  # an unclosed quote
        raise ValueError(f"must split into words as a shell would ({e})") from None
    if words and flag_name(words[0]) is None:
        raise ValueError("must start with a flag (--name=value)")
    for word in words:
        name = flag_name(word)
        if name in RUNNER_FLAGS:
            raise ValueError(f"may not set --{name}: the runner sets it; use {RUNNER_FLAGS[name]}")
    return words


def build_args(text: str) -> tuple[tuple[str, str], ...]:
    """BUILD_ARGS: comma-separated KEY=VALUE pairs (a value cannot hold a comma)."""
    pairs = []
    for item in (i.strip() for i in text.split(",")):
        if not item:
            continue
        key, equals, value = item.partition("=")
        if not equals or not _ARG_NAME.match(key):
            raise ValueError("entries must be KEY=VALUE with KEY a build argument name")
        if key in RUNNER_BUILD_ARGS:
            raise ValueError(f"may not set {key}: the runner passes it")
        pairs.append((key, value))
    return tuple(pairs)


def build_pod(text: str) -> dict[str, Any]:
    """BUILD_POD: a JSON object with only the pod fields the runner lets a user choose."""
    try:
        value = json.loads(text)
    except ValueError:
        raise ValueError("must be a JSON object") from None
    if not isinstance(value, dict):
        raise ValueError("must be a JSON object")
    for key, wanted in value.items():
        if key not in POD_FIELDS:
            allowed = ", ".join(POD_FIELDS)
            raise ValueError(f"may not set {key!r} (only {allowed})")
        if not isinstance(wanted, POD_FIELDS[key]):
            raise ValueError(f"{key} must be a JSON {_JSON_TYPES[POD_FIELDS[key]]}")
    return value


def private_key_problem(pem: str) -> str | None:
    """What is wrong with ``pem`` as a GitHub App's private key (a PEM RSA key), or None."""
    # Imported here, not at the top: cryptography costs an idle run's start-up time, and only
    # a GitHub App's key needs it.
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError):
        # The library's message can quote the key's bytes: say only what is wrong.
        return "is not a PEM private key without a passphrase (the App's .pem file, as it is)"
    if not isinstance(key, rsa.RSAPrivateKey):
        return "is not an RSA key (GitHub Apps sign with RS256)"
    return None


@dataclass(frozen=True)
class Spec:
    """How one setting is given and checked (the metadata of its dataclass field)."""

    env: str
    """Environment variable (the names of the earlier loop-based runner)."""
    option: str
    """Command-line option; a ``bool`` setting also gets ``--no-...``."""
    parse: Callable[[str], Any]
    help: str
    metavar: str
    """The type shown in ``--help`` (INTEGER, BOOLEAN, TEXT, ...)."""
    shown_default: str | None
    """The default as the help and the README show it; None: no default."""
    required: bool = False
    secret: bool = False
    """Never echoed: masked in logs and messages."""

    @property
    def is_flag(self) -> bool:
        """A true/false setting: ``--x/--no-x`` on the command line."""
        return self.parse is boolean


def setting(
    env: str,
    help: str,
    *,
    default: Any = MISSING,
    parse: Callable[[str], Any] = str,
    metavar: str = "TEXT",
    option: str | None = None,
    shown: str | None = None,
    secret: bool = False,
) -> Any:
    """One row of the settings table, declared as a dataclass field.

    No ``default`` makes the setting required. ``shown`` replaces the printed default when the
    real one is derived from other settings (see ``_derived``).
    """
    required = default is MISSING
    if shown is None and not required and default is not None:
        if isinstance(default, tuple):
            shown = ",".join(default) or None
        else:
            shown = str(default).lower() if isinstance(default, bool) else str(default)
    spec = Spec(
        env=env,
        option=option or "--" + env.lower().replace("_", "-"),
        parse=parse,
        help=help,
        metavar=metavar,
        shown_default=shown,
        required=required,
        secret=secret,
    )
    # A secret stays out of repr(settings), so no traceback or debug line can show it.
    if required:
        return field(metadata={"setting": spec}, repr=not secret)
    return field(default=default, metadata={"setting": spec}, repr=not secret)
