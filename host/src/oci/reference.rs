//! `oci://HOST/REPO[:TAG][@sha256:DIGEST]`: where a plugin comes from.

use std::{fmt, net::IpAddr, str::FromStr};

use oci_client::Reference;

use crate::runtime::ContentDigest;

/// The scheme every registry reference starts with.
pub const SCHEME: &str = "oci://";

/// A registry reference that names its registry host and, if pinned, a
/// sha256 manifest digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OciReference {
    inner: Reference,
    digest: Option<ContentDigest>,
}

impl FromStr for OciReference {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let rest = text.strip_prefix(SCHEME).ok_or_else(|| {
            format!("{text:?} is not a registry reference: write oci://HOST/REPO:TAG@sha256:DIGEST")
        })?;
        // Without a host part the reference grammar falls back to Docker
        // Hub; a node's plugins name their registry.
        let host = rest.split('/').next().unwrap_or_default();
        let names_host =
            rest.contains('/') && (host.contains('.') || host.contains(':') || host == "localhost");
        if !names_host {
            return Err(format!(
                "{text:?} names no registry host: write oci://HOST/REPO:TAG"
            ));
        }
        let inner: Reference = rest
            .parse()
            .map_err(|e| format!("{text:?} is not a valid OCI reference: {e}"))?;
        let digest = inner
            .digest()
            .map(|d| {
                d.parse::<ContentDigest>()
                    .map_err(|e| format!("{text:?}: {e} (only sha256 digests are accepted)"))
            })
            .transpose()?;
        Ok(OciReference { inner, digest })
    }
}

impl fmt::Display for OciReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME}{}", self.inner.whole())
    }
}

impl OciReference {
    /// The registry, `host[:port]`.
    pub fn registry(&self) -> &str {
        self.inner.registry()
    }

    /// The repository on it.
    pub fn repository(&self) -> &str {
        self.inner.repository()
    }

    /// The tag, if the reference has one.
    pub fn tag(&self) -> Option<&str> {
        self.inner.tag()
    }

    /// The manifest digest it pins, if any.
    pub fn digest(&self) -> Option<ContentDigest> {
        self.digest
    }

    /// `registry/repository`, as cosign names a signed image.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry(), self.repository())
    }

    /// The client's reference: by digest if pinned, else by tag.
    pub fn client_reference(&self) -> Reference {
        match self.digest {
            Some(digest) => self.by_digest(digest),
            None => self.inner.clone(),
        }
    }

    /// The same repository at manifest `digest`.
    pub fn by_digest(&self, digest: ContentDigest) -> Reference {
        Reference::with_digest(
            self.registry().to_string(),
            self.repository().to_string(),
            format!("sha256:{digest}"),
        )
    }

    /// The same repository at `tag`.
    pub fn at_tag(&self, tag: &str) -> Reference {
        Reference::with_tag(
            self.registry().to_string(),
            self.repository().to_string(),
            tag.to_string(),
        )
    }

    /// This reference pinned to `digest`, for people to copy.
    pub fn pinned(&self, digest: ContentDigest) -> String {
        let tag = self.tag().map(|t| format!(":{t}")).unwrap_or_default();
        format!("{SCHEME}{}{tag}@sha256:{digest}", self.name())
    }

    /// Whether the registry is on this host (plain HTTP is allowed there).
    pub fn is_loopback(&self) -> bool {
        // The reference grammar has no IPv6 literals: host[:port].
        let host = self.registry().split(':').next().unwrap_or_default();
        host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn references_name_their_host_and_pin_sha256_only() {
        let pinned: OciReference = format!("oci://registry.example.com/plugins/env:v1@{DIGEST}")
            .parse()
            .unwrap();
        assert_eq!(pinned.registry(), "registry.example.com");
        assert_eq!(pinned.repository(), "plugins/env");
        assert_eq!(pinned.tag(), Some("v1"));
        assert_eq!(pinned.digest().unwrap().to_string(), DIGEST[7..]);
        assert_eq!(
            pinned.to_string(),
            format!("oci://registry.example.com/plugins/env:v1@{DIGEST}")
        );
        let tagged: OciReference = "oci://127.0.0.1:5000/env:v2".parse().unwrap();
        assert_eq!(tagged.digest(), None);
        assert!(tagged.is_loopback());
        assert!(!pinned.is_loopback());
        for bad in [
            "registry.example.com/env:v1",
            "oci://env:v1",
            "oci://plugins/env:v1",
            "oci://registry.example.com/Env",
            "oci://registry.example.com/env@sha512:00",
        ] {
            assert!(bad.parse::<OciReference>().is_err(), "{bad}");
        }
    }

    #[test]
    fn loopback_hosts() {
        for (text, loopback) in [
            ("oci://localhost:5000/a", true),
            ("oci://127.0.0.7/a", true),
            ("oci://10.0.0.1:5000/a", false),
            ("oci://localhost.example.com/a", false),
        ] {
            let r: OciReference = text.parse().unwrap();
            assert_eq!(r.is_loopback(), loopback, "{text}");
        }
    }
}
