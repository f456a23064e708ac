//! Resolving a plugin's registry reference to a component: the tag to a
//! manifest digest (once, unless told to look again), then whatever of
//! the manifest, its layer and its signature the store lacks, pulled and
//! checked. Every load, from the network or not, checks the stored bytes
//! against their digests and the signature against the key, so a node
//! that restarts while its registry is down runs exactly what it
//! verified before.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Mutex, OnceLock},
};

use super::{
    artifact::{self, PluginManifest, MAX_MANIFEST},
    registry::{Access, Registry},
    signature::{signature_tag, PublicKey, MAX_PAYLOAD, PAYLOAD_MEDIA_TYPE, SIGNATURE_ANNOTATION},
    store::Store,
    OciReference,
};
use crate::runtime::{loader::MAX_PLUGIN_FILE, ContentDigest, GuestId};

/// Where a plugin comes from when its section names a `source`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginSource {
    /// The reference.
    pub reference: OciReference,
    /// Its index, if the section gives one (else the artifact's).
    pub index: Option<String>,
    /// How its registry is reached.
    pub access: Access,
    /// The public key its signature must verify with.
    pub verify_key: Option<PathBuf>,
    /// Whether it must be signed.
    pub require_signature: bool,
}

/// A component ready to load.
#[derive(Debug)]
pub struct Pulled {
    /// Its bytes.
    pub component: Vec<u8>,
    /// The manifest digest it was resolved to.
    pub manifest: ContentDigest,
    /// The plugin file name it was pushed from, if annotated.
    pub plugin_id: Option<GuestId>,
    /// Whether its signature was verified.
    pub signed: bool,
    /// Set when the registry could not be reached and the store answered:
    /// what went wrong. The pull is worth retrying.
    pub stale: Option<String>,
}

/// Pulls and keeps plugins.
pub struct Puller {
    dir: Option<PathBuf>,
    /// Opened at the first pull: a node without registry plugins has none.
    store: OnceLock<Result<Store, String>>,
    /// Tags resolved since start (or since [`Puller::forget_tags`]).
    resolved: Mutex<HashMap<String, ContentDigest>>,
}

/// Why the store cannot give an artifact.
enum Local {
    /// Something is not there: pulling may help.
    Missing(String),
    /// It is there and wrong.
    Refused(String),
}

impl Puller {
    /// A puller keeping its store in `dir`; without one, registry sources
    /// are refused.
    pub fn new(dir: Option<PathBuf>) -> Puller {
        Puller {
            dir,
            store: OnceLock::new(),
            resolved: Mutex::new(HashMap::new()),
        }
    }

    fn store(&self) -> Result<&Store, String> {
        let store = self.store.get_or_init(|| match &self.dir {
            Some(dir) => Store::open(dir),
            None => {
                Err("there is no trusted cache directory to keep pulled plugins in".to_string())
            }
        });
        store.as_ref().map_err(Clone::clone)
    }

    /// Makes the next pulls resolve their tags again.
    pub fn forget_tags(&self) {
        self.resolved.lock().expect("never poisoned").clear();
    }

    /// Pulls every source, concurrently, on a thread of its own (callers
    /// may be inside an async runtime or not).
    pub fn pull_all(&self, sources: &[&PluginSource]) -> Vec<Result<Pulled, String>> {
        if sources.is_empty() {
            return Vec::new();
        }
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("a runtime for pulls starts");
                    runtime.block_on(futures_util::future::join_all(
                        sources.iter().map(|source| self.pull(source)),
                    ))
                })
                .join()
                .expect("pulls do not panic")
        })
    }

    /// Pulls one source. The error names the manifest digest once known.
    pub async fn pull(&self, source: &PluginSource) -> Result<Pulled, String> {
        let store = self.store()?;
        let key = match &source.verify_key {
            Some(file) => Some(PublicKey::read(file)?),
            None if source.require_signature => {
                return Err("its section names no verify key, and [defaults] require-signature = true admits only signed plugins".into())
            }
            None => None,
        };
        // A pinned artifact the store holds intact needs no registry.
        let pinned = source.reference.digest();
        let stored = pinned.and_then(|d| from_store(store, d, key.as_ref()).ok().map(|f| (d, f)));
        let (digest, stale, (component, plugin_id)) = match stored {
            Some((digest, found)) => (digest, None, found),
            None => {
                let registry = Registry::connect(&source.reference, &source.access)?;
                let (digest, stale) = self.resolve(store, &registry, &source.reference).await?;
                let found =
                    pull_verified(store, &registry, &source.reference, digest, key.as_ref())
                        .await
                        .map_err(|reason| format!("manifest sha256:{digest}: {reason}"))?;
                (digest, stale, found)
            }
        };
        Ok(Pulled {
            component,
            manifest: digest,
            plugin_id,
            signed: key.is_some(),
            stale,
        })
    }

    /// The manifest digest `reference` names: pinned, resolved before, or
    /// asked of the registry (and then stored, manifest and tag). When
    /// the registry cannot answer, what the tag last resolved to.
    async fn resolve(
        &self,
        store: &Store,
        registry: &Registry,
        reference: &OciReference,
    ) -> Result<(ContentDigest, Option<String>), String> {
        if let Some(digest) = reference.digest() {
            return Ok((digest, None));
        }
        let text = reference.to_string();
        if let Some(digest) = self.resolved.lock().expect("never poisoned").get(&text) {
            return Ok((*digest, None));
        }
        match registry.manifest(&reference.client_reference()).await {
            Ok((bytes, digest)) => {
                store.put_blob(&bytes)?;
                store.set_tag(&text, digest)?;
                self.resolved
                    .lock()
                    .expect("never poisoned")
                    .insert(text, digest);
                Ok((digest, None))
            }
            Err(reason) => match store.tag(&text) {
                Some(digest) => Ok((digest, Some(reason))),
                None => Err(reason),
            },
        }
    }
}

/// The component of manifest `digest`, verified, from the store, pulling
/// what it lacks (the signature anew when the stored one does not verify).
async fn pull_verified(
    store: &Store,
    registry: &Registry,
    reference: &OciReference,
    digest: ContentDigest,
    key: Option<&PublicKey>,
) -> Result<(Vec<u8>, Option<GuestId>), String> {
    let local = match from_store(store, digest, key) {
        Ok(found) => return Ok(found),
        Err(Local::Refused(reason)) if key.is_none() => return Err(reason),
        Err(local) => local,
    };
    match (
        fetch(store, registry, reference, digest, key.is_some()).await,
        local,
    ) {
        (Ok(()), _) => from_store(store, digest, key).map_err(|local| match local {
            Local::Missing(reason) | Local::Refused(reason) => reason,
        }),
        (Err(reason), Local::Missing(_)) | (Err(_), Local::Refused(reason)) => Err(reason),
    }
}

/// Pulls into the store what it lacks of manifest `digest`: the manifest,
/// its component layer, and (when `signed`) its signature, always asked
/// again, since a new one may have been added.
async fn fetch(
    store: &Store,
    registry: &Registry,
    reference: &OciReference,
    digest: ContentDigest,
    signed: bool,
) -> Result<(), String> {
    let at = reference.by_digest(digest);
    let manifest = match store.blob(digest, MAX_MANIFEST) {
        Some(bytes) => bytes,
        None => {
            let (bytes, _) = registry.manifest(&at).await?;
            store.put_blob(&bytes)?;
            bytes
        }
    };
    let (layer, size) = PluginManifest::parse(&manifest)?.component_digest()?;
    if store.blob(layer, MAX_PLUGIN_FILE).is_none() {
        let bytes = registry.blob(&at, layer, size, MAX_PLUGIN_FILE).await?;
        store.put_blob(&bytes)?;
    }
    if signed {
        let tag = reference.at_tag(&signature_tag(digest));
        let (bytes, signature) = registry
            .manifest(&tag)
            .await
            .map_err(|e| format!("it has no signature (tag {}): {e}", signature_tag(digest)))?;
        for layer in artifact::layers(&bytes)?
            .iter()
            .filter(|l| l.media_type == PAYLOAD_MEDIA_TYPE)
        {
            let payload: ContentDigest = layer.digest.parse()?;
            if store.blob(payload, MAX_PAYLOAD).is_none() {
                let size = u64::try_from(layer.size).unwrap_or(u64::MAX);
                store.put_blob(&registry.blob(&tag, payload, size, MAX_PAYLOAD).await?)?;
            }
        }
        store.put_blob(&bytes)?;
        store.set_signature(digest, signature)?;
    }
    Ok(())
}

/// The component of manifest `digest` from the store, every byte checked,
/// and its signature verified with `key` if given.
fn from_store(
    store: &Store,
    digest: ContentDigest,
    key: Option<&PublicKey>,
) -> Result<(Vec<u8>, Option<GuestId>), Local> {
    let manifest = store
        .blob(digest, MAX_MANIFEST)
        .ok_or_else(|| Local::Missing("its manifest is not in the store".into()))?;
    let manifest = PluginManifest::parse(&manifest).map_err(Local::Refused)?;
    let (layer, size) = manifest.component_digest().map_err(Local::Refused)?;
    if size > MAX_PLUGIN_FILE {
        return Err(Local::Refused(format!(
            "its layer sha256:{layer} declares {size} bytes, more than the {MAX_PLUGIN_FILE} accepted"
        )));
    }
    let component = store
        .blob(layer, MAX_PLUGIN_FILE)
        .ok_or_else(|| Local::Missing("its layer is not in the store".into()))?;
    if let Some(key) = key {
        verify_stored_signature(store, digest, key)?;
    }
    Ok((component, manifest.plugin_id()))
}

fn verify_stored_signature(
    store: &Store,
    digest: ContentDigest,
    key: &PublicKey,
) -> Result<(), Local> {
    let missing = || Local::Missing("its signature is not in the store".into());
    let signature = store.signature(digest).ok_or_else(missing)?;
    let bytes = store.blob(signature, MAX_MANIFEST).ok_or_else(missing)?;
    let layers = artifact::layers(&bytes)
        .map_err(|e| Local::Refused(format!("its signature manifest is {e}")))?;
    let mut reasons = Vec::new();
    for layer in layers.iter().filter(|l| l.media_type == PAYLOAD_MEDIA_TYPE) {
        let signature = layer
            .annotations
            .as_ref()
            .and_then(|a| a.get(SIGNATURE_ANNOTATION));
        let payload = layer
            .digest
            .parse()
            .ok()
            .and_then(|d| store.blob(d, MAX_PAYLOAD));
        match (signature, payload) {
            (Some(signature), Some(payload)) => match key.verify(&payload, signature, digest) {
                Ok(()) => return Ok(()),
                Err(reason) => reasons.push(reason),
            },
            (None, _) => reasons.push(format!(
                "a signature layer has no {SIGNATURE_ANNOTATION} annotation"
            )),
            (_, None) => return Err(missing()),
        }
    }
    if reasons.is_empty() {
        reasons.push("its signature manifest holds no signatures".into());
    }
    Err(Local::Refused(format!(
        "not signed by the configured key: {}",
        reasons.join("; ")
    )))
}
