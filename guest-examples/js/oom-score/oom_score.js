// oom-score: sets each container's OOM score adjustment from the class
// its pod is annotated with, so the kernel's OOM killer spares critical
// workloads and takes batch ones first.
//
//   metadata.annotations: { "oom.nri-wasm.io/class": "critical" }
//
// Configuration (JSON): the score of each class, -1000 to 1000:
//   {"critical": -900, "batch": 800}

import { log } from 'nri:plugin/log@0.1.0';

const ANNOTATION = 'oom.nri-wasm.io/class';
let scores = new Map();

function parseScores(text) {
  const settings = text.trim() === '' ? {} : JSON.parse(text);
  if (typeof settings !== 'object' || settings === null || Array.isArray(settings)) {
    throw 'the configuration is a JSON object of class: score';
  }
  const parsed = new Map();
  for (const [name, score] of Object.entries(settings)) {
    if (!Number.isInteger(score) || score < -1000 || score > 1000) {
      throw `the score of class ${name} must be an integer from -1000 to 1000`;
    }
    parsed.set(name, score);
  }
  return parsed;
}

function annotation(pod, key) {
  const found = pod.annotations.find(([k]) => k === key);
  return found === undefined ? undefined : found[1];
}

export const lifecycle = {
  configure(config, runtime) {
    try {
      scores = parseScores(config);
    } catch (error) {
      throw `invalid configuration: ${error}`;
    }
    log('info', `OOM score classes: ${[...scores.keys()].join(', ') || 'none'}`);
    return { createContainer: true };
  },
  synchronize(pods, containers) {
    return [];
  },
};

export const adjuster = {
  createContainer(pod, container) {
    const reply = { updates: [], evictions: [] };
    const wanted = annotation(pod, ANNOTATION);
    if (wanted === undefined) {
      return reply;
    }
    const score = scores.get(wanted);
    if (score === undefined) {
      log('warn', `pod ${pod.namespace}/${pod.name} asks for unknown OOM class ${wanted}`);
      return reply;
    }
    reply.adjust = {
      annotations: [],
      mounts: [],
      env: [],
      rlimits: [],
      cdiDevices: [],
      args: [],
      linux: {
        devices: [],
        cgroupsPath: '',
        oomScoreAdj: BigInt(score),
        namespaces: [],
        sysctl: [],
        netDevices: [],
      },
    };
    return reply;
  },
  updateContainer(pod, container, resources) {
    return { updates: [], evictions: [] };
  },
  stopContainer(pod, container) {
    return { updates: [], evictions: [] };
  },
};
