//! validator: checks the merged changes of every NRI plugin to a container
//! before it is created, like NRI's default validator, and rejects what
//! its configuration forbids.
//!
//! Configuration (JSON, every key optional):
//!
//! ```json
//! { "reject-oci-hooks": true, "reject-seccomp": true,
//!   "reject-namespaces": true, "reject-sysctl": true,
//!   "required-plugins": ["10-logger"] }
//! ```

use nri_wasm_sdk::{
    export, ContainerAdjustment, Field, Plugin, RuntimeInfo, ValidateRequest, Validator,
};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Rules {
    #[serde(default)]
    pub reject_oci_hooks: bool,
    #[serde(default)]
    pub reject_seccomp: bool,
    #[serde(default)]
    pub reject_namespaces: bool,
    #[serde(default)]
    pub reject_sysctl: bool,
    #[serde(default)]
    pub required_plugins: Vec<String>,
}

/// Reads the configuration; empty means no rule.
pub fn parse(config: &str) -> Result<Rules, String> {
    if config.trim().is_empty() {
        return Ok(Rules::default());
    }
    serde_json::from_str(config).map_err(|e| format!("invalid validator configuration: {e}"))
}

/// Who set `field` for the container, as the request's owners say.
fn owner(request: &ValidateRequest, field: Field) -> String {
    request
        .owners
        .iter()
        .filter(|o| o.container_id == request.container.id)
        .flat_map(|o| {
            o.simple
                .iter()
                .filter(|(f, _)| *f == field)
                .map(|(_, p)| p.clone())
        })
        .next()
        .unwrap_or_else(|| "a plugin".to_string())
}

/// The first rule the request breaks.
pub fn check(rules: &Rules, request: &ValidateRequest) -> Result<(), String> {
    let empty = ContainerAdjustment {
        annotations: Vec::new(),
        mounts: Vec::new(),
        env: Vec::new(),
        hooks: None,
        linux: None,
        rlimits: Vec::new(),
        cdi_devices: Vec::new(),
        args: Vec::new(),
    };
    let adjust = request.adjust.as_ref().unwrap_or(&empty);
    let hooks = adjust.hooks.as_ref().is_some_and(|h| {
        !(h.prestart.is_empty()
            && h.create_runtime.is_empty()
            && h.create_container.is_empty()
            && h.start_container.is_empty()
            && h.poststart.is_empty()
            && h.poststop.is_empty())
    });
    if rules.reject_oci_hooks && hooks {
        return Err(format!(
            "OCI hook injection by {} is not allowed",
            owner(request, Field::OciHooks)
        ));
    }
    if let Some(linux) = &adjust.linux {
        if rules.reject_seccomp && linux.seccomp_policy.is_some() {
            return Err(format!(
                "seccomp adjustment by {} is not allowed",
                owner(request, Field::SeccompPolicy)
            ));
        }
        if rules.reject_namespaces && !linux.namespaces.is_empty() {
            return Err("namespace adjustment is not allowed".to_string());
        }
        if rules.reject_sysctl && !linux.sysctl.is_empty() {
            return Err("sysctl adjustment is not allowed".to_string());
        }
    }
    for required in &rules.required_plugins {
        if !request
            .plugins
            .iter()
            .any(|p| format!("{}-{}", p.index, p.name) == *required || p.name == *required)
        {
            return Err(format!("required plugin {required} was not consulted"));
        }
    }
    Ok(())
}

pub struct RuleValidator {
    rules: Rules,
}

impl Plugin for RuleValidator {
    fn configure(config: &str, _: &RuntimeInfo) -> Result<Self, String> {
        Ok(RuleValidator {
            rules: parse(config)?,
        })
    }
}

impl Validator for RuleValidator {
    fn validate(&mut self, request: &ValidateRequest) -> Result<(), String> {
        check(&self.rules, request)
    }
}

export!(RuleValidator: validator);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rules() {
        let rules =
            parse(r#"{"reject-oci-hooks": true, "required-plugins": ["10-logger"]}"#).unwrap();
        assert!(rules.reject_oci_hooks && !rules.reject_sysctl);
        assert_eq!(rules.required_plugins, ["10-logger"]);
        assert!(parse(r#"{"reject-everything": true}"#)
            .unwrap_err()
            .contains("unknown field"));
    }
}
