//! The store of pulled artifacts, in the cache directory: every manifest,
//! layer and signature by its sha256 (`blobs/HEX`), and what each tag and
//! each signed manifest last resolved to (`tags/`, `signatures/`). A blob
//! is checked against its name whenever it is read, so a corrupt or
//! altered entry is never used. It is trusted as the plugin directory is:
//! a directory others can write to is not used.

use std::{io::Read, path::Path};

use cap_std::fs::Dir;
use sha2::{Digest, Sha256};

use crate::runtime::{
    loader::{check_trusted_dir, open_cache_dir},
    ContentDigest,
};

const BLOBS: &str = "blobs";
const TAGS: &str = "tags";
const SIGNATURES: &str = "signatures";

/// The store.
pub struct Store {
    dir: Dir,
}

impl Store {
    /// Opens (creating if needed) the store at `path`.
    pub fn open(path: &Path) -> Result<Store, String> {
        let dir =
            open_cache_dir(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        check_trusted_dir(&dir).map_err(|reason| format!("{} {reason}", path.display()))?;
        for sub in [BLOBS, TAGS, SIGNATURES] {
            dir.create_dir_all(sub)
                .map_err(|e| format!("cannot create {}/{sub}: {e}", path.display()))?;
        }
        Ok(Store { dir })
    }

    /// The blob `digest`, if stored and intact. A blob that does not match
    /// its name is removed.
    pub fn blob(&self, digest: ContentDigest, cap: u64) -> Option<Vec<u8>> {
        let name = format!("{BLOBS}/{digest}");
        let mut bytes = Vec::new();
        self.dir
            .open(&name)
            .ok()?
            .take(cap + 1)
            .read_to_end(&mut bytes)
            .ok()?;
        if bytes.len() as u64 > cap || ContentDigest::of(&bytes) != digest {
            tracing::warn!(blob = %name, "store entry does not match its digest; removed");
            self.dir.remove_file(&name).ok();
            return None;
        }
        Some(bytes)
    }

    /// Keeps `bytes` under their digest.
    pub fn put_blob(&self, bytes: &[u8]) -> Result<ContentDigest, String> {
        let digest = ContentDigest::of(bytes);
        self.write(&format!("{BLOBS}/{digest}"), bytes)?;
        Ok(digest)
    }

    /// What `reference` (a tag) last resolved to.
    pub fn tag(&self, reference: &str) -> Option<ContentDigest> {
        self.pointer(TAGS, reference)
    }

    /// Records that `reference` resolved to `digest`.
    pub fn set_tag(&self, reference: &str, digest: ContentDigest) -> Result<(), String> {
        self.set_pointer(TAGS, reference, digest)
    }

    /// The signature manifest last found for manifest `signed`.
    pub fn signature(&self, signed: ContentDigest) -> Option<ContentDigest> {
        self.pointer(SIGNATURES, &signed.to_string())
    }

    /// Records the signature manifest of manifest `signed`.
    pub fn set_signature(
        &self,
        signed: ContentDigest,
        signature: ContentDigest,
    ) -> Result<(), String> {
        self.set_pointer(SIGNATURES, &signed.to_string(), signature)
    }

    /// Pointers are named by the sha256 of their key, so any key is a
    /// plain file name.
    fn pointer_name(kind: &str, key: &str) -> String {
        let hash: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
        format!("{kind}/{hex}")
    }

    fn pointer(&self, kind: &str, key: &str) -> Option<ContentDigest> {
        let text = self
            .dir
            .read_to_string(Self::pointer_name(kind, key))
            .ok()?;
        let (digest, recorded_key) = text.split_once('\n')?;
        // The key is kept beside the digest: a pointer is used only for
        // the key it was written for.
        (recorded_key.trim_end() == key).then(|| digest.parse().ok())?
    }

    fn set_pointer(&self, kind: &str, key: &str, digest: ContentDigest) -> Result<(), String> {
        self.write(
            &Self::pointer_name(kind, key),
            format!("sha256:{digest}\n{key}\n").as_bytes(),
        )
    }

    /// Writes through a temporary name and renames, so a reader never
    /// sees a partial file.
    fn write(&self, name: &str, bytes: &[u8]) -> Result<(), String> {
        let temp = format!("{name}.{}.tmp", std::process::id());
        let result = self
            .dir
            .write(&temp, bytes)
            .and_then(|()| self.dir.rename(&temp, &self.dir, name));
        result.map_err(|e| {
            self.dir.remove_file(&temp).ok();
            format!("cannot write {name} in the plugin store: {e}")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_are_checked_against_their_names_when_read() {
        let root = tempfile::TempDir::new().unwrap();
        let store = Store::open(root.path()).unwrap();
        let digest = store.put_blob(b"component").unwrap();
        assert_eq!(store.blob(digest, 100).unwrap(), b"component");
        assert_eq!(store.blob(digest, 3), None, "over the cap");
        let file = root.path().join(format!("blobs/{digest}"));
        std::fs::write(&file, b"altered").unwrap();
        assert_eq!(store.blob(digest, 100), None);
        assert!(!file.exists(), "an altered blob is removed");
    }

    #[test]
    fn pointers_answer_only_for_their_key() {
        let root = tempfile::TempDir::new().unwrap();
        let store = Store::open(root.path()).unwrap();
        let digest = ContentDigest::of(b"manifest");
        store.set_tag("oci://r.example/a:v1", digest).unwrap();
        assert_eq!(store.tag("oci://r.example/a:v1"), Some(digest));
        assert_eq!(store.tag("oci://r.example/a:v2"), None);
        store
            .set_signature(digest, ContentDigest::of(b"sig"))
            .unwrap();
        assert_eq!(store.signature(digest), Some(ContentDigest::of(b"sig")));
    }
}
