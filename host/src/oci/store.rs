//! The store of pulled artifacts, in the cache directory: every manifest,
//! layer and signature by its sha256 (`blobs/HEX`), what each tag last
//! resolved to for a plugin that then verified and loaded (`tags/`), and
//! the signature manifest that verified each manifest with each key
//! (`signatures/`). A blob is checked against its name whenever it is
//! read, so a corrupt or altered entry is never used. It is trusted as
//! the plugin directory is: directories others can write to are not used.

use std::{io::Read, path::Path};

use cap_std::fs::Dir;

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
        let shown = path.display();
        let dir = open_cache_dir(path).map_err(|e| format!("cannot open {shown}: {e}"))?;
        check_trusted_dir(&dir).map_err(|reason| format!("{shown} {reason}"))?;
        for sub in [BLOBS, TAGS, SIGNATURES] {
            let sub_dir = dir
                .create_dir_all(sub)
                .and_then(|()| dir.open_dir(sub))
                .map_err(|e| format!("cannot open {shown}/{sub}: {e}"))?;
            check_trusted_dir(&sub_dir).map_err(|reason| format!("{shown}/{sub} {reason}"))?;
        }
        Ok(Store { dir })
    }

    /// The blob `digest`, if stored, intact and at most `cap` bytes. A
    /// blob that does not match its name is removed; one over the cap is
    /// only not used here.
    pub fn blob(&self, digest: ContentDigest, cap: u64) -> Option<Vec<u8>> {
        let name = format!("{BLOBS}/{digest}");
        let mut bytes = Vec::new();
        self.dir
            .open(&name)
            .ok()?
            .take(cap + 1)
            .read_to_end(&mut bytes)
            .ok()?;
        if bytes.len() as u64 > cap {
            return None;
        }
        if ContentDigest::of(&bytes) != digest {
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

    /// What tag `key` (a reference and how it is verified) last resolved
    /// to.
    pub fn tag(&self, key: &str) -> Option<ContentDigest> {
        self.pointer(TAGS, key)
    }

    /// Records that tag `key` resolved to `digest`.
    pub fn set_tag(&self, key: &str, digest: ContentDigest) -> Result<(), String> {
        self.set_pointer(TAGS, key, digest)
    }

    /// The signature manifest that verified manifest `signed` with the key
    /// of fingerprint `key`.
    pub fn signature(&self, signed: ContentDigest, key: ContentDigest) -> Option<ContentDigest> {
        self.pointer(SIGNATURES, &format!("{signed} {key}"))
    }

    /// Records the signature manifest that verified manifest `signed` with
    /// the key of fingerprint `key`.
    pub fn set_signature(
        &self,
        signed: ContentDigest,
        key: ContentDigest,
        signature: ContentDigest,
    ) -> Result<(), String> {
        self.set_pointer(SIGNATURES, &format!("{signed} {key}"), signature)
    }

    /// Pointers are named by the sha256 of their key, so any key is a
    /// plain file name.
    fn pointer_name(kind: &str, key: &str) -> String {
        format!("{kind}/{}", ContentDigest::of(key.as_bytes()))
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
        let text = format!("sha256:{digest}\n{key}\n");
        self.write(&Self::pointer_name(kind, key), text.as_bytes())
    }

    /// Writes through a temporary name and renames, so a reader never
    /// sees a partial file.
    fn write(&self, name: &str, bytes: &[u8]) -> Result<(), String> {
        // Random, not the pid: two daemons in containers sharing the
        // store are often both pid 1.
        let temp = format!("{name}.{:016x}.tmp", rand::random::<u64>());
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
        assert_eq!(
            store.blob(digest, 100).unwrap(),
            b"component",
            "kept all the same"
        );
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
        store
            .set_tag("oci://r.example/a:v1 unsigned", digest)
            .unwrap();
        assert_eq!(store.tag("oci://r.example/a:v1 unsigned"), Some(digest));
        assert_eq!(store.tag("oci://r.example/a:v2 unsigned"), None);
        let (key, other_key) = (ContentDigest::of(b"key"), ContentDigest::of(b"other"));
        let signature = ContentDigest::of(b"sig");
        store.set_signature(digest, key, signature).unwrap();
        assert_eq!(store.signature(digest, key), Some(signature));
        assert_eq!(store.signature(digest, other_key), None);
    }

    #[test]
    fn a_store_directory_others_can_write_is_not_used() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::TempDir::new().unwrap();
        Store::open(root.path()).unwrap();
        let tags = root.path().join("tags");
        std::fs::set_permissions(&tags, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = Store::open(root.path()).err().unwrap();
        assert!(err.contains("/tags is writable by"), "{err}");
    }
}
