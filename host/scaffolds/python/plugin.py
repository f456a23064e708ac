"""{{name}}: sets TEAM in the environment of every new container from its
pod's `team` label. Containers of pods without the label are left alone.

The module defines one class per interface its world exports, subclassing
the protocol componentize-py generates from wit/ (`wit_world.exports`).
"""

from wit_world import exports
from wit_world.imports import log, types

LABEL = "team"
ENV = "TEAM"


def no_change():
    return types.CreateReply(adjust=None, updates=[], evictions=[])


def set_env(name, value):
    adjust = types.ContainerAdjustment(
        annotations=[],
        mounts=[],
        env=[(name, value)],
        hooks=None,
        linux=None,
        rlimits=[],
        cdi_devices=[],
        args=[],
    )
    return types.CreateReply(adjust=adjust, updates=[], evictions=[])


class Lifecycle(exports.Lifecycle):
    def configure(self, config, runtime):
        log.log(log.Level.INFO, f"setting {ENV} from the pod label {LABEL}")
        return types.Events.CREATE_CONTAINER

    def synchronize(self, pods, containers):
        return []


class Adjuster(exports.Adjuster):
    def create_container(self, pod, container):
        team = dict(pod.labels).get(LABEL)
        if team is None:
            return no_change()
        return set_env(ENV, team)

    def update_container(self, pod, container, resources):
        return types.UpdateReply(updates=[], evictions=[])

    def stop_container(self, pod, container):
        return types.UpdateReply(updates=[], evictions=[])
