//! One registry, as the distribution protocol reaches it (`oci-client`):
//! TLS with the system roots and an optional CA file, plain HTTP only for
//! loopback hosts or where the operator says `insecure = true`, and the
//! credentials of a Docker `config.json`. Every byte read is capped and
//! checked against its digest before it is returned.

use std::{path::PathBuf, sync::Once, time::Duration};

use futures_util::StreamExt;
use oci_client::{
    client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol},
    manifest::{OciDescriptor, OCI_IMAGE_MEDIA_TYPE},
    secrets::RegistryAuth,
    Client, Reference,
};

use super::{
    artifact::{MANIFEST_MEDIA_TYPES, MAX_MANIFEST},
    credentials, OciReference,
};
use crate::runtime::ContentDigest;

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
        let protocol = if access.insecure || reference.is_loopback() {
            ClientProtocol::Http
        } else {
            ClientProtocol::Https
        };
        let extra_root_certificates = match &access.ca {
            Some(file) => vec![Certificate {
                encoding: CertificateEncoding::Pem,
                data: std::fs::read(file)
                    .map_err(|e| format!("cannot read registry CA {}: {e}", file.display()))?,
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
        let file = credentials::config_file(access.credentials.as_deref());
        let auth = credentials::for_registry(file.as_deref(), reference.registry())?;
        Ok(Registry { client, auth })
    }

    /// The manifest `reference` names, and its digest, computed here.
    pub async fn manifest(
        &self,
        reference: &Reference,
    ) -> Result<(Vec<u8>, ContentDigest), String> {
        let (bytes, _) = self
            .client
            .pull_manifest_raw(reference, &self.auth, MANIFEST_MEDIA_TYPES)
            .await
            .map_err(|e| format!("cannot pull its manifest: {}", describe(&e)))?;
        if bytes.len() as u64 > MAX_MANIFEST {
            return Err(format!(
                "its manifest has {} bytes, more than the {MAX_MANIFEST} accepted",
                bytes.len()
            ));
        }
        let digest = ContentDigest::of(&bytes);
        if let Some(pinned) = reference
            .digest()
            .filter(|p| *p != format!("sha256:{digest}"))
        {
            return Err(format!(
                "the registry sent a manifest of digest sha256:{digest} for {pinned}"
            ));
        }
        Ok((bytes.to_vec(), digest))
    }

    /// Blob `digest` of the repository of `reference`, which its manifest
    /// says has `size` bytes: refused before download when that is over
    /// `cap`, and while downloading when more bytes come.
    pub async fn blob(
        &self,
        reference: &Reference,
        digest: ContentDigest,
        size: u64,
        cap: u64,
    ) -> Result<Vec<u8>, String> {
        if size > cap {
            return Err(format!(
                "its layer sha256:{digest} declares {size} bytes, more than the {cap} accepted"
            ));
        }
        let descriptor = OciDescriptor {
            digest: format!("sha256:{digest}"),
            size: size as i64,
            ..OciDescriptor::default()
        };
        let response = self
            .client
            .pull_blob_stream(reference, &descriptor)
            .await
            .map_err(|e| format!("cannot pull its layer sha256:{digest}: {}", describe(&e)))?;
        let too_long = || {
            format!(
                "its layer sha256:{digest} sends more than the {size} bytes its manifest declares"
            )
        };
        if response.content_length.is_some_and(|length| length > size) {
            return Err(too_long());
        }
        let mut bytes = Vec::with_capacity(size as usize);
        let mut stream = response.stream;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk
                .map_err(|e| format!("cannot pull its layer sha256:{digest}: {}", describe(&e)))?;
            if (bytes.len() + chunk.len()) as u64 > size {
                return Err(too_long());
            }
            bytes.extend_from_slice(&chunk);
        }
        let got = ContentDigest::of(&bytes);
        if got != digest {
            return Err(format!("its layer's bytes have digest sha256:{got}, not the sha256:{digest} its manifest names"));
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

/// rustls needs its crypto provider chosen once per process: ring.
fn install_crypto_provider() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        rustls::crypto::ring::default_provider()
            .install_default()
            .ok();
    });
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
