//! The artifact layouts a component is published in: the CNCF Wasm OCI
//! artifact (config `application/vnd.wasm.config.v0+json`, one layer
//! `application/wasm`), which `nri-wasm push` writes, and the layout
//! kwctl and wasm-to-oci write (config `application/vnd.wasm.config.v1+json`,
//! layer `application/vnd.wasm.content.layer.v1+wasm`). Both are read.

use std::collections::BTreeMap;

use oci_client::manifest::{
    OciDescriptor, OciImageManifest, OCI_IMAGE_MEDIA_TYPE, WASM_CONFIG_MEDIA_TYPE,
    WASM_LAYER_MEDIA_TYPE,
};
use serde::Serialize;

use crate::runtime::{loader::parse_file_name, ContentDigest, GuestId};

/// Config media type of the CNCF Wasm artifact layout.
pub const CNCF_CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// Layer media type of the CNCF Wasm artifact layout.
pub const CNCF_LAYER_MEDIA_TYPE: &str = "application/wasm";
/// The plugin file name a component was pushed from (`NN-name`).
pub const PLUGIN_ANNOTATION: &str = "dev.nri-wasm.plugin";
/// The events it handles, as `nri-wasm check` lists them.
pub const EVENTS_ANNOTATION: &str = "dev.nri-wasm.events";
/// The `nri:plugin` interfaces it exports.
pub const EXPORTS_ANNOTATION: &str = "dev.nri-wasm.exports";
/// The standard title annotation: the file name.
pub const TITLE_ANNOTATION: &str = "org.opencontainers.image.title";
/// Largest manifest accepted, from the registry or the store.
pub const MAX_MANIFEST: u64 = 4 << 20;

/// The media types a manifest is asked for in.
pub const MANIFEST_MEDIA_TYPES: &[&str] = &[OCI_IMAGE_MEDIA_TYPE];

/// A parsed plugin manifest.
pub struct PluginManifest(OciImageManifest);

impl PluginManifest {
    /// Reads a manifest and checks it is one of the layouts.
    pub fn parse(bytes: &[u8]) -> Result<PluginManifest, String> {
        let manifest: OciImageManifest = serde_json::from_slice(bytes)
            .map_err(|e| format!("its manifest is not an OCI image manifest: {e}"))?;
        if manifest.schema_version != 2 {
            return Err(format!(
                "its manifest has schema version {}, not 2",
                manifest.schema_version
            ));
        }
        let config = manifest.config.media_type.as_str();
        if ![CNCF_CONFIG_MEDIA_TYPE, WASM_CONFIG_MEDIA_TYPE].contains(&config) {
            return Err(format!(
                "its config is of type {config:?}, not a Wasm artifact's ({CNCF_CONFIG_MEDIA_TYPE} or {WASM_CONFIG_MEDIA_TYPE})"
            ));
        }
        let manifest = PluginManifest(manifest);
        manifest.component()?;
        Ok(manifest)
    }

    /// The component layer: the one layer of a Wasm media type.
    pub fn component(&self) -> Result<&OciDescriptor, String> {
        let wasm: Vec<&OciDescriptor> = self
            .0
            .layers
            .iter()
            .filter(|l| {
                [CNCF_LAYER_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPE].contains(&l.media_type.as_str())
            })
            .collect();
        match wasm.as_slice() {
            [layer] => Ok(layer),
            [] => Err(format!(
                "it has no layer of type {CNCF_LAYER_MEDIA_TYPE} or {WASM_LAYER_MEDIA_TYPE} (its layers: {})",
                self.0.layers.iter().map(|l| l.media_type.as_str()).collect::<Vec<_>>().join(", ")
            )),
            more => Err(format!("it has {} Wasm layers; a plugin is one component", more.len())),
        }
    }

    /// The component layer's digest and declared size.
    pub fn component_digest(&self) -> Result<(ContentDigest, u64), String> {
        let layer = self.component()?;
        let digest = layer
            .digest
            .parse()
            .map_err(|e| format!("its layer digest {:?}: {e}", layer.digest))?;
        let size = u64::try_from(layer.size)
            .map_err(|_| format!("its layer declares size {}", layer.size))?;
        Ok((digest, size))
    }

    /// The plugin file the component was pushed from, if annotated.
    pub fn plugin_id(&self) -> Option<GuestId> {
        let name = self.0.annotations.as_ref()?.get(PLUGIN_ANNOTATION)?;
        parse_file_name(&format!("{name}.wasm")).ok().flatten()
    }
}

/// What `nri-wasm push` writes: the config blob and the manifest, whose
/// digest is the artifact's.
pub struct Publication {
    /// The config blob.
    pub config: Vec<u8>,
    /// The manifest, as pushed (its digest is computed over these bytes).
    pub manifest: Vec<u8>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WasmConfig<'a> {
    architecture: &'a str,
    os: &'a str,
    layer_digests: Vec<String>,
    component: ComponentConfig,
}

#[derive(Serialize)]
struct ComponentConfig {
    exports: Vec<String>,
    imports: Vec<String>,
    target: Option<String>,
}

/// The CNCF layout for `component`, with `exports` and `imports` in its
/// config and `annotations` on its manifest.
pub fn publication(
    component: &[u8],
    exports: Vec<String>,
    imports: Vec<String>,
    annotations: BTreeMap<String, String>,
) -> Publication {
    let layer_digest = format!("sha256:{}", ContentDigest::of(component));
    let config = serde_json::to_vec(&WasmConfig {
        architecture: "wasm",
        os: "wasip2",
        layer_digests: vec![layer_digest.clone()],
        component: ComponentConfig {
            exports,
            imports,
            target: None,
        },
    })
    .expect("a config serializes");
    let manifest = OciImageManifest {
        schema_version: 2,
        media_type: Some(OCI_IMAGE_MEDIA_TYPE.to_string()),
        config: descriptor(CNCF_CONFIG_MEDIA_TYPE, &config),
        layers: vec![descriptor(CNCF_LAYER_MEDIA_TYPE, component)],
        annotations: Some(annotations),
        ..OciImageManifest::default()
    };
    Publication {
        manifest: serde_json::to_vec(&manifest).expect("a manifest serializes"),
        config,
    }
}

/// A descriptor of `bytes`.
pub fn descriptor(media_type: &str, bytes: &[u8]) -> OciDescriptor {
    OciDescriptor {
        media_type: media_type.to_string(),
        digest: format!("sha256:{}", ContentDigest::of(bytes)),
        size: bytes.len() as i64,
        ..OciDescriptor::default()
    }
}

/// A manifest of `layers` over an empty config: the shape of a cosign
/// signature manifest.
pub fn manifest_of(config: &[u8], layers: Vec<OciDescriptor>) -> Vec<u8> {
    let manifest = OciImageManifest {
        schema_version: 2,
        media_type: Some(OCI_IMAGE_MEDIA_TYPE.to_string()),
        config: descriptor(oci_client::manifest::IMAGE_CONFIG_MEDIA_TYPE, config),
        layers,
        ..OciImageManifest::default()
    };
    serde_json::to_vec(&manifest).expect("a manifest serializes")
}

/// The layers of any manifest, for signature manifests.
pub fn layers(bytes: &[u8]) -> Result<Vec<OciDescriptor>, String> {
    let manifest: OciImageManifest =
        serde_json::from_slice(bytes).map_err(|e| format!("not an OCI image manifest: {e}"))?;
    Ok(manifest.layers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_layouts_are_read_and_others_refused() {
        let wasm = b"\0asm\x0d\0\x01\0";
        let ours = publication(
            wasm,
            vec![],
            vec![],
            BTreeMap::from([(PLUGIN_ANNOTATION.into(), "20-env".into())]),
        );
        let parsed = PluginManifest::parse(&ours.manifest).unwrap();
        assert_eq!(
            parsed.component_digest().unwrap(),
            (ContentDigest::of(wasm), 8)
        );
        assert_eq!(parsed.plugin_id().unwrap().to_string(), "20-env");
        let kwctl = OciImageManifest {
            config: descriptor(WASM_CONFIG_MEDIA_TYPE, b"{}"),
            layers: vec![descriptor(WASM_LAYER_MEDIA_TYPE, wasm)],
            ..OciImageManifest::default()
        };
        let parsed = PluginManifest::parse(&serde_json::to_vec(&kwctl).unwrap()).unwrap();
        assert_eq!(parsed.plugin_id(), None);
        let image = OciImageManifest {
            config: descriptor(oci_client::manifest::IMAGE_CONFIG_MEDIA_TYPE, b"{}"),
            layers: vec![descriptor("application/vnd.oci.image.layer.v1.tar", b"tar")],
            ..OciImageManifest::default()
        };
        let err = PluginManifest::parse(&serde_json::to_vec(&image).unwrap())
            .err()
            .unwrap();
        assert!(err.contains("not a Wasm artifact's"), "{err}");
        let two = OciImageManifest {
            config: descriptor(CNCF_CONFIG_MEDIA_TYPE, b"{}"),
            layers: vec![
                descriptor(CNCF_LAYER_MEDIA_TYPE, wasm),
                descriptor(CNCF_LAYER_MEDIA_TYPE, b"x"),
            ],
            ..OciImageManifest::default()
        };
        let err = PluginManifest::parse(&serde_json::to_vec(&two).unwrap())
            .err()
            .unwrap();
        assert!(err.contains("2 Wasm layers"), "{err}");
    }
}
