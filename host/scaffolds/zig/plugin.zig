//! {{name}}: sets TEAM in the environment of every new container from its
//! pod's `team` label. Containers of pods without the label are left
//! alone.
//!
//! `bindings` is wit-bindgen's C header of wit/, translated by `zig
//! translate-c` (`nri-wasm build` does both): arguments belong to the
//! callee, which frees them; what it returns is malloc'd and freed by the
//! bindings after the call.

const std = @import("std");
const c = @import("bindings");

const label = "team";
const env_name = "TEAM";

fn text(s: c.adjusting_string_t) []const u8 {
    if (s.len == 0) return "";
    return s.ptr[0..s.len];
}

fn log(level: c_int, line: []const u8) void {
    var message = c.adjusting_string_t{ .ptr = @constCast(line.ptr), .len = line.len };
    c.nri_plugin_log_log(@intCast(level), &message);
}

/// The value of the label `key` of `pod`, or null.
fn labelOf(pod: c.nri_plugin_types_pod_sandbox_t, key: []const u8) ?c.adjusting_string_t {
    for (0..pod.labels.len) |i| {
        const entry = pod.labels.ptr[i];
        if (std.mem.eql(u8, text(entry.f0), key)) return entry.f1;
    }
    return null;
}

export fn exports_nri_plugin_lifecycle_configure(
    config: [*c]c.adjusting_string_t,
    runtime: [*c]c.nri_plugin_types_runtime_info_t,
    ret: [*c]c.nri_plugin_types_events_t,
    err: [*c]c.adjusting_string_t,
) bool {
    _ = err;
    c.adjusting_string_free(config);
    c.nri_plugin_types_runtime_info_free(runtime);
    log(c.NRI_PLUGIN_LOG_LEVEL_INFO, "setting " ++ env_name ++ " from the pod label " ++ label);
    ret.* = c.NRI_PLUGIN_TYPES_EVENTS_CREATE_CONTAINER;
    return true;
}

export fn exports_nri_plugin_lifecycle_synchronize(
    pods: [*c]c.exports_nri_plugin_lifecycle_list_pod_sandbox_t,
    containers: [*c]c.exports_nri_plugin_lifecycle_list_container_t,
    ret: [*c]c.exports_nri_plugin_lifecycle_list_container_update_t,
    err: [*c]c.adjusting_string_t,
) bool {
    _ = err;
    c.exports_nri_plugin_lifecycle_list_pod_sandbox_free(pods);
    c.exports_nri_plugin_lifecycle_list_container_free(containers);
    ret.* = .{};
    return true;
}

export fn exports_nri_plugin_adjuster_create_container(
    pod: [*c]c.nri_plugin_types_pod_sandbox_t,
    container: [*c]c.nri_plugin_types_container_t,
    ret: [*c]c.nri_plugin_types_create_reply_t,
    err: [*c]c.adjusting_string_t,
) bool {
    _ = err;
    defer c.nri_plugin_types_pod_sandbox_free(pod);
    defer c.nri_plugin_types_container_free(container);
    ret.* = .{};
    const team = labelOf(pod.*, label) orelse return true;
    const env: [*c]c.nri_plugin_types_key_value_t = @ptrCast(@alignCast(std.c.malloc(@sizeOf(c.nri_plugin_types_key_value_t)) orelse return true));
    c.adjusting_string_dup_n(&env[0].f0, env_name, env_name.len);
    c.adjusting_string_dup_n(&env[0].f1, team.ptr, team.len);
    ret.*.adjust.is_some = true;
    ret.*.adjust.val.env = .{ .ptr = env, .len = 1 };
    return true;
}

export fn exports_nri_plugin_adjuster_update_container(
    pod: [*c]c.nri_plugin_types_pod_sandbox_t,
    container: [*c]c.nri_plugin_types_container_t,
    resources: [*c]c.nri_plugin_types_linux_resources_t,
    ret: [*c]c.nri_plugin_types_update_reply_t,
    err: [*c]c.adjusting_string_t,
) bool {
    _ = err;
    c.nri_plugin_types_pod_sandbox_free(pod);
    c.nri_plugin_types_container_free(container);
    if (resources != null) c.nri_plugin_types_linux_resources_free(resources);
    ret.* = .{};
    return true;
}

export fn exports_nri_plugin_adjuster_stop_container(
    pod: [*c]c.nri_plugin_types_pod_sandbox_t,
    container: [*c]c.nri_plugin_types_container_t,
    ret: [*c]c.nri_plugin_types_update_reply_t,
    err: [*c]c.adjusting_string_t,
) bool {
    _ = err;
    c.nri_plugin_types_pod_sandbox_free(pod);
    c.nri_plugin_types_container_free(container);
    ret.* = .{};
    return true;
}
