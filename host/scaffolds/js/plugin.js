// {{name}}: sets TEAM in the environment of every new container from its
// pod's `team` label. Containers of pods without the label are left alone.
//
// The module exports one object per interface its world exports, named
// after it in lowerCamelCase (wit/plugin.wit). Records are plain objects;
// key-value pairs are [key, value] arrays; s64 and u64 are BigInt.

import { log } from 'nri:plugin/log@0.1.0';

const LABEL = 'team';
const ENV = 'TEAM';

function label(pod, key) {
  const found = pod.labels.find(([k]) => k === key);
  return found === undefined ? undefined : found[1];
}

function setEnv(name, value) {
  return {
    adjust: {
      annotations: [],
      mounts: [],
      env: [[name, value]],
      rlimits: [],
      cdiDevices: [],
      args: [],
    },
    updates: [],
    evictions: [],
  };
}

export const lifecycle = {
  configure(config, runtime) {
    log('info', `setting ${ENV} from the pod label ${LABEL}`);
    return { createContainer: true };
  },
  synchronize(pods, containers) {
    return [];
  },
};

export const adjuster = {
  createContainer(pod, container) {
    const team = label(pod, LABEL);
    if (team === undefined) {
      return { updates: [], evictions: [] };
    }
    return setEnv(ENV, team);
  },
  updateContainer(pod, container, resources) {
    return { updates: [], evictions: [] };
  },
  stopContainer(pod, container) {
    return { updates: [], evictions: [] };
  },
};
