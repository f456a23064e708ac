"""resource-policy: rejects containers that would run without a memory
limit, or above a CPU share cap, in the namespaces the policy covers. It
judges the container as every NRI plugin left it: the limits asked for,
changed by the merged adjustment.

Configuration (JSON):
  {"namespaces": ["prod-*"], "require-memory-limit": true, "max-cpu-shares": 4096}
Namespaces are shell patterns; all keys are optional (default: every
namespace, a memory limit required, no CPU cap).
"""

import fnmatch
import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import log, types

# The policy in force, set by configure.
policy = {"namespaces": ["*"], "require-memory-limit": True, "max-cpu-shares": None}


def parse_policy(text):
    settings = json.loads(text) if text.strip() else {}
    if not isinstance(settings, dict):
        raise ValueError("the configuration is a JSON object")
    unknown = set(settings) - set(policy)
    if unknown:
        raise ValueError(f"unknown setting(s) {', '.join(sorted(unknown))}")
    merged = dict(policy, **settings)
    if not all(isinstance(n, str) for n in merged["namespaces"]):
        raise ValueError("namespaces are a list of patterns")
    return merged


def final_resources(request):
    """The memory limit and CPU shares the container would run with."""
    limit, shares = None, None
    linux = request.container.linux
    if linux is not None and linux.resources is not None:
        limit, shares = limits_of(linux.resources)
    adjust = request.adjust
    if adjust is not None and adjust.linux is not None and adjust.linux.resources is not None:
        adjusted_limit, adjusted_shares = limits_of(adjust.linux.resources)
        limit = adjusted_limit if adjusted_limit is not None else limit
        shares = adjusted_shares if adjusted_shares is not None else shares
    return limit, shares


def limits_of(resources):
    limit = resources.memory.limit if resources.memory is not None else None
    shares = resources.cpu.shares if resources.cpu is not None else None
    return limit, shares


def violations(request):
    namespace = request.pod.namespace
    if not any(fnmatch.fnmatchcase(namespace, p) for p in policy["namespaces"]):
        return []
    limit, shares = final_resources(request)
    found = []
    if policy["require-memory-limit"] and not limit:
        found.append("has no memory limit")
    cap = policy["max-cpu-shares"]
    if cap is not None and shares is not None and shares > cap:
        found.append(f"asks for {shares} CPU shares, above {cap}")
    return found


class Lifecycle(exports.Lifecycle):
    def configure(self, config, runtime):
        global policy
        try:
            policy = parse_policy(config)
        except (ValueError, TypeError, KeyError) as error:
            raise Err(f"invalid policy: {error}")
        log.log(log.Level.INFO, f"resource policy for namespaces {policy['namespaces']}")
        return types.Events.VALIDATE_CONTAINER_ADJUSTMENT

    def synchronize(self, pods, containers):
        return []


class Validator(exports.Validator):
    def validate_container_adjustment(self, request):
        found = violations(request)
        if found:
            pod, name = request.pod, request.container.name
            raise Err(f"container {pod.namespace}/{pod.name}/{name} {' and '.join(found)}")
