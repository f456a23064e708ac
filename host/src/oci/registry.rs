//! One registry, as the distribution protocol reaches it (`oci-client`):
//! TLS with the system roots and an optional CA file, plain HTTP only for
//! loopback hosts or where the operator says `insecure = true`, and the
//! credentials of a Docker `config.json` (never sent in clear to a
//! loopback port anyone could have bound). Layers are capped before and
//! while they download, manifests once read (the client reads a manifest
//! whole), and everything is checked against its digest before it is
//! returned. Failures of the registry are [`PullError::Unreachable`],
//! failed checks [`PullError::Refused`].

use std::{path::PathBuf, sync::Once, time::Duration};

use futures_util::StreamExt;
use oci_client::{
    client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol},
    errors::OciDistributionError,
    manifest::{OciDescriptor, OCI_IMAGE_MEDIA_TYPE},
    secrets::RegistryAuth,
    Client, Reference,
};

use super::{
    artifact::{MANIFEST_MEDIA_TYPES, MAX_MANIFEST},
    credentials, read_trusted, OciReference, PullError,
};
use crate::{
    runtime::ContentDigest,
    untrusted::{GuestText, MAX_MESSAGE},
};

/// How to reach a registry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Access {
    /// Plain HTTP to a host that is not loopback.
    pub insecure: bool,
    /// PEM certificates to trust beside the system's.
    pub ca: Option<PathBuf>,
    /// The Docker `config.json` to take credentials from.
    pub credentials: Option<PathBuf>,
}

/// A connection to one registry.
pub struct Registry {
    client: Client,
    auth: RegistryAuth,
}

/// Longest wait for a registry to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for the next bytes of a response.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

impl Registry {
    /// A client for the registry of `reference`.
    pub fn connect(reference: &OciReference, access: &Access) -> Result<Registry, String> {
        install_crypto_provider();
        let protocol = if protocol_is_clear(access, reference) {
            ClientProtocol::Http
        } else {
            ClientProtocol::Https
        };
        // Whoever can write the CA file can stand in for the registry.
        let extra_root_certificates = match &access.ca {
            Some(file) => vec![Certificate {
                encoding: CertificateEncoding::Pem,
                data: read_trusted(file, "registry CA")?,
            }],
            None => Vec::new(),
        };
        let config = ClientConfig {
            protocol,
            extra_root_certificates,
            platform_resolver: None,
            connect_timeout: Some(CONNECT_TIMEOUT),
            read_timeout: Some(READ_TIMEOUT),
            ..ClientConfig::default()
        };
        // try_from, not new: new falls back to defaults on a bad CA file.
        let client = Client::try_from(config).map_err(|e| {
            format!(
                "cannot set up a client for {}: {}",
                reference.registry(),
                describe(&e)
            )
        })?;
        let auth = if protocol_is_clear(access, reference) && !access.insecure {
            RegistryAuth::Anonymous
        } else {
            let file = credentials::config_file(access.credentials.as_deref());
            credentials::for_registry(file.as_deref(), reference.registry())?
        };
        Ok(Registry { client, auth })
    }

    /// The manifest `reference` names, and its digest, computed here.
    pub async fn manifest(
        &self,
        reference: &Reference,
    ) -> Result<(Vec<u8>, ContentDigest), PullError> {
        let (bytes, _) = self
            .client
            .pull_manifest_raw(reference, &self.auth, MANIFEST_MEDIA_TYPES)
            .await
            .map_err(|e| classify("cannot pull its manifest", &e))?;
        if bytes.len() as u64 > MAX_MANIFEST {
            return Err(PullError::Refused(format!(
                "its manifest has {} bytes, more than the {MAX_MANIFEST} accepted",
                bytes.len()
            )));
        }
        let digest = ContentDigest::of(&bytes);
        if let Some(pinned) = reference
            .digest()
            .filter(|p| *p != format!("sha256:{digest}"))
        {
            return Err(PullError::Refused(format!(
                "the registry sent a manifest of digest sha256:{digest} for {pinned}"
            )));
        }
        Ok((bytes.to_vec(), digest))
    }

    /// Blob `digest` of the repository of `reference`, which its manifest
    /// says has `size` bytes (at most `cap`, checked by the caller before
    /// asking): refused while downloading when more bytes come.
    pub async fn blob(
        &self,
        reference: &Reference,
        digest: ContentDigest,
        size: u64,
    ) -> Result<Vec<u8>, PullError> {
        let descriptor = OciDescriptor {
            digest: format!("sha256:{digest}"),
            size: size as i64,
            ..OciDescriptor::default()
        };
        let what = format!("cannot pull blob sha256:{digest}");
        let response = self
            .client
            .pull_blob_stream(reference, &descriptor)
            .await
            .map_err(|e| classify(&what, &e))?;
        let too_long = || {
            PullError::Refused(format!(
                "blob sha256:{digest} sends more than the {size} bytes its manifest declares"
            ))
        };
        if response.content_length.is_some_and(|length| length > size) {
            return Err(too_long());
        }
        // Reserved as it comes: the declared size is the registry's word.
        let mut bytes = Vec::new();
        let mut stream = response.stream;
        while let Some(chunk) = stream.next().await {
            // Cut off, or oci-client's own digest check: tried again.
            let chunk = chunk.map_err(|e| unreachable(&what, &e))?;
            if (bytes.len() + chunk.len()) as u64 > size {
                return Err(too_long());
            }
            bytes.extend_from_slice(&chunk);
        }
        let got = ContentDigest::of(&bytes);
        if got != digest {
            return Err(PullError::Refused(format!(
                "blob sha256:{digest} came with bytes of digest sha256:{got}"
            )));
        }
        Ok(bytes)
    }

    /// Uploads `bytes` as a blob of the repository of `reference`.
    pub async fn push_blob(&self, reference: &Reference, bytes: &[u8]) -> Result<(), String> {
        self.client
            .store_auth_if_needed(reference.resolve_registry(), &self.auth)
            .await;
        let digest = format!("sha256:{}", ContentDigest::of(bytes));
        self.client
            .push_blob(reference, bytes.to_vec(), &digest)
            .await
            .map(drop)
            .map_err(|e| {
                format!(
                    "cannot push blob {digest} to {}: {}",
                    reference.whole(),
                    describe(&e)
                )
            })
    }

    /// Uploads an OCI image manifest under the tag or digest of `reference`.
    pub async fn push_manifest(
        &self,
        reference: &Reference,
        manifest: &[u8],
    ) -> Result<(), String> {
        self.client
            .store_auth_if_needed(reference.resolve_registry(), &self.auth)
            .await;
        let media_type = http::HeaderValue::from_static(OCI_IMAGE_MEDIA_TYPE);
        self.client
            .push_manifest_raw(reference, manifest.to_vec(), media_type)
            .await
            .map(drop)
            .map_err(|e| {
                format!(
                    "cannot push the manifest to {}: {}",
                    reference.whole(),
                    describe(&e)
                )
            })
    }
}

/// Whether the registry is spoken to in plain HTTP.
fn protocol_is_clear(access: &Access, reference: &OciReference) -> bool {
    access.insecure || reference.is_loopback()
}

/// rustls needs its crypto provider chosen once per process: ring.
fn install_crypto_provider() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        rustls::crypto::ring::default_provider()
            .install_default()
            .ok();
    });
}

/// A failure of the registry, its text (which the registry may have
/// chosen) made safe to log.
fn unreachable(what: &str, error: &dyn std::error::Error) -> PullError {
    PullError::Unreachable(safe_text(what, error))
}

/// What the registry's answer makes of a request: a refusal when it
/// answered that the thing is not there or not ours to have (4xx: not
/// found, unauthorized, denied; not a rate limit or a timeout), else a
/// failure to try again.
fn classify(what: &str, error: &OciDistributionError) -> PullError {
    use OciDistributionError as E;
    let answered = match error {
        E::RegistryError { .. }
        | E::UnauthorizedError { .. }
        | E::AuthenticationFailure(_)
        | E::ImageManifestNotFoundError(_)
        | E::DigestError(_) => true,
        E::ServerError { code, .. } => (400..500).contains(code) && ![408, 429].contains(code),
        _ => false,
    };
    match answered {
        true => PullError::Refused(safe_text(what, error)),
        false => PullError::Unreachable(safe_text(what, error)),
    }
}

fn safe_text(what: &str, error: &dyn std::error::Error) -> String {
    format!("{what}: {}", GuestText::new(&describe(error), MAX_MESSAGE))
}

/// An error and its causes on one line, each cause once.
fn describe(error: &dyn std::error::Error) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts
        .join(": ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_refuse_and_failures_are_tried_again() {
        use OciDistributionError as E;
        let server = |code| E::ServerError {
            code,
            url: "https://r.example/v2/a/manifests/v1".into(),
            message: "\u{1b}[2Jgone".into(),
        };
        let refused = classify("cannot pull its manifest", &server(404));
        assert!(!refused.is_transient());
        assert!(
            !refused.to_string().contains('\u{1b}'),
            "escaped: {refused}"
        );
        for code in [408, 429, 500, 503] {
            assert!(classify("x", &server(code)).is_transient(), "{code}");
        }
        let unauthorized = E::UnauthorizedError { url: "u".into() };
        assert!(!classify("x", &unauthorized).is_transient());
    }
}
