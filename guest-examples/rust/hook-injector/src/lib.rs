//! hook-injector: adds the OCI hooks of its configuration to containers,
//! to all of them or to those whose pod asks with the annotation
//! `hook-injector.nri-wasm.io/inject: "true"`.
//!
//! Configuration (JSON):
//!
//! ```json
//! { "only-annotated": true,
//!   "hooks": [ { "stage": "createRuntime", "path": "/usr/local/bin/audit-hook",
//!                "args": ["audit-hook", "--mode=record"], "env": ["A=1"], "timeout": 5 } ] }
//! ```
//!
//! A hook runs as root on the node: nri-wasm only lets it through when the
//! operator granted this plugin the hook's path.

use nri_wasm_sdk::{
    export, Adjuster, Adjustment, Container, Hook, HookStage, Plugin, PodExt, PodSandbox,
    RuntimeInfo,
};
use serde::Deserialize;

/// The pod annotation that opts in, with `only-annotated`.
pub const OPT_IN: &str = "hook-injector.nri-wasm.io/inject";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    #[serde(default)]
    pub only_annotated: bool,
    pub hooks: Vec<HookConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HookConfig {
    pub stage: String,
    pub path: String,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: Vec<String>,
    pub timeout: Option<i64>,
}

/// The hooks to add, with their stages.
pub fn parse(config: &str) -> Result<(bool, Vec<(HookStage, Hook)>), String> {
    let config: Config = serde_json::from_str(config)
        .map_err(|e| format!("invalid hook-injector configuration: {e}"))?;
    let hooks = config
        .hooks
        .into_iter()
        .map(|h| {
            let stage = match h.stage.as_str() {
                "prestart" => HookStage::Prestart,
                "createRuntime" => HookStage::CreateRuntime,
                "createContainer" => HookStage::CreateContainer,
                "startContainer" => HookStage::StartContainer,
                "poststart" => HookStage::Poststart,
                "poststop" => HookStage::Poststop,
                other => return Err(format!("unknown hook stage {other:?}")),
            };
            if !h.path.starts_with('/') {
                return Err(format!("hook path {:?} is not absolute", h.path));
            }
            Ok((
                stage,
                Hook {
                    path: h.path,
                    args: h.args,
                    env: h.env,
                    timeout: h.timeout,
                },
            ))
        })
        .collect::<Result<_, String>>()?;
    Ok((config.only_annotated, hooks))
}

pub struct HookInjector {
    only_annotated: bool,
    hooks: Vec<(HookStage, Hook)>,
}

impl Plugin for HookInjector {
    fn configure(config: &str, _: &RuntimeInfo) -> Result<Self, String> {
        let (only_annotated, hooks) = parse(config)?;
        Ok(HookInjector {
            only_annotated,
            hooks,
        })
    }
}

impl Adjuster for HookInjector {
    fn create_container(&mut self, pod: &PodSandbox, _: &Container) -> Result<Adjustment, String> {
        if self.only_annotated && pod.annotation(OPT_IN) != Some("true") {
            return Ok(Adjustment::new());
        }
        Ok(self
            .hooks
            .iter()
            .fold(Adjustment::new(), |a, (stage, hook)| {
                a.add_hook(*stage, hook.clone())
            }))
    }
}

export!(HookInjector: adjuster);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_hooks() {
        let (only, hooks) =
            parse(r#"{"hooks":[{"stage":"createRuntime","path":"/bin/hook","timeout":5}]}"#)
                .unwrap();
        assert!(!only);
        assert_eq!(hooks[0].0, HookStage::CreateRuntime);
        assert_eq!(hooks[0].1.timeout, Some(5));
    }

    #[test]
    fn refuses_bad_hooks() {
        assert_eq!(
            parse(r#"{"hooks":[{"stage":"later","path":"/bin/hook"}]}"#).unwrap_err(),
            "unknown hook stage \"later\""
        );
        assert_eq!(
            parse(r#"{"hooks":[{"stage":"poststop","path":"hook"}]}"#).unwrap_err(),
            "hook path \"hook\" is not absolute"
        );
    }
}
