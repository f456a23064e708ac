//! The daemon's configuration file (TOML): limits and failure policy per
//! guest, and the configuration string each guest is started with.
//!
//! ```toml
//! [defaults]
//! memory-limit = "64MiB"        # linear memory of each guest
//! deadline = "100ms"            # longest single call
//! failure-policy = "fail-open"  # or "fail-closed"
//!
//! [daemon]                      # read at start; flags and env override
//! socket = "/var/run/nri/nri.sock"
//! status-address = "127.0.0.1:9465"
//!
//! [plugins.ulimit-adjuster]     # by guest name (file NN-name.wasm)
//! failure-policy = "fail-closed"
//! config = "anything the guest understands"
//! digest = "sha256:..."         # load only this content
//! mode = "shadow"               # checked and recorded, never applied
//!
//! [plugins.env-injector]        # from a registry, not the directory
//! source = "oci://registry.example.com/plugins/env-injector:v1@sha256:..."
//! index = "20"                  # else the index it was pushed with
//! verify = { key = "/etc/nri-wasm/keys/team.pub" }
//! ```
//!
//! Read in two stages: the raw file (unknown keys are errors, reported
//! with file, line and key), then validated settings. Nothing downstream
//! sees the raw form.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Duration,
};

use serde::{de::Error as _, Deserialize, Deserializer};

use nri_proto::identity::check_identity;

use crate::{
    grants::{reads::MissingReads, Grants, ReadGrants, Scope},
    oci::{registry::Access, OciReference, PluginSource},
    runtime::{ContentDigest, GuestLimits, SandboxSpec, WasiAccess},
};

/// What happens to an event when a guest fails it (trap, deadline, memory
/// cap, an error of its own).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailurePolicy {
    /// Skip the guest: the event goes on with the other guests' answers.
    #[default]
    FailOpen,
    /// Fail the event: the runtime fails the request (for example the
    /// container's creation).
    FailClosed,
}

/// Whether a guest's answers are applied.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Its admitted answers are applied; a refused one is its failure.
    #[default]
    Enforce,
    /// It is called and its answers are checked, and nothing of them is
    /// applied: what it would change and what would be refused is logged,
    /// counted and recorded. Its failures never fail an event.
    Shadow,
}

/// Settings of one guest.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GuestSettings {
    /// Whether its answers are applied.
    pub mode: Mode,
    /// Memory cap and call deadline.
    pub limits: GuestLimits,
    /// What its failures do to events.
    pub failure_policy: FailurePolicy,
    /// Its configuration string, given to `configure`.
    pub config: String,
    /// What it may change.
    pub grants: Grants,
    /// What it may read.
    pub read: ReadGrants,
    /// What becomes of it if it declares reads it is not granted.
    pub missing_reads: MissingReads,
    /// Which pods it is called for.
    pub scope: Scope,
    /// WASI, if it needs it: read-only directories, clocks, randomness.
    pub wasi: Option<WasiAccess>,
    /// The only content its plugin file may have.
    pub digest: Option<ContentDigest>,
    /// The registry it comes from, instead of the plugin directory.
    pub source: Option<PluginSource>,
    /// Whether it must come signed from a registry.
    pub require_signature: bool,
}

impl GuestSettings {
    /// What these settings allow beyond what they may look like they
    /// allow: its grants' warnings, and the veto of a fail-closed guest.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = self.grants.warnings();
        // A validator's veto is granted (`validate = true`); anyone else's
        // comes with the policy alone.
        let veto = self.failure_policy == FailurePolicy::FailClosed && !self.grants.validate;
        if veto && self.mode == Mode::Enforce {
            warnings.push(
                "failure-policy = \"fail-closed\" is a veto over its scope, which no grant \
                 gives: an error, trap or timeout of the plugin fails the runtime's request (a \
                 container's creation) for every pod and container it is called for; scope it \
                 to the pods it must guard"
                    .to_string(),
            );
        }
        warnings
    }

    /// How the guest is sandboxed.
    pub fn sandbox(&self) -> SandboxSpec {
        SandboxSpec {
            limits: self.limits,
            wasi: self.wasi.clone(),
            pinned: self.digest,
        }
    }
}

/// The daemon's own settings, from the `[daemon]` section. Command-line
/// flags and environment variables override them; they are read at start
/// only.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DaemonSettings {
    /// The runtime's NRI socket.
    pub socket: Option<PathBuf>,
    /// Plugin name to register under.
    pub name: Option<String>,
    /// Plugin index to register under.
    pub index: Option<String>,
    /// Directory for compiled guests.
    pub cache_dir: Option<PathBuf>,
    /// Address of the status endpoint, or "off".
    pub status_address: Option<String>,
    /// Whether plugin and configuration changes are applied while running.
    pub reload: Option<bool>,
    /// The Docker `config.json` registry credentials are read from
    /// [default: `$DOCKER_CONFIG/config.json`, else
    /// `~/.docker/config.json`].
    pub registry_credentials: Option<PathBuf>,
    /// How often registry tags are resolved again; tags are resolved at
    /// start (and when a section changes) only, unless this is set.
    #[serde(default, deserialize_with = "interval")]
    pub resolve_interval: Option<Duration>,
}

/// The validated configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    daemon: DaemonSettings,
    defaults: GuestSettings,
    plugins: BTreeMap<String, GuestSettings>,
}

/// A configuration file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {file}: {source}")]
    Read {
        /// The file.
        file: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid: the message names line, column and key.
    #[error("invalid config {file}: {message}")]
    Invalid {
        /// The file.
        file: PathBuf,
        /// What is wrong, where.
        message: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawConfig {
    #[serde(default)]
    daemon: DaemonSettings,
    #[serde(default)]
    defaults: RawGuestSettings,
    #[serde(default)]
    plugins: BTreeMap<String, RawPluginSettings>,
}

/// A plugin's section: the settings of `[defaults]`, and grants, which
/// only a plugin's own section can give.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawPluginSettings {
    #[serde(default, deserialize_with = "size")]
    memory_limit: Option<usize>,
    #[serde(default, deserialize_with = "duration")]
    deadline: Option<Duration>,
    failure_policy: Option<FailurePolicy>,
    #[serde(default)]
    mode: Mode,
    config: Option<String>,
    #[serde(default)]
    grants: Grants,
    #[serde(default)]
    read: ReadGrants,
    #[serde(default)]
    missing_reads: MissingReads,
    #[serde(default)]
    scope: Scope,
    wasi: Option<WasiAccess>,
    #[serde(default, deserialize_with = "digest")]
    digest: Option<ContentDigest>,
    source: Option<String>,
    index: Option<String>,
    #[serde(default)]
    insecure: bool,
    ca: Option<PathBuf>,
    verify: Option<Verify>,
}

/// How a registry plugin's signature is checked.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Verify {
    /// A PEM ECDSA P-256 public key (cosign's).
    key: PathBuf,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawGuestSettings {
    #[serde(default, deserialize_with = "size")]
    memory_limit: Option<usize>,
    #[serde(default, deserialize_with = "duration")]
    deadline: Option<Duration>,
    failure_policy: Option<FailurePolicy>,
    config: Option<String>,
    #[serde(default)]
    require_signature: bool,
}

/// Longest per-call deadline accepted: NRI's default request timeout is
/// 2 s for all plugins together.
pub const MAX_DEADLINE: Duration = Duration::from_secs(2);
/// Largest memory cap accepted.
pub const MAX_MEMORY: usize = 4 << 30;

fn size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    let text = String::deserialize(d)?;
    let bytes = parse_size(&text).map_err(D::Error::custom)?;
    if bytes == 0 || bytes > MAX_MEMORY {
        return Err(D::Error::custom(format!(
            "memory limit {text:?} must be above 0 and at most 4GiB"
        )));
    }
    Ok(Some(bytes))
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let text = String::deserialize(d)?;
    let value = humantime::parse_duration(&text).map_err(|e| {
        D::Error::custom(format!(
            "invalid duration {text:?}: {e} (write for example \"100ms\")"
        ))
    })?;
    if value.is_zero() || value > MAX_DEADLINE {
        return Err(D::Error::custom(format!(
            "deadline {text:?} must be above 0 and at most {MAX_DEADLINE:?}"
        )));
    }
    Ok(Some(value))
}

fn interval<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let text = String::deserialize(d)?;
    let value = humantime::parse_duration(&text).map_err(|e| {
        D::Error::custom(format!(
            "invalid duration {text:?}: {e} (write for example \"10m\")"
        ))
    })?;
    if value < MIN_RESOLVE_INTERVAL {
        return Err(D::Error::custom(format!(
            "resolve-interval {text:?} is below {MIN_RESOLVE_INTERVAL:?}: each resolution asks every plugin's registry"
        )));
    }
    Ok(Some(value))
}

/// Shortest interval tags are resolved again at.
pub const MIN_RESOLVE_INTERVAL: Duration = Duration::from_secs(10);

fn digest<'de, D: Deserializer<'de>>(d: D) -> Result<Option<ContentDigest>, D::Error> {
    let text = String::deserialize(d)?;
    text.parse().map(Some).map_err(D::Error::custom)
}

/// Parses `64MiB`, `512KiB`, `1GiB`, `1048576` (bytes).
fn parse_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: usize = number
        .parse()
        .map_err(|_| format!("invalid size {text:?} (write for example \"64MiB\")"))?;
    let factor = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        other => {
            return Err(format!(
                "unknown size unit {other:?} in {text:?}: use B, KiB, MiB or GiB"
            ))
        }
    };
    number
        .checked_mul(factor)
        .ok_or_else(|| format!("size {text:?} is too large"))
}

impl RawGuestSettings {
    fn over(&self, base: &GuestSettings) -> GuestSettings {
        GuestSettings {
            limits: GuestLimits {
                memory: self.memory_limit.unwrap_or(base.limits.memory),
                deadline: self.deadline.unwrap_or(base.limits.deadline),
            },
            failure_policy: self.failure_policy.unwrap_or(base.failure_policy),
            mode: Mode::Enforce,
            config: self.config.clone().unwrap_or_else(|| base.config.clone()),
            grants: Grants::default(),
            read: ReadGrants::default(),
            missing_reads: MissingReads::default(),
            scope: Scope::default(),
            wasi: None,
            digest: None,
            source: None,
            require_signature: self.require_signature || base.require_signature,
        }
    }
}

impl RawPluginSettings {
    /// The registry source of the section, checked: the keys that only a
    /// source takes are errors without one.
    fn source(
        &self,
        daemon: &DaemonSettings,
        require_signature: bool,
    ) -> Result<Option<PluginSource>, String> {
        let Some(text) = &self.source else {
            let stray = [
                ("index", self.index.is_some()),
                ("insecure", self.insecure),
                ("ca", self.ca.is_some()),
                ("verify", self.verify.is_some()),
            ];
            return match stray.iter().find(|(_, set)| *set) {
                Some((key, _)) => Err(format!(
                    "`{key}` is a setting of registry plugins, and the section names no `source`"
                )),
                None => Ok(None),
            };
        };
        let reference: OciReference = text.parse()?;
        if let Some(index) = &self.index {
            check_identity("plugin", index).map_err(|e| e.to_string())?;
        }
        Ok(Some(PluginSource {
            reference,
            index: self.index.clone(),
            access: Access {
                insecure: self.insecure,
                ca: self.ca.clone(),
                credentials: daemon.registry_credentials.clone(),
            },
            verify_key: self.verify.as_ref().map(|v| v.key.clone()),
            require_signature,
        }))
    }
}

impl Config {
    /// Reads and validates `file`.
    pub fn load(file: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Read {
            file: file.to_path_buf(),
            source,
        })?;
        Config::parse(&text).map_err(|message| ConfigError::Invalid {
            file: file.to_path_buf(),
            message,
        })
    }

    /// Validates the text of a configuration file.
    pub fn parse(text: &str) -> Result<Config, String> {
        let raw: RawConfig =
            toml::from_str(text).map_err(|e| e.to_string().trim_end().to_string())?;
        let defaults = raw.defaults.over(&GuestSettings::default());
        let plugins = raw
            .plugins
            .iter()
            .map(|(name, plugin)| {
                let settings = RawGuestSettings {
                    memory_limit: plugin.memory_limit,
                    deadline: plugin.deadline,
                    failure_policy: plugin.failure_policy,
                    config: plugin.config.clone(),
                    require_signature: false,
                };
                let source = plugin
                    .source(&raw.daemon, defaults.require_signature)
                    .map_err(|e| format!("[plugins.{name}]: {e}"))?;
                let settings = GuestSettings {
                    mode: plugin.mode,
                    grants: plugin.grants.clone(),
                    read: plugin.read.clone(),
                    missing_reads: plugin.missing_reads,
                    scope: plugin.scope.clone(),
                    wasi: plugin.wasi.clone(),
                    digest: plugin.digest,
                    source,
                    ..settings.over(&defaults)
                };
                Ok((name.clone(), settings))
            })
            .collect::<Result<_, String>>()?;
        Ok(Config {
            daemon: raw.daemon,
            defaults,
            plugins,
        })
    }

    /// The daemon's own settings.
    pub fn daemon(&self) -> &DaemonSettings {
        &self.daemon
    }

    /// Gives guest `name` these settings, whatever its section says.
    pub fn set_guest(&mut self, name: &str, settings: GuestSettings) {
        self.plugins.insert(name.to_string(), settings);
    }

    /// The settings of guest `name`.
    pub fn guest(&self, name: &str) -> GuestSettings {
        self.plugins
            .get(name)
            .cloned()
            .unwrap_or_else(|| self.defaults.clone())
    }

    /// Whether `[defaults] require-signature` is set.
    pub fn require_signature(&self) -> bool {
        self.defaults.require_signature
    }

    /// The sections that take their plugin from a registry.
    pub fn sources(&self) -> impl Iterator<Item = (&str, &PluginSource)> {
        self.plugins
            .iter()
            .filter_map(|(name, s)| Some((name.as_str(), s.source.as_ref()?)))
    }

    /// Names with a section of their own.
    pub fn named_guests(&self) -> impl Iterator<Item = &str> {
        self.plugins.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_fall_back_to_defaults() {
        let config = Config::parse(
            r#"
            [defaults]
            memory-limit = "32MiB"
            deadline = "50ms"

            [plugins.strict]
            failure-policy = "fail-closed"
            config = "x=1"
            "#,
        )
        .unwrap();
        let strict = config.guest("strict");
        assert_eq!(strict.limits.memory, 32 << 20);
        assert_eq!(strict.limits.deadline, Duration::from_millis(50));
        assert_eq!(strict.failure_policy, FailurePolicy::FailClosed);
        assert_eq!(strict.config, "x=1");
        assert_eq!(
            config.guest("other").failure_policy,
            FailurePolicy::FailOpen
        );
        assert_eq!(
            Config::parse("").unwrap().guest("x"),
            GuestSettings::default()
        );
    }

    #[test]
    fn a_fail_closed_guest_is_told_it_holds_a_veto() {
        let config = Config::parse(
            r#"
            [plugins.guard]
            failure-policy = "fail-closed"
            [plugins.watcher]
            failure-policy = "fail-closed"
            mode = "shadow"
            [plugins.helper]
            grants = { seccomp = true }
            [plugins.validator]
            failure-policy = "fail-closed"
            grants = { validate = true }
            "#,
        )
        .unwrap();
        let guard = config.guest("guard").warnings();
        assert_eq!(guard.len(), 1, "{guard:?}");
        assert!(guard[0].starts_with("failure-policy = \"fail-closed\" is a veto over its scope"));
        // In shadow mode its failures fail nothing; a validator's veto
        // is granted.
        assert!(config.guest("watcher").warnings().is_empty());
        assert!(config.guest("validator").warnings().is_empty());
        let helper = config.guest("helper").warnings();
        assert_eq!(helper.len(), 1, "{helper:?}");
        assert!(helper[0].starts_with("seccomp = true grants the whole seccomp policy"));
    }

    #[test]
    fn errors_name_the_line_and_the_key() {
        let cases = [
            (
                "[plugins.x]\nmemory = \"1MiB\"\n",
                "line 2",
                "unknown field `memory`",
            ),
            (
                "[defaults]\nmemory-limit = \"64MB\"\n",
                "line 2",
                "unknown size unit \"MB\"",
            ),
            ("[defaults]\ndeadline = \"5s\"\n", "line 2", "at most 2s"),
            (
                "[plugins.x]\nfailure-policy = \"sometimes\"\n",
                "line 2",
                "unknown variant `sometimes`",
            ),
            ("[extra]\n", "line 1", "unknown field `extra`"),
        ];
        for (text, line, what) in cases {
            let err = Config::parse(text).unwrap_err();
            assert!(
                err.contains(line) && err.contains(what),
                "{text:?} gave {err}"
            );
        }
    }

    #[test]
    fn registry_sources_are_checked_with_their_section() {
        let config = Config::parse(
            r#"
            [daemon]
            registry-credentials = "/etc/nri-wasm/registry.json"
            resolve-interval = "10m"

            [defaults]
            require-signature = true

            [plugins.env]
            source = "oci://registry.example.com/plugins/env:v1"
            index = "20"
            verify = { key = "/etc/nri-wasm/keys/team.pub" }
            "#,
        )
        .unwrap();
        assert_eq!(
            config.daemon().resolve_interval,
            Some(Duration::from_secs(600))
        );
        let (name, source) = config.sources().next().unwrap();
        assert_eq!(name, "env");
        assert_eq!(source.index.as_deref(), Some("20"));
        assert!(source.require_signature);
        assert_eq!(
            source.access.credentials.as_deref(),
            Some(Path::new("/etc/nri-wasm/registry.json"))
        );
        assert!(config.guest("other").require_signature);
        let cases = [
            (
                "[plugins.x]\nindex = \"20\"\n",
                "`index` is a setting of registry plugins",
            ),
            (
                "[plugins.x]\nsource = \"registry.example.com/x\"\n",
                "is not a registry reference",
            ),
            (
                "[plugins.x]\nsource = \"oci://x:v1\"\n",
                "names no registry host",
            ),
            (
                "[plugins.x]\nsource = \"oci://r.example/x\"\nindex = \"7\"\n",
                "must be exactly two digits",
            ),
            ("[daemon]\nresolve-interval = \"1s\"\n", "is below 10s"),
        ];
        for (text, what) in cases {
            let err = Config::parse(text).unwrap_err();
            assert!(err.contains(what), "{text:?} gave {err}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("1 GiB"), Ok(1 << 30));
        assert!(parse_size("MiB").is_err());
    }
}
