// memory-clamp: keeps container memory limits within what the node
// allows. A container created without a limit gets the default one; a
// limit above the maximum, asked at creation or in an update, is lowered
// to the maximum; at start (synchronize) running containers above it are
// updated.
//
// Configuration: "max=<size> default=<size>", sizes in bytes or with a
// Ki, Mi or Gi suffix; either may be left out.

// No stdio: without it the component imports nothing but the host's log.
#include <stdlib.h>
#include <string.h>

#include "adjusting.h"

typedef nri_plugin_types_container_t container_t;
typedef nri_plugin_types_linux_resources_t resources_t;

static int64_t max_limit;     // 0: no maximum
static int64_t default_limit; // 0: no default

static void log_line(nri_plugin_log_level_t level, const char *text) {
  adjusting_string_t message;
  adjusting_string_set(&message, text);
  nri_plugin_log_log(level, &message);
}

// A bounded text buffer, in place of snprintf.
typedef struct {
  char text[160];
  size_t len;
} line_t;

static void put(line_t *line, const char *text, size_t len) {
  size_t room = sizeof(line->text) - 1 - line->len;
  if (len > room) len = room;
  memcpy(line->text + line->len, text, len);
  line->len += len;
  line->text[line->len] = 0;
}

static void put_str(line_t *line, const char *text) { put(line, text, strlen(text)); }

static void put_int(line_t *line, int64_t value) {
  char digits[24];
  size_t n = sizeof(digits);
  do {
    digits[--n] = (char)('0' + value % 10);
    value /= 10;
  } while (value > 0 && n > 0);
  put(line, digits + n, sizeof(digits) - n);
}

// Parses "<digits>[Ki|Mi|Gi]" of length len; -1 if it is not a size.
static int64_t parse_size(const char *text, size_t len) {
  int64_t value = 0;
  size_t i = 0;
  for (; i < len && text[i] >= '0' && text[i] <= '9'; i++) {
    value = value * 10 + (text[i] - '0');
  }
  if (i == 0) return -1;
  const char *unit = text + i;
  size_t unit_len = len - i;
  if (unit_len == 0) return value;
  if (unit_len != 2 || unit[1] != 'i') return -1;
  switch (unit[0]) {
    case 'K': return value << 10;
    case 'M': return value << 20;
    case 'G': return value << 30;
    default: return -1;
  }
}

// Reads "key=size" words; false, with the offending word in bad, if one
// is not.
static bool parse_config(const char *text, size_t len, line_t *bad) {
  size_t i = 0;
  while (i < len) {
    while (i < len && (text[i] == ' ' || text[i] == '\n' || text[i] == '\t')) i++;
    size_t start = i;
    while (i < len && text[i] != ' ' && text[i] != '\n' && text[i] != '\t') i++;
    if (i == start) break;
    const char *word = text + start;
    size_t word_len = i - start;
    const char *eq = memchr(word, '=', word_len);
    int64_t size = eq ? parse_size(eq + 1, word_len - (eq + 1 - word)) : -1;
    size_t key_len = eq ? (size_t)(eq - word) : 0;
    if (size >= 0 && key_len == 3 && memcmp(word, "max", 3) == 0) {
      max_limit = size;
    } else if (size >= 0 && key_len == 7 && memcmp(word, "default", 7) == 0) {
      default_limit = size;
    } else {
      put(bad, word, word_len);
      return false;
    }
  }
  return true;
}

// The memory limit of resources, or 0 when it has none.
static int64_t limit_of(const nri_plugin_types_option_linux_resources_t *resources) {
  if (!resources->is_some || !resources->val.memory.is_some) return 0;
  const adjusting_option_s64_t *limit = &resources->val.memory.val.limit;
  return limit->is_some ? limit->val : 0;
}

static int64_t container_limit(const container_t *c) {
  return c->linux.is_some ? limit_of(&c->linux.val.resources) : 0;
}

// What a limit should be; 0 when it is fine as it is.
static int64_t clamped(int64_t limit) {
  if (limit == 0) return default_limit;
  if (max_limit > 0 && limit > max_limit) return max_limit;
  return 0;
}

static void set_limit(nri_plugin_types_option_linux_resources_t *resources, int64_t limit) {
  memset(resources, 0, sizeof(*resources));
  resources->is_some = true;
  resources->val.memory.is_some = true;
  resources->val.memory.val.limit.is_some = true;
  resources->val.memory.val.limit.val = limit;
}

static void fail(adjusting_string_t *err, const char *message) {
  adjusting_string_dup(err, message);
}

bool exports_nri_plugin_lifecycle_configure(adjusting_string_t *config,
                                            nri_plugin_types_runtime_info_t *runtime,
                                            nri_plugin_types_events_t *ret,
                                            adjusting_string_t *err) {
  line_t bad = {0};
  bool ok = parse_config((const char *)config->ptr, config->len, &bad);
  adjusting_string_free(config);
  nri_plugin_types_runtime_info_free(runtime);
  if (!ok) {
    line_t message = {0};
    put_str(&message, "invalid setting \"");
    put(&message, bad.text, bad.len);
    put_str(&message, "\": use max=<size> default=<size>");
    fail(err, message.text);
    return false;
  }
  line_t line = {0};
  put_str(&line, "memory limits: max ");
  put_int(&line, max_limit);
  put_str(&line, ", default ");
  put_int(&line, default_limit);
  put_str(&line, " bytes");
  log_line(NRI_PLUGIN_LOG_LEVEL_INFO, line.text);
  *ret = NRI_PLUGIN_TYPES_EVENTS_CREATE_CONTAINER | NRI_PLUGIN_TYPES_EVENTS_UPDATE_CONTAINER;
  return true;
}

// Appends to the list (*updates, *len) an update of container id to limit.
static void push_update(nri_plugin_types_container_update_t **updates, size_t *len,
                        const adjusting_string_t *id, int64_t limit) {
  *updates = realloc(*updates, (*len + 1) * sizeof(**updates));
  nri_plugin_types_container_update_t *update = &(*updates)[(*len)++];
  memset(update, 0, sizeof(*update));
  adjusting_string_dup_n(&update->container_id, (const char *)id->ptr, id->len);
  set_limit(&update->resources, limit);
}

bool exports_nri_plugin_lifecycle_synchronize(exports_nri_plugin_lifecycle_list_pod_sandbox_t *pods,
                                              exports_nri_plugin_lifecycle_list_container_t *containers,
                                              exports_nri_plugin_lifecycle_list_container_update_t *ret,
                                              adjusting_string_t *err) {
  memset(ret, 0, sizeof(*ret));
  for (size_t i = 0; i < containers->len; i++) {
    const container_t *c = &containers->ptr[i];
    int64_t limit = container_limit(c);
    if (limit > 0 && max_limit > 0 && limit > max_limit) {
      push_update(&ret->ptr, &ret->len, &c->id, max_limit);
    }
  }
  exports_nri_plugin_lifecycle_list_pod_sandbox_free(pods);
  exports_nri_plugin_lifecycle_list_container_free(containers);
  return true;
}

bool exports_nri_plugin_adjuster_create_container(nri_plugin_types_pod_sandbox_t *pod, container_t *container,
                                                  nri_plugin_types_create_reply_t *ret,
                                                  adjusting_string_t *err) {
  memset(ret, 0, sizeof(*ret));
  int64_t limit = clamped(container_limit(container));
  if (limit > 0) {
    ret->adjust.is_some = true;
    ret->adjust.val.linux.is_some = true;
    set_limit(&ret->adjust.val.linux.val.resources, limit);
  }
  nri_plugin_types_pod_sandbox_free(pod);
  nri_plugin_types_container_free(container);
  return true;
}

bool exports_nri_plugin_adjuster_update_container(nri_plugin_types_pod_sandbox_t *pod, container_t *container,
                                                  resources_t *maybe_resources,
                                                  nri_plugin_types_update_reply_t *ret,
                                                  adjusting_string_t *err) {
  memset(ret, 0, sizeof(*ret));
  if (maybe_resources != NULL) {
    nri_plugin_types_option_linux_resources_t asked = {.is_some = true, .val = *maybe_resources};
    int64_t limit = limit_of(&asked);
    if (limit > 0 && max_limit > 0 && limit > max_limit) {
      push_update(&ret->updates.ptr, &ret->updates.len, &container->id, max_limit);
    }
    nri_plugin_types_linux_resources_free(maybe_resources);
  }
  nri_plugin_types_pod_sandbox_free(pod);
  nri_plugin_types_container_free(container);
  return true;
}

bool exports_nri_plugin_adjuster_stop_container(nri_plugin_types_pod_sandbox_t *pod, container_t *container,
                                                nri_plugin_types_update_reply_t *ret,
                                                adjusting_string_t *err) {
  memset(ret, 0, sizeof(*ret));
  nri_plugin_types_pod_sandbox_free(pod);
  nri_plugin_types_container_free(container);
  return true;
}
