//! Registry credentials from a Docker `config.json` (`auths`, as `docker
//! login`, `podman login` and `crane auth login` write it). Credential
//! helpers (`credsStore`, `credHelpers`) are programs; a daemon that runs
//! untrusted guests does not run them, and says so.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use base64::{engine::general_purpose::STANDARD, Engine as _};
use oci_client::secrets::RegistryAuth;
use serde::Deserialize;

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    creds_store: Option<String>,
    #[serde(default)]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
    identitytoken: Option<String>,
}

/// The config file looked in: `explicit`, else `$DOCKER_CONFIG/config.json`,
/// else `~/.docker/config.json`.
pub fn config_file(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(file) = explicit {
        return Some(file.to_path_buf());
    }
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return Some(Path::new(&dir).join("config.json"));
    }
    std::env::var_os("HOME").map(|home| Path::new(&home).join(".docker/config.json"))
}

/// The credentials for `registry` (`host[:port]`) in `file`; anonymous
/// when the file or its entry is missing. A file that exists and cannot
/// be used is an error.
pub fn for_registry(file: Option<&Path>, registry: &str) -> Result<RegistryAuth, String> {
    let Some(file) = file else {
        return Ok(RegistryAuth::Anonymous);
    };
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(RegistryAuth::Anonymous),
        Err(e) => {
            return Err(format!(
                "cannot read registry credentials {}: {e}",
                file.display()
            ))
        }
    };
    let config: DockerConfig = serde_json::from_str(&text)
        .map_err(|e| format!("invalid registry credentials {}: {e}", file.display()))?;
    let entry = config
        .auths
        .iter()
        .find(|(key, _)| names_registry(key, registry));
    match entry {
        Some((_, entry)) => entry.auth().map_err(|e| {
            format!(
                "registry credentials {} for {registry}: {e}",
                file.display()
            )
        }),
        None => {
            if config.creds_store.is_some() || config.cred_helpers.contains_key(registry) {
                tracing::warn!(file = %file.display(), registry, "credential helpers are not run; write the registry's credentials under auths");
            }
            Ok(RegistryAuth::Anonymous)
        }
    }
}

/// Whether an `auths` key names `registry`: `host`, or a URL of it as
/// older clients wrote (`https://host/v1/`; Docker Hub's is
/// `https://index.docker.io/v1/`).
fn names_registry(key: &str, registry: &str) -> bool {
    let host = key
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or_default();
    host == registry || (registry == "docker.io" && host == "index.docker.io")
}

impl AuthEntry {
    fn auth(&self) -> Result<RegistryAuth, String> {
        if let (Some(user), Some(password)) = (&self.username, &self.password) {
            return Ok(RegistryAuth::Basic(user.clone(), password.clone()));
        }
        let Some(auth) = &self.auth else {
            if self.identitytoken.is_some() {
                // An OAuth refresh token, which the client cannot trade.
                tracing::warn!("registry credentials hold only an identity token, which is not used; log in with a user and password or token");
            }
            return Ok(RegistryAuth::Anonymous);
        };
        let decoded = STANDARD
            .decode(auth.trim())
            .map_err(|_| "its auth is not base64".to_string())?;
        let decoded =
            String::from_utf8(decoded).map_err(|_| "its auth is not UTF-8".to_string())?;
        let (user, password) = decoded
            .split_once(':')
            .ok_or_else(|| "its auth is not user:password".to_string())?;
        Ok(RegistryAuth::Basic(user.to_string(), password.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_by_host_or_url() {
        let dir = tempfile::TempDir::new().unwrap();
        let file = dir.path().join("config.json");
        let auth = STANDARD.encode("ci:s3cret");
        std::fs::write(
            &file,
            format!(
                r#"{{"auths": {{"https://registry.example.com/v1/": {{"auth": "{auth}"}},
                    "127.0.0.1:5000": {{"username": "u", "password": "p"}},
                    "broken.example.com": {{"auth": "not base64!"}}}}}}"#
            ),
        )
        .unwrap();
        // Debug output redacts passwords: compare the parts.
        let got = |registry| {
            for_registry(Some(&file), registry).map(|auth| match auth {
                RegistryAuth::Basic(user, password) => format!("{user}:{password}"),
                other => format!("{other:?}"),
            })
        };
        assert_eq!(got("registry.example.com").unwrap(), "ci:s3cret");
        assert_eq!(got("127.0.0.1:5000").unwrap(), "u:p");
        assert_eq!(got("other.example.com").unwrap(), "Anonymous");
        assert!(got("broken.example.com")
            .unwrap_err()
            .contains("not base64"));
        assert_eq!(
            format!(
                "{:?}",
                for_registry(Some(&dir.path().join("none.json")), "x").unwrap()
            ),
            "Anonymous"
        );
    }
}
