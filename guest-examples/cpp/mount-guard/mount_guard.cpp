// mount-guard: rejects containers that would mount sensitive host paths,
// whether the pod asked for the mount or a plugin added it. Each rule
// covers a host path and everything below it (the rule "/" covers only
// the host's root itself):
//
//   deny /var/run/docker.sock     never mounted
//   read-only /etc                mounted only with the "ro" option
//
// Configuration: one rule per line; empty lines and lines starting with #
// are skipped. Without configuration, the rules below apply.

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "validating_cpp.h"

namespace types = nri::plugin::types;
namespace log_ = nri::plugin::log;

namespace {

enum class Rule { Deny, ReadOnly };

struct PathRule {
  Rule rule;
  std::string path;
};

constexpr std::string_view kDefaultRules =
    "deny /\n"
    "deny /var/run/docker.sock\n"
    "deny /run/containerd\n"
    "deny /var/run/nri\n"
    "read-only /etc\n"
    "read-only /proc\n"
    "read-only /sys\n";

std::vector<PathRule> rules;

std::string_view trim(std::string_view text) {
  auto start = text.find_first_not_of(" \t\r");
  if (start == std::string_view::npos) return {};
  auto end = text.find_last_not_of(" \t\r");
  return text.substr(start, end - start + 1);
}

// Parses the rules; the error names the line.
std::expected<std::vector<PathRule>, std::string> parse_rules(std::string_view text) {
  std::vector<PathRule> parsed;
  size_t number = 0;
  while (!text.empty()) {
    auto newline = text.find('\n');
    auto line = trim(text.substr(0, newline));
    text = newline == std::string_view::npos ? std::string_view{} : text.substr(newline + 1);
    number++;
    if (line.empty() || line.front() == '#') continue;
    auto space = line.find(' ');
    auto kind = line.substr(0, space);
    auto path = space == std::string_view::npos ? std::string_view{} : trim(line.substr(space));
    if ((kind != "deny" && kind != "read-only") || path.empty() || path.front() != '/') {
      return std::unexpected("line " + std::to_string(number) + ": \"" + std::string(line) +
                             "\" is not \"deny PATH\" or \"read-only PATH\"");
    }
    if (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
    parsed.push_back({kind == "deny" ? Rule::Deny : Rule::ReadOnly, std::string(path)});
  }
  return parsed;
}

bool covers(std::string_view rule, std::string_view source) {
  if (rule == "/") return source == "/";
  return source == rule || (source.starts_with(rule) && source[rule.size()] == '/');
}

bool read_only(const types::Mount &mount) {
  return std::ranges::any_of(mount.options.get_const_view(),
                             [](const wit::string &o) { return o.get_view() == "ro"; });
}

// Why the mount breaks a rule, or an empty string.
std::string violation(const types::Mount &mount) {
  auto source = mount.source.get_view();
  for (const auto &rule : rules) {
    if (!covers(rule.path, source)) continue;
    if (rule.rule == Rule::Deny) {
      return "mounts host path " + std::string(source) + " (denied: " + rule.path + ")";
    }
    if (!read_only(mount)) {
      return "mounts host path " + std::string(source) + " read-write (" + rule.path + " is read-only)";
    }
  }
  return {};
}

}  // namespace

namespace exports::nri::plugin {

std::expected<types::Events, wit::string> lifecycle::Configure(wit::string config, types::RuntimeInfo) {
  auto text = config.get_view();
  auto parsed = parse_rules(trim(text).empty() ? kDefaultRules : text);
  if (!parsed) return std::unexpected(wit::string::from_view(parsed.error()));
  rules = std::move(*parsed);
  log_::Log(log_::Level::kInfo, std::to_string(rules.size()) + " mount rules");
  return types::Events::kValidateContainerAdjustment;
}

std::expected<wit::vector<types::ContainerUpdate>, wit::string> lifecycle::Synchronize(
    wit::vector<types::PodSandbox>, wit::vector<types::Container>) {
  return wit::vector<types::ContainerUpdate>::allocate(0);
}

std::expected<void, wit::string> validator::ValidateContainerAdjustment(types::ValidateRequest request) {
  std::vector<const types::Mount *> mounts;
  for (const auto &m : request.container.mounts.get_const_view()) mounts.push_back(&m);
  if (request.adjust) {
    for (const auto &m : request.adjust->mounts.get_const_view()) mounts.push_back(&m);
  }
  for (const auto *mount : mounts) {
    auto why = violation(*mount);
    if (!why.empty()) {
      auto name = std::string(request.pod.namespace_.get_view()) + "/" +
                  std::string(request.pod.name.get_view()) + "/" +
                  std::string(request.container.name.get_view());
      return std::unexpected(wit::string::from_view("container " + name + " " + why));
    }
  }
  return {};
}

}  // namespace exports::nri::plugin
