// {{name}}: sets TEAM in the environment of every new container from its
// pod's `team` label. Containers of pods without the label are left alone.
//
// adjusting_cpp.h is generated from wit/ by `nri-wasm build` (wit-bindgen's
// C++ generator, C++23): each exported function of the world is one to
// define here, in namespace exports::nri::plugin.

#include <optional>
#include <string_view>
#include <tuple>

#include "adjusting_cpp.h"

namespace types = nri::plugin::types;
namespace log_ = nri::plugin::log;

namespace {

constexpr std::string_view kLabel = "team";
constexpr std::string_view kEnv = "TEAM";

// The value of the label `key` of `pod`, if it has one.
std::optional<std::string_view> label(const types::PodSandbox &pod, std::string_view key) {
  for (const auto &[k, v] : pod.labels.get_const_view()) {
    if (k.get_view() == key) return v.get_view();
  }
  return std::nullopt;
}

types::UpdateReply no_updates() { return types::UpdateReply{}; }

}  // namespace

namespace exports::nri::plugin {

std::expected<types::Events, wit::string> lifecycle::Configure(wit::string, types::RuntimeInfo) {
  log_::Log(log_::Level::kInfo, "setting TEAM from the pod label team");
  return types::Events::kCreateContainer;
}

std::expected<wit::vector<types::ContainerUpdate>, wit::string> lifecycle::Synchronize(
    wit::vector<types::PodSandbox>, wit::vector<types::Container>) {
  return wit::vector<types::ContainerUpdate>::allocate(0);
}

std::expected<types::CreateReply, wit::string> adjuster::CreateContainer(types::PodSandbox pod,
                                                                         types::Container) {
  types::CreateReply reply{};
  auto team = label(pod, kLabel);
  if (!team) return reply;
  auto env = wit::vector<std::tuple<wit::string, wit::string>>::allocate(1);
  env.initialize(0, std::make_tuple(wit::string::from_view(kEnv), wit::string::from_view(*team)));
  types::ContainerAdjustment adjust{};
  adjust.env = std::move(env);
  reply.adjust = std::move(adjust);
  return reply;
}

std::expected<types::UpdateReply, wit::string> adjuster::UpdateContainer(
    types::PodSandbox, types::Container, std::optional<types::LinuxResources>) {
  return no_updates();
}

std::expected<types::UpdateReply, wit::string> adjuster::StopContainer(types::PodSandbox,
                                                                       types::Container) {
  return no_updates();
}

}  // namespace exports::nri::plugin
