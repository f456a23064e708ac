//! device-injector: gives containers device nodes and CDI devices named in
//! pod annotations, in the format of NRI's device-injector sample:
//!
//! ```yaml
//! # annotation devices.noderesource.dev/container.<container name>
//! - path: /dev/nri-null
//!   type: c
//!   major: 1
//!   minor: 3
//!   file_mode: 0o666     # optional, as are uid and gid
//! # annotation cdi-devices.noderesource.dev/container.<container name>
//! - vendor.com/device=gpu0
//! ```

use nri_wasm_sdk::{
    export, Adjuster, Adjustment, CdiDevice, Container, LinuxDevice, Plugin, PodExt, PodSandbox,
    RuntimeInfo,
};
use serde::Deserialize;

const DEVICES: &str = "devices.noderesource.dev";
const CDI_DEVICES: &str = "cdi-devices.noderesource.dev";

/// A device of an annotation.
#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Device {
    pub path: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub major: i64,
    #[serde(default)]
    pub minor: i64,
    pub file_mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

/// Parses a device annotation.
pub fn parse_devices(value: &str) -> Result<Vec<LinuxDevice>, String> {
    let devices: Vec<Device> =
        serde_norway::from_str(value).map_err(|e| format!("invalid device annotation: {e}"))?;
    devices
        .into_iter()
        .map(|d| {
            if !d.path.starts_with("/dev/") {
                return Err(format!("device path {:?} is not under /dev", d.path));
            }
            if !matches!(d.kind.as_str(), "b" | "c" | "u" | "p") {
                return Err(format!(
                    "device {}: type {:?} is not b, c, u or p",
                    d.path, d.kind
                ));
            }
            Ok(LinuxDevice {
                path: d.path,
                type_: d.kind,
                major: d.major,
                minor: d.minor,
                file_mode: d.file_mode,
                uid: d.uid,
                gid: d.gid,
            })
        })
        .collect()
}

/// Parses a CDI device annotation: a list of fully qualified names.
pub fn parse_cdi(value: &str) -> Result<Vec<String>, String> {
    let names: Vec<String> =
        serde_norway::from_str(value).map_err(|e| format!("invalid CDI annotation: {e}"))?;
    for name in &names {
        let (kind, device) = name.split_once('=').unwrap_or(("", ""));
        if !kind.contains('/') || device.is_empty() {
            return Err(format!("CDI device {name:?} is not vendor/class=device"));
        }
    }
    Ok(names)
}

pub struct DeviceInjector;

impl Plugin for DeviceInjector {
    fn configure(_: &str, _: &RuntimeInfo) -> Result<Self, String> {
        Ok(DeviceInjector)
    }
}

impl Adjuster for DeviceInjector {
    fn create_container(
        &mut self,
        pod: &PodSandbox,
        container: &Container,
    ) -> Result<Adjustment, String> {
        let key = |prefix: &str| format!("{prefix}/container.{}", container.name);
        let mut adjustment = Adjustment::new();
        if let Some(value) = pod.annotation(&key(DEVICES)) {
            adjustment = parse_devices(value)?
                .into_iter()
                .fold(adjustment, Adjustment::add_device);
        }
        if let Some(value) = pod.annotation(&key(CDI_DEVICES)) {
            for name in parse_cdi(value)? {
                adjustment.raw().cdi_devices.push(CdiDevice { name });
            }
        }
        Ok(adjustment)
    }
}

export!(DeviceInjector: adjuster);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_devices() {
        let devices = parse_devices(
            "- path: /dev/nri-null\n  type: c\n  major: 1\n  minor: 3\n  file_mode: 438\n",
        )
        .unwrap();
        assert_eq!(devices[0].path, "/dev/nri-null");
        assert_eq!(
            (devices[0].major, devices[0].minor, devices[0].file_mode),
            (1, 3, Some(0o666))
        );
    }

    #[test]
    fn refuses_bad_devices() {
        assert_eq!(
            parse_devices("- path: /etc/passwd\n  type: c\n").unwrap_err(),
            "device path \"/etc/passwd\" is not under /dev"
        );
        assert_eq!(
            parse_cdi("- gpu0\n").unwrap_err(),
            "CDI device \"gpu0\" is not vendor/class=device"
        );
        assert_eq!(
            parse_cdi("- vendor.com/gpu=0\n").unwrap(),
            ["vendor.com/gpu=0"]
        );
    }
}
