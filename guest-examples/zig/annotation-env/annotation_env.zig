//! annotation-env: sets environment variables of a pod's containers from
//! the pod's annotations. `env.nri-wasm.io/NAME: value` sets NAME=value in
//! every container of the pod; `env.nri-wasm.io/container.CTR.NAME: value`
//! only in container CTR. Names that are not valid variable names are
//! skipped with a warning.
//!
//! Configuration: the annotation prefix (default `env.nri-wasm.io/`).

const std = @import("std");
const c = @import("bindings");

const allocator = std.heap.c_allocator;

var prefix: []const u8 = "env.nri-wasm.io/";

fn text(s: c.adjusting_string_t) []const u8 {
    if (s.len == 0) return "";
    return s.ptr[0..s.len];
}

fn log(level: c_int, line: []const u8) void {
    var message = c.adjusting_string_t{ .ptr = @constCast(line.ptr), .len = line.len };
    c.nri_plugin_log_log(@intCast(level), &message);
}

fn fail(err: [*c]c.adjusting_string_t, message: []const u8) bool {
    c.adjusting_string_dup_n(err, message.ptr, message.len);
    return false;
}

/// A valid environment variable name: a letter or _, then letters,
/// digits or _.
fn validName(name: []const u8) bool {
    if (name.len == 0 or std.ascii.isDigit(name[0])) return false;
    for (name) |ch| {
        if (!std.ascii.isAlphanumeric(ch) and ch != '_') return false;
    }
    return true;
}

/// The variable an annotation key sets in container `container`, if any.
fn variableFor(key: []const u8, container: []const u8) ?[]const u8 {
    if (!std.mem.startsWith(u8, key, prefix)) return null;
    const rest = key[prefix.len..];
    const scoped = "container.";
    if (!std.mem.startsWith(u8, rest, scoped)) return rest;
    const target = rest[scoped.len..];
    if (target.len <= container.len or !std.mem.startsWith(u8, target, container)) return null;
    if (target[container.len] != '.') return null;
    return target[container.len + 1 ..];
}

export fn exports_nri_plugin_lifecycle_configure(
    config: [*c]c.adjusting_string_t,
    runtime: [*c]c.nri_plugin_types_runtime_info_t,
    ret: [*c]c.nri_plugin_types_events_t,
    err: [*c]c.adjusting_string_t,
) bool {
    defer c.adjusting_string_free(config);
    defer c.nri_plugin_types_runtime_info_free(runtime);
    const wanted = std.mem.trim(u8, text(config.*), " \t\n");
    if (wanted.len > 0) {
        if (std.mem.indexOfAny(u8, wanted, " \t\n") != null) {
            return fail(err, "the configuration is one annotation prefix, without spaces");
        }
        prefix = allocator.dupe(u8, wanted) catch return fail(err, "out of memory");
    }
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
    defer c.nri_plugin_types_pod_sandbox_free(pod);
    defer c.nri_plugin_types_container_free(container);
    ret.* = .{};
    const name = text(container.*.name);
    const annotations = pod.*.annotations;
    var env = std.ArrayList(c.nri_plugin_types_key_value_t).empty;
    for (0..annotations.len) |i| {
        const entry = annotations.ptr[i];
        const variable = variableFor(text(entry.f0), name) orelse continue;
        if (!validName(variable)) {
            var line: [256]u8 = undefined;
            const warning = std.fmt.bufPrint(&line, "skipping {s}: not a variable name", .{text(entry.f0)}) catch "skipping an invalid variable name";
            log(c.NRI_PLUGIN_LOG_LEVEL_WARN, warning);
            continue;
        }
        var pair = c.nri_plugin_types_key_value_t{};
        c.adjusting_string_dup_n(&pair.f0, variable.ptr, variable.len);
        c.adjusting_string_dup_n(&pair.f1, entry.f1.ptr, entry.f1.len);
        env.append(allocator, pair) catch return fail(err, "out of memory");
    }
    if (env.items.len > 0) {
        const items = env.toOwnedSlice(allocator) catch return fail(err, "out of memory");
        ret.*.adjust.is_some = true;
        ret.*.adjust.val.env = .{ .ptr = items.ptr, .len = items.len };
    }
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
