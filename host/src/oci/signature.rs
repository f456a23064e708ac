//! Cosign signatures, checked offline against a public key: the format
//! `cosign sign --key` writes with `--new-bundle-format=false
//! --tlog-upload=false`. The signature of manifest `sha256:HEX` is the
//! manifest tagged `sha256-HEX.sig` in the same repository; each of its
//! layers is a "simple signing" JSON payload naming the signed manifest
//! digest, with the base64 DER ECDSA P-256/SHA-256 signature of the
//! payload's bytes in an annotation.

use std::path::Path;

use base64::{engine::general_purpose::STANDARD, Engine as _};
use p256::{
    ecdsa::{
        signature::Signer as _, signature::Verifier as _, Signature, SigningKey, VerifyingKey,
    },
    pkcs8::{DecodePrivateKey as _, DecodePublicKey as _},
};
use serde::{Deserialize, Serialize};

use super::read_trusted;
use crate::runtime::ContentDigest;

/// Media type of a signature layer.
pub const PAYLOAD_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// Annotation of a signature layer that holds the signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// What the payload's `critical.type` says.
const PAYLOAD_TYPE: &str = "cosign container image signature";
/// Largest signature payload read.
pub const MAX_PAYLOAD: u64 = 64 << 10;

/// The tag cosign stores the signatures of manifest `digest` under.
pub fn signature_tag(digest: ContentDigest) -> String {
    format!("sha256-{digest}.sig")
}

/// A public key signatures are checked against.
#[derive(Clone, Debug)]
pub struct PublicKey {
    key: VerifyingKey,
    fingerprint: ContentDigest,
}

impl PublicKey {
    /// Reads a PEM `PUBLIC KEY` (as `cosign generate-key-pair` and
    /// `openssl ec -pubout` write it). Only ECDSA P-256 keys are accepted.
    /// Whoever can write it can sign: a key file others can write is
    /// refused, as plugin files are.
    pub fn read(file: &Path) -> Result<PublicKey, String> {
        let bytes = read_trusted(file, "verify key")?;
        let pem = String::from_utf8(bytes)
            .map_err(|_| format!("verify key {} is not PEM text", file.display()))?;
        // The key's identity: the base64 of its DER, however the PEM is
        // laid out.
        let body: String = pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .flat_map(|l| l.trim().chars())
            .collect();
        let fingerprint = ContentDigest::of(body.as_bytes());
        VerifyingKey::from_public_key_pem(&pem)
            .map(|key| PublicKey { key, fingerprint })
            .map_err(|e| {
                format!(
                    "verify key {} is not a PEM ECDSA P-256 public key (cosign's default): {e}",
                    file.display()
                )
            })
    }

    /// What tells this key from others, for the store's records.
    pub fn fingerprint(&self) -> ContentDigest {
        self.fingerprint
    }

    /// Whether `signature` (base64 DER) over `payload` is this key's and
    /// the payload signs manifest `digest` of image `name`
    /// (`registry/repository`): a signature of another repository's
    /// artifact does not pass for this one's. The error says which part
    /// failed.
    pub fn verify(
        &self,
        payload: &[u8],
        signature: &str,
        digest: ContentDigest,
        name: &str,
    ) -> Result<(), String> {
        let der = STANDARD
            .decode(signature.trim())
            .map_err(|_| "its signature is not base64".to_string())?;
        let signature = Signature::from_der(&der)
            .map_err(|_| "its signature is not a DER ECDSA signature".to_string())?;
        self.key
            .verify(payload, &signature)
            .map_err(|_| "its signature is not made by the configured key".to_string())?;
        let (signed, image) = signed_image(payload)?;
        if signed != digest {
            return Err(format!("it signs sha256:{signed}, another manifest"));
        }
        if image != name {
            return Err(format!(
                "it signs an artifact of {image:?}, not of {name:?}"
            ));
        }
        Ok(())
    }
}

/// A private key that signs, for `nri-wasm push --sign-key`: PEM PKCS#8
/// (`PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`, as `openssl ecparam
/// -genkey` writes it), ECDSA P-256.
pub struct PrivateKey(SigningKey);

impl PrivateKey {
    /// Reads the key from `file`.
    pub fn read(file: &Path) -> Result<PrivateKey, String> {
        let pem = std::fs::read_to_string(file)
            .map_err(|e| format!("cannot read signing key {}: {e}", file.display()))?;
        let key = SigningKey::from_pkcs8_pem(&pem)
            .ok()
            .or_else(|| {
                p256::SecretKey::from_sec1_pem(&pem)
                    .ok()
                    .map(SigningKey::from)
            })
            .ok_or_else(|| {
                format!(
                    "signing key {} is not an unencrypted PEM ECDSA P-256 private key",
                    file.display()
                )
            })?;
        Ok(PrivateKey(key))
    }

    /// The payload that signs manifest `digest` of image `name`, and its
    /// signature (base64 DER).
    pub fn sign(&self, name: &str, digest: ContentDigest) -> (Vec<u8>, String) {
        let payload = serde_json::to_vec(&Payload {
            critical: Critical {
                identity: Identity {
                    docker_reference: name.to_string(),
                },
                image: Image {
                    docker_manifest_digest: format!("sha256:{digest}"),
                },
                kind: PAYLOAD_TYPE.to_string(),
            },
            optional: None,
        })
        .expect("a payload serializes");
        let signature: Signature = self.0.sign(&payload);
        (payload, STANDARD.encode(signature.to_der().as_bytes()))
    }
}

#[derive(Serialize, Deserialize)]
struct Payload {
    critical: Critical,
    optional: Option<serde_json::Value>,
}

#[derive(Serialize, Deserialize)]
struct Critical {
    identity: Identity,
    image: Image,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Serialize, Deserialize)]
struct Identity {
    #[serde(rename = "docker-reference")]
    docker_reference: String,
}

#[derive(Serialize, Deserialize)]
struct Image {
    #[serde(rename = "docker-manifest-digest")]
    docker_manifest_digest: String,
}

/// The manifest digest a payload signs, and of which image.
fn signed_image(payload: &[u8]) -> Result<(ContentDigest, String), String> {
    let payload: Payload = serde_json::from_slice(payload)
        .map_err(|e| format!("its payload is not a cosign simple signing payload: {e}"))?;
    if payload.critical.kind != PAYLOAD_TYPE {
        return Err(format!(
            "its payload is of type {:?}, not {PAYLOAD_TYPE:?}",
            payload.critical.kind
        ));
    }
    let digest = payload.critical.image.docker_manifest_digest.parse()?;
    Ok((digest, payload.critical.identity.docker_reference))
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::pkcs8::{EncodePublicKey as _, LineEnding};

    fn key_pair(dir: &Path, seed: u8) -> (PrivateKey, PublicKey) {
        let signing = SigningKey::from_slice(&[seed; 32]).unwrap();
        let public = dir.join(format!("{seed}.pub"));
        let pem = signing
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap();
        std::fs::write(&public, pem).unwrap();
        (PrivateKey(signing), PublicKey::read(&public).unwrap())
    }

    #[test]
    fn a_signature_holds_for_its_key_and_its_manifest_only() {
        let dir = tempfile::TempDir::new().unwrap();
        let (signer, key) = key_pair(dir.path(), 7);
        let (_, other_key) = key_pair(dir.path(), 8);
        let digest = ContentDigest::of(b"manifest");
        let name = "r.example/plugins/env";
        let (payload, signature) = signer.sign(name, digest);
        assert_eq!(key.verify(&payload, &signature, digest, name), Ok(()));
        assert_eq!(
            other_key
                .verify(&payload, &signature, digest, name)
                .unwrap_err(),
            "its signature is not made by the configured key"
        );
        let other = ContentDigest::of(b"other manifest");
        assert!(key
            .verify(&payload, &signature, other, name)
            .unwrap_err()
            .contains("another manifest"));
        let mut altered = payload.clone();
        altered[10] ^= 1;
        assert!(key.verify(&altered, &signature, digest, name).is_err());
        assert!(key
            .verify(&payload, &signature, digest, "r.example/plugins/other")
            .unwrap_err()
            .contains("not of \"r.example/plugins/other\""));
        assert!(key
            .verify(&payload, "!!", digest, name)
            .unwrap_err()
            .contains("base64"));
    }

    #[test]
    fn a_key_file_others_can_write_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::TempDir::new().unwrap();
        key_pair(dir.path(), 9);
        let file = dir.path().join("9.pub");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
        let err = PublicKey::read(&file).unwrap_err();
        assert!(
            err.contains("is writable by its group and everyone"),
            "{err}"
        );
    }

    #[test]
    fn signatures_made_by_openssl_verify() {
        // `openssl dgst -sha256 -sign` over a cosign payload, with a key
        // openssl made: the format cosign writes, made by another tool.
        let dir = tempfile::TempDir::new().unwrap();
        let run = |args: &[&str]| {
            let out = std::process::Command::new("openssl")
                .args(args)
                .current_dir(dir.path())
                .output()
                .expect("openssl runs");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            out.stdout
        };
        run(&[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "k.pem",
        ]);
        run(&["ec", "-in", "k.pem", "-pubout", "-out", "k.pub"]);
        let digest = ContentDigest::of(b"manifest");
        let payload = format!(
            r#"{{"critical":{{"identity":{{"docker-reference":"r.example/env"}},"image":{{"docker-manifest-digest":"sha256:{digest}"}},"type":"cosign container image signature"}},"optional":{{"by":"openssl"}}}}"#
        );
        std::fs::write(dir.path().join("payload"), &payload).unwrap();
        let der = run(&["dgst", "-sha256", "-sign", "k.pem", "payload"]);
        let key = PublicKey::read(&dir.path().join("k.pub")).unwrap();
        assert_eq!(
            key.verify(
                payload.as_bytes(),
                &STANDARD.encode(der),
                digest,
                "r.example/env"
            ),
            Ok(())
        );
        // The SEC1 key openssl wrote signs too.
        let signer = PrivateKey::read(&dir.path().join("k.pem")).unwrap();
        let (payload, signature) = signer.sign("r.example/env", digest);
        assert_eq!(
            key.verify(&payload, &signature, digest, "r.example/env"),
            Ok(())
        );
    }
}
