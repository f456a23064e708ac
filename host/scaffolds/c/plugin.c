// {{name}}: sets TEAM in the environment of every new container from its
// pod's `team` label. Containers of pods without the label are left alone.
//
// adjusting.h is generated from wit/ by `nri-wasm build` (wit-bindgen's C
// generator): arguments belong to the callee, which frees them; what it
// returns is malloc'd and freed by the bindings after the call.

#include <stdlib.h>
#include <string.h>

#include "adjusting.h"

static const char LABEL[] = "team";
static const char ENV[] = "TEAM";

static void log_line(nri_plugin_log_level_t level, const char *text) {
  adjusting_string_t message;
  adjusting_string_set(&message, text);
  nri_plugin_log_log(level, &message);
}

static bool is(const adjusting_string_t *s, const char *text) {
  size_t len = strlen(text);
  return s->len == len && memcmp(s->ptr, text, len) == 0;
}

// The value of the label `key` of `pod`, or NULL.
static const adjusting_string_t *label(const nri_plugin_types_pod_sandbox_t *pod, const char *key) {
  for (size_t i = 0; i < pod->labels.len; i++) {
    if (is(&pod->labels.ptr[i].f0, key)) {
      return &pod->labels.ptr[i].f1;
    }
  }
  return NULL;
}

bool exports_nri_plugin_lifecycle_configure(adjusting_string_t *config,
                                            nri_plugin_types_runtime_info_t *runtime,
                                            nri_plugin_types_events_t *ret,
                                            adjusting_string_t *err) {
  adjusting_string_free(config);
  nri_plugin_types_runtime_info_free(runtime);
  log_line(NRI_PLUGIN_LOG_LEVEL_INFO, "setting TEAM from the pod label team");
  *ret = NRI_PLUGIN_TYPES_EVENTS_CREATE_CONTAINER;
  return true;
}

bool exports_nri_plugin_lifecycle_synchronize(exports_nri_plugin_lifecycle_list_pod_sandbox_t *pods,
                                              exports_nri_plugin_lifecycle_list_container_t *containers,
                                              exports_nri_plugin_lifecycle_list_container_update_t *ret,
                                              adjusting_string_t *err) {
  memset(ret, 0, sizeof(*ret));
  exports_nri_plugin_lifecycle_list_pod_sandbox_free(pods);
  exports_nri_plugin_lifecycle_list_container_free(containers);
  return true;
}

bool exports_nri_plugin_adjuster_create_container(nri_plugin_types_pod_sandbox_t *pod,
                                                  nri_plugin_types_container_t *container,
                                                  nri_plugin_types_create_reply_t *ret,
                                                  adjusting_string_t *err) {
  memset(ret, 0, sizeof(*ret));
  const adjusting_string_t *team = label(pod, LABEL);
  if (team != NULL) {
    nri_plugin_types_list_key_value_t *env = &ret->adjust.val.env;
    ret->adjust.is_some = true;
    env->ptr = calloc(1, sizeof(*env->ptr));
    env->len = 1;
    adjusting_string_dup(&env->ptr[0].f0, ENV);
    adjusting_string_dup_n(&env->ptr[0].f1, (const char *)team->ptr, team->len);
  }
  nri_plugin_types_pod_sandbox_free(pod);
  nri_plugin_types_container_free(container);
  return true;
}

bool exports_nri_plugin_adjuster_update_container(nri_plugin_types_pod_sandbox_t *pod,
                                                  nri_plugin_types_container_t *container,
                                                  nri_plugin_types_linux_resources_t *maybe_resources,
                                                  nri_plugin_types_update_reply_t *ret,
                                                  adjusting_string_t *err) {
  memset(ret, 0, sizeof(*ret));
  if (maybe_resources != NULL) {
    nri_plugin_types_linux_resources_free(maybe_resources);
  }
  nri_plugin_types_pod_sandbox_free(pod);
  nri_plugin_types_container_free(container);
  return true;
}

bool exports_nri_plugin_adjuster_stop_container(nri_plugin_types_pod_sandbox_t *pod,
                                                nri_plugin_types_container_t *container,
                                                nri_plugin_types_update_reply_t *ret,
                                                adjusting_string_t *err) {
  memset(ret, 0, sizeof(*ret));
  nri_plugin_types_pod_sandbox_free(pod);
  nri_plugin_types_container_free(container);
  return true;
}
