//! `nri-wasm push PLUGIN.wasm oci://HOST/REPO:TAG`: publishes a plugin in
//! the CNCF Wasm artifact layout, annotated with the plugin it is, the
//! events it handles and what it exports, and signs it in cosign's format
//! when given a key. Prints the reference pinned to what was pushed.

use std::{collections::BTreeMap, path::PathBuf};

use anyhow::{anyhow, bail, Context};
use clap::Args;

use crate::{
    oci::{
        artifact::{
            self, descriptor, publication, EVENTS_ANNOTATION, EXPORTS_ANNOTATION,
            PLUGIN_ANNOTATION, TITLE_ANNOTATION,
        },
        registry::{Access, Registry},
        signature::{signature_tag, PrivateKey, PAYLOAD_MEDIA_TYPE, SIGNATURE_ANNOTATION},
        OciReference,
    },
    runtime::ContentDigest,
};

use super::check::load_component;

/// Publish a plugin to an OCI registry (checked first: a component of the
/// `nri:plugin` world).
#[derive(Debug, Args)]
pub struct PushArgs {
    /// The plugin file (`NN-name.wasm`).
    plugin: PathBuf,
    /// Where to: `oci://HOST/REPO:TAG`.
    reference: String,
    /// Sign it with this PEM ECDSA P-256 private key, as `cosign sign
    /// --key` does (the signature goes to tag `sha256-DIGEST.sig`).
    #[arg(long, value_name = "KEY")]
    sign_key: Option<PathBuf>,
    /// Plain HTTP to a registry that is not on loopback.
    #[arg(long)]
    insecure: bool,
    /// PEM certificates to trust for the registry, beside the system's.
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,
    /// Docker `config.json` with the registry's credentials [default:
    /// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`].
    #[arg(long, value_name = "FILE")]
    credentials: Option<PathBuf>,
    /// Directory for compiled guests [default: as for `check`].
    #[arg(long, env = "NRI_WASM_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
}

pub(super) async fn push(args: PushArgs) -> anyhow::Result<()> {
    let reference: OciReference = args.reference.parse().map_err(|e: String| anyhow!(e))?;
    // The reference grammar supplies `latest` to a reference without a
    // tag; a push names its tag.
    let written = args.reference.rsplit('/').next().unwrap_or_default();
    if reference.digest().is_some() || !written.contains(':') {
        bail!(
            "{reference}: push to a tag (oci://HOST/REPO:TAG); the digest is what the push makes"
        );
    }
    let (guest, _) = load_component(&args.plugin, None, args.cache_dir.as_deref())?;
    let component = std::fs::read(&args.plugin)
        .with_context(|| format!("cannot read {}", args.plugin.display()))?;
    if ContentDigest::of(&component) != guest.digest() {
        bail!(
            "{}: changed while it was checked; push again",
            args.plugin.display()
        );
    }
    let title = args
        .plugin
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let exports: Vec<String> = guest.interfaces().iter().map(|i| i.to_string()).collect();
    let annotations = BTreeMap::from([
        (PLUGIN_ANNOTATION.to_string(), guest.id().to_string()),
        (
            EVENTS_ANNOTATION.to_string(),
            guest.handled_events().to_string(),
        ),
        (EXPORTS_ANNOTATION.to_string(), exports.join(",")),
        (TITLE_ANNOTATION.to_string(), title),
    ]);
    let published = publication(&component, exports, guest.imports(), annotations);
    let access = Access {
        insecure: args.insecure,
        ca: args.ca,
        credentials: args.credentials,
    };
    let registry = Registry::connect(&reference, &access).map_err(|e| anyhow!(e))?;
    let at = reference.client_reference();
    for blob in [&published.config, &component] {
        registry
            .push_blob(&at, blob)
            .await
            .map_err(|e| anyhow!(e))?;
    }
    registry
        .push_manifest(&at, &published.manifest)
        .await
        .map_err(|e| anyhow!(e))?;
    let digest = ContentDigest::of(&published.manifest);
    println!("pushed {}", reference.pinned(digest));
    if let Some(key) = &args.sign_key {
        let key = PrivateKey::read(key).map_err(|e| anyhow!(e))?;
        sign(&registry, &reference, &key, digest).await?;
        println!(
            "signed: {}",
            reference.at_tag(&signature_tag(digest)).whole()
        );
    }
    Ok(())
}

/// Pushes the cosign signature of manifest `digest`.
async fn sign(
    registry: &Registry,
    reference: &OciReference,
    key: &PrivateKey,
    digest: ContentDigest,
) -> anyhow::Result<()> {
    let (payload, signature) = key.sign(&reference.name(), digest);
    let config = b"{}";
    let mut layer = descriptor(PAYLOAD_MEDIA_TYPE, &payload);
    layer.annotations = Some(BTreeMap::from([(
        SIGNATURE_ANNOTATION.to_string(),
        signature,
    )]));
    let manifest = artifact::manifest_of(config, vec![layer]);
    let tag = reference.at_tag(&signature_tag(digest));
    for blob in [&config[..], &payload] {
        registry
            .push_blob(&tag, blob)
            .await
            .map_err(|e| anyhow!(e))?;
    }
    registry
        .push_manifest(&tag, &manifest)
        .await
        .map_err(|e| anyhow!(e))
}
