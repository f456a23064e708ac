//! Resolving a plugin's registry reference to a verified component.
//!
//! A pinned artifact the store holds intact is used without asking the
//! registry. Otherwise the tag (if unpinned) is resolved, and whatever of
//! the manifest, its layer and its signature the store lacks is pulled,
//! each checked against its digest, the signature against the key and
//! the image. When the registry cannot be reached, the manifest the tag
//! last resolved to, or the one the guest already runs, is used if it
//! passes the section as it is now, offline. Tags are recorded only once
//! what they name verified and loaded, so a bad artifact never replaces
//! the good one a restart falls back to.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Mutex, OnceLock},
    time::Duration,
};

use oci_client::Reference;

use super::{
    artifact::{self, PluginManifest, MAX_MANIFEST},
    registry::{Access, Registry},
    signature::{signature_tag, PublicKey, MAX_PAYLOAD, PAYLOAD_MEDIA_TYPE, SIGNATURE_ANNOTATION},
    store::Store,
    OciReference, PullError,
};
use crate::runtime::{loader::MAX_PLUGIN_FILE, ContentDigest, GuestId};

/// Longest a pull of one plugin may take, all requests together.
pub const PULL_DEADLINE: Duration = Duration::from_secs(120);
/// Most signature layers looked at per manifest.
pub const MAX_SIGNATURES: usize = 16;

/// Where a plugin comes from when its section names a `source`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginSource {
    /// The reference.
    pub reference: OciReference,
    /// Its index, if the section gives one (else the artifact's, for an
    /// artifact pinned or signed).
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
    /// The tag to record as resolved once the guest runs.
    tag: Option<String>,
}

impl Pulled {
    /// The tag that resolved to it, to give [`Puller::record`] once its
    /// guest runs.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }
}

/// What to pull: a section's source, and the manifest its guest runs now
/// (from the same repository), if any.
pub struct PullRequest<'a> {
    /// The source.
    pub source: &'a PluginSource,
    /// The manifest running now.
    pub running: Option<ContentDigest>,
}

/// Pulls and keeps plugins.
pub struct Puller {
    dir: Option<PathBuf>,
    /// Opened at the first pull: a node without registry plugins has none.
    store: OnceLock<Store>,
    /// Tags resolved since start (or since [`Puller::forget_tags`]).
    resolved: Mutex<HashMap<String, ContentDigest>>,
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

    /// The store, opened at the first pull; a store that cannot be
    /// opened is tried again at the next.
    fn store(&self) -> Result<&Store, PullError> {
        if let Some(store) = self.store.get() {
            return Ok(store);
        }
        let dir = self.dir.as_ref().ok_or_else(|| {
            PullError::Refused(
                "there is no trusted cache directory to keep pulled plugins in".into(),
            )
        })?;
        let store = Store::open(dir)?;
        Ok(self.store.get_or_init(|| store))
    }

    /// Makes the next pulls resolve their tags again.
    pub fn forget_tags(&self) {
        self.resolved.lock().expect("never poisoned").clear();
    }

    /// Records that `tag` (from [`Pulled::tag`]) names `manifest`, now
    /// that its guest runs.
    pub fn record(&self, tag: &str, manifest: ContentDigest) {
        if let Ok(store) = self.store() {
            if let Err(err) = store.set_tag(tag, manifest) {
                tracing::warn!(error = %err, "cannot record a resolved tag");
            }
        }
        let mut resolved = self.resolved.lock().expect("never poisoned");
        resolved.insert(tag.to_string(), manifest);
    }

    /// Pulls every request, concurrently, each within [`PULL_DEADLINE`],
    /// on a thread of its own (callers may be inside an async runtime or
    /// not).
    pub fn pull_all(&self, requests: &[PullRequest<'_>]) -> Vec<Result<Pulled, PullError>> {
        if requests.is_empty() {
            return Vec::new();
        }
        let pulls = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|e| format!("cannot start the pulls: {e}"))?;
                    Ok(runtime.block_on(futures_util::future::join_all(
                        requests.iter().map(|request| self.pull(request)),
                    )))
                })
                .join()
                .unwrap_or_else(|_| Err("a pull panicked".to_string()))
        });
        pulls.unwrap_or_else(|reason| {
            requests
                .iter()
                .map(|_| Err(PullError::Unreachable(reason.clone())))
                .collect()
        })
    }

    /// Pulls one source, the registry's part within [`PULL_DEADLINE`]. The
    /// error names the manifest digest once known.
    async fn pull(&self, request: &PullRequest<'_>) -> Result<Pulled, PullError> {
        let source = request.source;
        let store = self.store()?;
        let key = match &source.verify_key {
            Some(file) => Some(PublicKey::read(file)?),
            None if source.require_signature => return Err(PullError::Refused(
                "its section names no verify key, and [defaults] require-signature = true admits only signed plugins".into(),
            )),
            None => None,
        };
        let artifact = Artifact {
            store,
            reference: &source.reference,
            key: key.as_ref(),
        };
        if let Some(digest) = source.reference.digest() {
            if let Ok(found) = artifact.assemble(None, digest).await {
                return Ok(artifact.pulled(digest, found, None, None));
            }
        }
        let from_registry = self.pull_from_registry(&artifact, &source.access);
        let pulled = tokio::time::timeout(PULL_DEADLINE, from_registry)
            .await
            .unwrap_or_else(|_| {
                Err(PullError::Unreachable(format!(
                    "the pull took longer than {PULL_DEADLINE:?}"
                )))
            });
        match pulled {
            Err(PullError::Unreachable(reason)) => self.fallback(&artifact, request, reason).await,
            other => other,
        }
    }

    /// Resolves and pulls from the registry.
    async fn pull_from_registry(
        &self,
        artifact: &Artifact<'_>,
        access: &Access,
    ) -> Result<Pulled, PullError> {
        // A key or CA file being replaced (a Secret's update) is worth
        // another try.
        let registry =
            Registry::connect(artifact.reference, access).map_err(PullError::Unreachable)?;
        let (digest, tag) = match artifact.reference.digest() {
            Some(digest) => (digest, None),
            None => {
                let key = artifact.tag_key();
                let digest = self.resolve(artifact, &registry, &key).await?;
                (digest, Some(key))
            }
        };
        let found = artifact
            .assemble(Some(&registry), digest)
            .await
            .map_err(|e| e.context(format_args!("manifest sha256:{digest}")))?;
        Ok(artifact.pulled(digest, found, None, tag))
    }

    /// The manifest digest the tag names: resolved before, or asked of the
    /// registry (and the manifest stored).
    async fn resolve(
        &self,
        artifact: &Artifact<'_>,
        registry: &Registry,
        key: &str,
    ) -> Result<ContentDigest, PullError> {
        if let Some(digest) = self.resolved.lock().expect("never poisoned").get(key) {
            return Ok(*digest);
        }
        let (bytes, digest) = registry
            .manifest(&artifact.reference.client_reference())
            .await?;
        artifact.keep(&bytes)?;
        Ok(digest)
    }

    /// With the registry unreachable: the manifest the tag last resolved
    /// to, else the one running, if it passes the section offline.
    async fn fallback(
        &self,
        artifact: &Artifact<'_>,
        request: &PullRequest<'_>,
        reason: String,
    ) -> Result<Pulled, PullError> {
        let recorded = match artifact.reference.digest() {
            None => artifact.store.tag(&artifact.tag_key()),
            Some(_) => None,
        };
        for digest in recorded.into_iter().chain(request.running) {
            if let Ok(found) = artifact.assemble(None, digest).await {
                let stale = match artifact.reference.digest() {
                    Some(pinned) if pinned != digest => format!(
                        "{reason}; running sha256:{digest} until sha256:{pinned} can be pulled"
                    ),
                    _ => reason,
                };
                return Ok(artifact.pulled(digest, found, Some(stale), None));
            }
        }
        Err(PullError::Unreachable(reason))
    }
}

/// One artifact being put together from the store and, if given, the
/// registry.
struct Artifact<'a> {
    store: &'a Store,
    reference: &'a OciReference,
    key: Option<&'a PublicKey>,
}

impl Artifact<'_> {
    /// Tags are recorded per reference and key: what resolved and
    /// verified under one key says nothing for another.
    fn tag_key(&self) -> String {
        let key = self.key.map_or("unsigned".to_string(), |k| {
            format!("key sha256:{}", k.fingerprint())
        });
        format!("{} {key}", self.reference)
    }

    /// Writes `bytes` to the store; a store that cannot be written (a
    /// full disk) is worth another try.
    fn keep(&self, bytes: &[u8]) -> Result<(), PullError> {
        self.store
            .put_blob(bytes)
            .map(drop)
            .map_err(PullError::Unreachable)
    }

    fn pulled(
        &self,
        digest: ContentDigest,
        (component, plugin_id): (Vec<u8>, Option<GuestId>),
        stale: Option<String>,
        tag: Option<String>,
    ) -> Pulled {
        Pulled {
            component,
            manifest: digest,
            plugin_id,
            signed: self.key.is_some(),
            stale,
            tag,
        }
    }

    /// The component of manifest `digest`, every byte checked and the
    /// signature verified, from the store and, for what it lacks, from
    /// `registry` (offline if none).
    async fn assemble(
        &self,
        registry: Option<&Registry>,
        digest: ContentDigest,
    ) -> Result<(Vec<u8>, Option<GuestId>), PullError> {
        let at = self.reference.by_digest(digest);
        let manifest = match self.store.blob(digest, MAX_MANIFEST) {
            Some(bytes) => bytes,
            None => {
                let (bytes, _) = online(registry, "its manifest")?.manifest(&at).await?;
                self.keep(&bytes)?;
                bytes
            }
        };
        let manifest = PluginManifest::parse(&manifest)?;
        let (layer, size) = manifest.component_digest()?;
        let component = self
            .blob(registry, &at, layer, size, MAX_PLUGIN_FILE)
            .await?;
        if let Some(key) = self.key {
            self.signature(registry, digest, key).await?;
        }
        Ok((component, manifest.plugin_id()))
    }

    /// Blob `digest` of declared `size`, refused over `cap` before it is
    /// looked for.
    async fn blob(
        &self,
        registry: Option<&Registry>,
        at: &Reference,
        digest: ContentDigest,
        size: u64,
        cap: u64,
    ) -> Result<Vec<u8>, PullError> {
        if size > cap {
            return Err(PullError::Refused(format!(
                "blob sha256:{digest} declares {size} bytes, more than the {cap} accepted"
            )));
        }
        if let Some(bytes) = self.store.blob(digest, cap) {
            return Ok(bytes);
        }
        let bytes = online(registry, "a blob")?.blob(at, digest, size).await?;
        self.keep(&bytes)?;
        Ok(bytes)
    }

    /// Verifies the signature of manifest `digest` with `key`: the one
    /// that verified before, else the registry's (recorded once it
    /// verifies).
    async fn signature(
        &self,
        registry: Option<&Registry>,
        digest: ContentDigest,
        key: &PublicKey,
    ) -> Result<(), PullError> {
        let tag = self.reference.at_tag(&signature_tag(digest));
        let stored = self.store.signature(digest, key.fingerprint());
        if let Some(bytes) = stored.and_then(|d| self.store.blob(d, MAX_MANIFEST)) {
            if self
                .check_signatures(None, &tag, &bytes, digest, key)
                .await
                .is_ok()
            {
                return Ok(());
            }
        }
        let (bytes, signature) = online(registry, "its signature")?
            .manifest(&tag)
            .await
            .map_err(|e| {
                e.context(format_args!(
                    "it has no signature (tag {})",
                    signature_tag(digest)
                ))
            })?;
        self.check_signatures(registry, &tag, &bytes, digest, key)
            .await?;
        self.keep(&bytes)?;
        self.store
            .set_signature(digest, key.fingerprint(), signature)
            .map_err(PullError::Unreachable)?;
        Ok(())
    }

    /// Whether one of the first [`MAX_SIGNATURES`] signature layers of
    /// signature manifest `bytes` verifies; a layer that does not is
    /// passed over, not fatal.
    async fn check_signatures(
        &self,
        registry: Option<&Registry>,
        tag: &Reference,
        bytes: &[u8],
        digest: ContentDigest,
        key: &PublicKey,
    ) -> Result<(), PullError> {
        let layers = artifact::layers(bytes)
            .map_err(|e| PullError::Refused(format!("its signature manifest is {e}")))?;
        let name = self.reference.name();
        let mut reasons = Vec::new();
        let mut unreachable = None;
        let signatures = layers
            .iter()
            .filter(|l| l.media_type == PAYLOAD_MEDIA_TYPE)
            .take(MAX_SIGNATURES);
        for layer in signatures {
            let Some(signature) = layer
                .annotations
                .as_ref()
                .and_then(|a| a.get(SIGNATURE_ANNOTATION))
            else {
                reasons.push(format!(
                    "a signature layer has no {SIGNATURE_ANNOTATION} annotation"
                ));
                continue;
            };
            let payload = match layer.digest.parse() {
                Ok(payload) => {
                    let size = u64::try_from(layer.size).unwrap_or(u64::MAX);
                    self.blob(registry, tag, payload, size, MAX_PAYLOAD).await
                }
                Err(e) => Err(PullError::Refused(e)),
            };
            match payload {
                Ok(payload) => match key.verify(&payload, signature, digest, &name) {
                    Ok(()) => return Ok(()),
                    Err(reason) => reasons.push(reason),
                },
                Err(PullError::Unreachable(reason)) => unreachable = Some(reason),
                Err(PullError::Refused(reason)) => reasons.push(reason),
            }
        }
        // A signature that could not be fetched may be the one that holds.
        if let Some(reason) = unreachable {
            return Err(PullError::Unreachable(reason));
        }
        if reasons.is_empty() {
            reasons.push("its signature manifest holds no signatures".into());
        }
        Err(PullError::Refused(format!(
            "not signed by the configured key: {}",
            reasons.join("; ")
        )))
    }
}

/// The registry, or the error of looking for `what` offline.
fn online<'r>(registry: Option<&'r Registry>, what: &str) -> Result<&'r Registry, PullError> {
    registry.ok_or_else(|| PullError::Unreachable(format!("{what} is not in the store")))
}
