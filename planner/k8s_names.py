"""Kubernetes' rules for names, label keys and values, as the API server applies them.

The rules are those of k8s.io/apimachinery/pkg/util/validation (`IsDNS1123Label`,
`IsDNS1123Subdomain`, `IsQualifiedName`, `IsValidLabelValue`, `IsConfigMapKey`), so that input
the API server would reject is refused when the registry is read, not when the manifests are
applied. Each function returns None for a valid value, or the reason it is invalid in words
that fit after "'<value>' is ".
"""

from __future__ import annotations

import re

DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN_MAX = 253
QUALIFIED_NAME_MAX = 63
LABEL_VALUE_MAX = 63
CONFIG_MAP_KEY_MAX = 253

_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_QUALIFIED_NAME_PART = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
_CONFIG_MAP_KEY = re.compile(r"[-._a-zA-Z0-9]+")

# Label and annotation prefixes that belong to Kubernetes itself and to the consumers of the
# manifests: the API server's node restriction keeps kubernetes.io and k8s.io for the core,
# Karpenter refuses NodePool labels under karpenter.sh and its AWS provider's domain.
RESERVED_DOMAINS = ("kubernetes.io", "k8s.io", "karpenter.sh", "karpenter.k8s.aws")


def dns1123_label_problem(value: str) -> str | None:
    """A DNS-1123 label: Namespace, Service and most object names, at most 63 characters."""
    if len(value) > DNS1123_LABEL_MAX:
        return f"longer than {DNS1123_LABEL_MAX} characters ({len(value)})"
    if not _DNS1123_LABEL.fullmatch(value):
        return ("not a DNS-1123 label: lower-case letters, digits and '-', starting and ending "
                "with a letter or digit")
    return None


def dns1035_label_problem(value: str) -> str | None:
    """A DNS-1035 label (`IsDNS1035Label`): a Service's name, at most 63 characters, starting
    with a letter."""
    problem = dns1123_label_problem(value)
    if problem is None and not value[0].isalpha():
        return "not a DNS-1035 label: it must start with a letter"
    return problem


def slashes_as_dashes(name: str) -> str:
    """An object name for a planner name with a slash in it (a lazy cache's
    `<pool>/lazy-cache`, which the slash keeps apart from every model's name)."""
    return name.replace("/", "-")


def dns1123_subdomain_problem(value: str) -> str | None:
    """A DNS-1123 subdomain: ConfigMap, NodePool and PriorityClass names, label prefixes."""
    if len(value) > DNS1123_SUBDOMAIN_MAX:
        return f"longer than {DNS1123_SUBDOMAIN_MAX} characters ({len(value)})"
    if not _DNS1123_SUBDOMAIN.fullmatch(value):
        return ("not a DNS-1123 subdomain: lower-case letters, digits, '-' and '.', each "
                "dot-separated part starting and ending with a letter or digit")
    return None


def qualified_name_problem(value: str) -> str | None:
    """A qualified name (`[prefix/]name`): label, annotation and taint keys."""
    if value.count("/") > 1:
        return "holding more than one '/'; write [prefix/]name"
    prefix, slash, name = value.rpartition("/")
    if slash:
        if not prefix:
            return "missing the prefix before '/'"
        reason = dns1123_subdomain_problem(prefix)
        if reason:
            return f"not a qualified name: its prefix '{prefix}' is {reason}"
    if not name:
        return "missing the name after '/'"
    if len(name) > QUALIFIED_NAME_MAX:
        return (f"not a qualified name: its name part is longer than {QUALIFIED_NAME_MAX} "
                f"characters ({len(name)})")
    if not _QUALIFIED_NAME_PART.fullmatch(name):
        return ("not a qualified name: letters, digits, '-', '_' and '.', starting and ending "
                "with a letter or digit, optionally after a DNS subdomain prefix and '/'")
    return None


def label_value_problem(value: str) -> str | None:
    """A label value: empty, or at most 63 letters, digits, '-', '_' and '.'."""
    if len(value) > LABEL_VALUE_MAX:
        return f"longer than {LABEL_VALUE_MAX} characters ({len(value)})"
    if value and not _QUALIFIED_NAME_PART.fullmatch(value):
        return ("not a label value: letters, digits, '-', '_' and '.', starting and ending with "
                "a letter or digit")
    return None


def config_map_key_problem(value: str) -> str | None:
    """A key of a ConfigMap's data: letters, digits, '-', '_' and '.'."""
    if len(value) > CONFIG_MAP_KEY_MAX:
        return f"longer than {CONFIG_MAP_KEY_MAX} characters ({len(value)})"
    if not _CONFIG_MAP_KEY.fullmatch(value) or value in (".", ".."):
        return "not a ConfigMap key: letters, digits, '-', '_' and '.'"
    return None


def reserved_domain(key: str) -> str | None:
    """The reserved domain a label key's prefix falls under, if any (subdomains included)."""
    prefix = key.rpartition("/")[0]
    return next((d for d in RESERVED_DOMAINS if prefix == d or prefix.endswith("." + d)), None)


def label_key_problem(key: str) -> str | None:
    """A label key the planner may set on nodes and pods: qualified, outside reserved domains."""
    reason = qualified_name_problem(key)
    if reason:
        return reason
    domain = reserved_domain(key)
    if domain:
        return f"in the reserved domain {domain}; choose a prefix of your own"
    return None
