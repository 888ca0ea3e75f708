//! Docker `config.json` credentials: `auths` entries and credential helpers.
//!
//! People log in with `docker login`; reading the same file, and running the same
//! `docker-credential-*` helpers, lets porter use those logins for registries that DS's
//! credentials table does not list.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde_json::Value;

use super::decode::{Dialect, Node, Obj, read_file_if_exists};
use super::{Credential, CredentialSecret, Secret, normalize_registry_host, same_registry};
use crate::error::{Error, Result};

/// Standard base64, padding optional (some tools write `auth` without it).
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The server address Docker uses for Docker Hub in `auths` and with helpers.
const DOCKER_HUB_SERVER: &str = "https://index.docker.io/v1/";

/// Looks up credentials for `host` in a docker `config.json`: the helper named by
/// `credHelpers[host]`, else by `credsStore`; when there is none or it has nothing, the `auths`
/// entries (`identitytoken`, base64 `auth`, or `username`/`password`). Docker Hub's names
/// (`docker.io`, `index.docker.io`, `registry-1.docker.io`, `https://index.docker.io/v1/`) are
/// one registry.
///
/// A missing file, a helper that is not installed or has no credentials for the host yield
/// `Ok(None)`. Helpers are looked up on `PATH` and run synchronously; one that has not answered
/// within `timeout` is killed and the lookup fails, naming it.
pub fn docker_credential(
    config_path: &Path,
    host: &str,
    timeout: Duration,
) -> Result<Option<Credential>> {
    lookup(
        config_path,
        host,
        &std::env::var_os("PATH").unwrap_or_default(),
        timeout,
    )
}

/// [`docker_credential`] with helpers searched in `search_path` (a `PATH`-style list).
fn lookup(
    config_path: &Path,
    host: &str,
    search_path: &OsStr,
    timeout: Duration,
) -> Result<Option<Credential>> {
    let host = normalize_registry_host(host);
    if host.is_empty() {
        return Ok(None);
    }
    let Some(bytes) = read_file_if_exists(config_path, "read docker config")? else {
        tracing::debug!(path = %config_path.display(), "no docker config");
        return Ok(None);
    };
    let source_name = config_path.display().to_string();
    let error = |reason: String| Error::Config {
        source_name: source_name.clone(),
        reason,
    };
    let value: Value = serde_json::from_slice(&bytes).map_err(|err| error(err.to_string()))?;
    let Some(root) = Node::root(&value, Dialect::Json) else {
        return Ok(None);
    };
    let root = root.object().map_err(error)?;

    if let Some(helper) = configured_helper(&root, &host).map_err(error)?
        && let Some(credential) = run_helper(&helper, &host, search_path, timeout)?
    {
        return Ok(Some(credential));
    }
    if let Some(auths) = root.object("auths", "auths").map_err(error)? {
        for (key, entry) in auths.members() {
            if same_registry(key, &host)
                && let Some(credential) = auth_entry(key, &entry, &host).map_err(error)?
            {
                return Ok(Some(credential));
            }
        }
    }
    Ok(None)
}

/// The helper for `host`: its `credHelpers` entry, else `credsStore`.
fn configured_helper(root: &Obj<'_>, host: &str) -> Result<Option<String>, String> {
    if let Some(helpers) = root.object("credHelpers", "credHelpers")? {
        for (key, name) in helpers.members() {
            if same_registry(key, host) {
                return Ok(Some(name.string()?).filter(|name| !name.trim().is_empty()));
            }
        }
    }
    Ok(root
        .string("credsStore", "credsStore")?
        .filter(|name| !name.trim().is_empty()))
}

/// Reads one `auths` entry; `None` when it carries no secret.
fn auth_entry(key: &str, entry: &Node<'_>, host: &str) -> Result<Option<Credential>, String> {
    let entry = entry.object()?;
    let field = |name: &str| entry.string(name, name).map(Option::unwrap_or_default);
    let credential = |username: String, secret: CredentialSecret| {
        Some(Credential {
            registry: host.to_owned(),
            username,
            secret,
        })
    };

    let identity_token = field("identitytoken")?;
    if !identity_token.is_empty() {
        return Ok(credential(
            String::new(),
            CredentialSecret::Token(Secret::new(identity_token)),
        ));
    }
    let auth = field("auth")?;
    if !auth.trim().is_empty() {
        let invalid = || format!("auths.{key}.auth: not base64 of user:password (registry {host})");
        let decoded = BASE64
            .decode(auth.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(invalid)?;
        let (username, password) = decoded.split_once(':').ok_or_else(invalid)?;
        return Ok(credential(
            username.to_owned(),
            CredentialSecret::Password(Secret::new(password)),
        ));
    }
    let password = field("password")?;
    if !password.is_empty() {
        return Ok(credential(
            field("username")?,
            CredentialSecret::Password(Secret::new(password)),
        ));
    }
    Ok(None)
}

/// Runs `docker-credential-<name> get` for `host` (Docker's helper protocol).
fn run_helper(
    name: &str,
    host: &str,
    search_path: &OsStr,
    timeout: Duration,
) -> Result<Option<Credential>> {
    let program = format!("docker-credential-{}", name.trim());
    let error = |reason: String| Error::Config {
        source_name: program.clone(),
        reason,
    };
    if name.contains(['/', '\\']) || name.trim().starts_with('.') {
        return Err(error("invalid credential helper name".into()));
    }
    let Some(executable) = find_program(&program, search_path) else {
        tracing::debug!(helper = %program, "credential helper is not installed");
        return Ok(None);
    };
    let server = if same_registry(host, "docker.io") {
        DOCKER_HUB_SERVER
    } else {
        host
    };

    let mut child = Command::new(&executable)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| error(format!("cannot run {}: {err}", executable.display())))?;
    if let Some(mut stdin) = child.stdin.take() {
        match stdin.write_all(server.as_bytes()) {
            // A helper may exit without reading; its status tells what happened.
            Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => {
                return Err(error(format!("cannot write to the helper: {err}")));
            }
            _ => {}
        }
    }
    let output = wait_with_timeout(child, timeout).map_err(&error)?;

    if !output.status.success() {
        let message = format!(
            "{} {}",
            String::from_utf8_lossy(&output.stdout).trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
        let message: String = message.trim().chars().take(300).collect();
        // The helper protocol reports a missing entry through this text.
        if message.contains("credentials not found") {
            tracing::debug!(helper = %program, %host, "credential helper has no credentials");
            return Ok(None);
        }
        return Err(error(format!(
            "`get` for {host} failed ({}): {message}",
            output.status
        )));
    }

    let (username, secret) = helper_reply(&output.stdout).map_err(|reason| {
        error(format!(
            "`get` for {host} gave an unexpected reply: {reason}"
        ))
    })?;
    if secret.is_empty() {
        return Ok(None);
    }
    let (username, secret) = if username == "<token>" {
        (String::new(), CredentialSecret::Token(Secret::new(secret)))
    } else {
        (username, CredentialSecret::Password(Secret::new(secret)))
    };
    Ok(Some(Credential {
        registry: host.to_owned(),
        username,
        secret,
    }))
}

/// Waits for a helper's exit and output, killing it when it runs longer than `timeout` (one
/// that prompts for input or hangs must not stall the caller).
fn wait_with_timeout(mut child: Child, timeout: Duration) -> Result<Output, String> {
    fn drain(pipe: Option<impl Read + Send + 'static>) -> mpsc::Receiver<Vec<u8>> {
        let (tx, rx) = mpsc::channel();
        if let Some(mut pipe) = pipe {
            std::thread::spawn(move || {
                let mut out = Vec::new();
                let _ = pipe.read_to_end(&mut out);
                let _ = tx.send(out);
            });
        }
        rx
    }
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "the helper did not answer within {}s and was stopped",
                    timeout.as_secs_f64()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(err) => return Err(format!("helper failed: {err}")),
        }
    };
    // The helper exited; a grandchild still holding its pipes must not stall us either.
    let left = deadline.saturating_duration_since(Instant::now()) + Duration::from_millis(100);
    Ok(Output {
        status,
        stdout: stdout.recv_timeout(left).unwrap_or_default(),
        stderr: stderr.recv_timeout(left).unwrap_or_default(),
    })
}

/// Reads a helper's `{"ServerURL","Username","Secret"}` reply. Errors never quote the reply: it
/// holds the secret.
fn helper_reply(stdout: &[u8]) -> Result<(String, String), String> {
    let value: Value =
        serde_json::from_slice(stdout).map_err(|err| format!("invalid JSON: {err}"))?;
    let Some(root) = Node::root(&value, Dialect::Json) else {
        return Ok(Default::default());
    };
    let reply = root.object()?;
    let field = |name: &str| reply.string(name, name).map(Option::unwrap_or_default);
    Ok((field("Username")?, field("Secret")?))
}

/// Finds `program` in a `PATH`-style list of directories.
fn find_program(program: &str, search_path: &OsStr) -> Option<PathBuf> {
    let file_name = format!("{program}{}", std::env::consts::EXE_SUFFIX);
    std::env::split_paths(search_path)
        .map(|dir| dir.join(&file_name))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(30);

    fn write_config(dir: &Path, json: &str) -> PathBuf {
        let path = dir.join("config.json");
        std::fs::write(&path, json).unwrap();
        path
    }

    fn password(registry: &str, username: &str, value: &str) -> Option<Credential> {
        Some(Credential {
            registry: registry.into(),
            username: username.into(),
            secret: CredentialSecret::Password(Secret::new(value)),
        })
    }

    fn token(registry: &str, value: &str) -> Option<Credential> {
        Some(Credential {
            registry: registry.into(),
            username: String::new(),
            secret: CredentialSecret::Token(Secret::new(value)),
        })
    }

    #[test]
    fn auths_entries_give_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let config = write_config(
            dir.path(),
            r#"{"auths":{
                "https://index.docker.io/v1/":{"auth":"aHViOmh1YnBhc3M="},
                "https://ghcr.io/":{"username":"gh","password":"ghpass"},
                "registry:5000":{"auth":"bG9jYWw6cDp3"},
                "quay.io":{"identitytoken":"idtok","auth":"eDp5"},
                "nopad.io":{"auth":"YTpi"},
                "empty.io":{}
            }}"#,
        );
        let get = |host: &str| docker_credential(&config, host, TIMEOUT).unwrap();
        assert_eq!(get("docker.io"), password("docker.io", "hub", "hubpass"));
        assert_eq!(
            get("index.docker.io"),
            password("index.docker.io", "hub", "hubpass")
        );
        assert_eq!(
            get("registry-1.docker.io"),
            password("registry-1.docker.io", "hub", "hubpass")
        );
        assert_eq!(get("ghcr.io"), password("ghcr.io", "gh", "ghpass"));
        assert_eq!(
            get("https://registry:5000/v2/"),
            password("registry:5000", "local", "p:w")
        );
        assert_eq!(get("quay.io"), token("quay.io", "idtok"));
        assert_eq!(get("nopad.io"), password("nopad.io", "a", "b"));
        assert_eq!(get("empty.io"), None);
        assert_eq!(get("other.io"), None);
        assert_eq!(get(""), None);
    }

    #[test]
    fn docker_hub_keys_match_every_alias() {
        let dir = tempfile::tempdir().unwrap();
        let config = write_config(
            dir.path(),
            r#"{"auths":{"docker.io":{"username":"u","password":"p"}}}"#,
        );
        let found = docker_credential(&config, "https://index.docker.io/v1/", TIMEOUT).unwrap();
        assert_eq!(found, password("index.docker.io", "u", "p"));
    }

    #[test]
    fn a_missing_config_has_no_credentials() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            docker_credential(&dir.path().join("none.json"), "ghcr.io", TIMEOUT).unwrap(),
            None
        );
    }

    #[test]
    fn bad_auth_values_name_the_registry_without_the_secret() {
        let dir = tempfile::tempdir().unwrap();
        for auth in ["!!!not-base64", "bm9jb2xvbg=="] {
            let config = write_config(
                dir.path(),
                &format!(r#"{{"auths":{{"ghcr.io":{{"auth":"{auth}"}}}}}}"#),
            );
            let err = docker_credential(&config, "ghcr.io", TIMEOUT).unwrap_err();
            let text = err.to_string();
            assert!(
                text.contains("auths.ghcr.io.auth") && text.contains("registry ghcr.io"),
                "{text}"
            );
            assert!(!text.contains("nocolon") && !text.contains(auth), "{text}");
        }
        let config = write_config(dir.path(), "{not json");
        let err = docker_credential(&config, "ghcr.io", TIMEOUT).unwrap_err();
        assert!(err.to_string().contains("config.json"), "{err}");
    }

    /// A fake `docker-credential-fake`: knows `reg.example:5000` and Docker Hub (as an identity
    /// token), says "credentials not found" otherwise, and fails for `broken.io`.
    #[cfg(unix)]
    fn install_fake_helper(dir: &Path) {
        use std::os::unix::fs::PermissionsExt;
        let script = r#"#!/bin/sh
[ "$1" = get ] || exit 2
read -r server || true
case "$server" in
  hang.io) exec sleep 600 ;;
  reg.example:5000) printf '{"ServerURL":"%s","Username":"bob","Secret":"helper-pass"}' "$server" ;;
  https://index.docker.io/v1/) printf '{"Username":"<token>","Secret":"hub-token"}' ;;
  broken.io) echo "keychain locked" >&2; exit 1 ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac
"#;
        let path = dir.join("docker-credential-fake");
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn credential_helpers_are_run_with_the_server_address() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        install_fake_helper(&bin);
        let search_path = std::env::join_paths([Path::new("/nonexistent"), &bin]).unwrap();
        let get = |config: &Path, host: &str| lookup(config, host, &search_path, TIMEOUT);

        let store = write_config(
            dir.path(),
            r#"{"credsStore":"fake","auths":{"fallback.io":{"username":"f","password":"fp"},"reg.example:5000":{}}}"#,
        );
        assert_eq!(
            get(&store, "reg.example:5000").unwrap(),
            password("reg.example:5000", "bob", "helper-pass")
        );
        assert_eq!(
            get(&store, "docker.io").unwrap(),
            token("docker.io", "hub-token")
        );
        assert_eq!(
            get(&store, "fallback.io").unwrap(),
            password("fallback.io", "f", "fp")
        );
        assert_eq!(get(&store, "unknown.io").unwrap(), None);
        let err = get(&store, "broken.io").unwrap_err();
        assert!(
            matches!(&err, Error::Config { source_name, .. } if source_name == "docker-credential-fake"),
            "{err:?}"
        );
        assert!(err.to_string().contains("keychain locked"), "{err}");
        let hung = lookup(&store, "hang.io", &search_path, Duration::from_millis(300)).unwrap_err();
        assert!(
            hung.to_string().contains("did not answer within 0.3s"),
            "{hung}"
        );

        let helpers = dir.path().join("helpers.json");
        std::fs::write(
            &helpers,
            r#"{"credsStore":"missing","credHelpers":{"https://reg.example:5000":"fake"},
            "auths":{"other.io":{"username":"o","password":"op"}}}"#,
        )
        .unwrap();
        assert_eq!(
            get(&helpers, "reg.example:5000").unwrap(),
            password("reg.example:5000", "bob", "helper-pass")
        );
        // `credsStore` names a helper that is not installed: fall back to `auths`.
        assert_eq!(
            get(&helpers, "other.io").unwrap(),
            password("other.io", "o", "op")
        );

        let traversal = dir.path().join("traversal.json");
        std::fs::write(&traversal, r#"{"credsStore":"../bin/x"}"#).unwrap();
        let err = get(&traversal, "reg.example:5000").unwrap_err();
        assert!(
            err.to_string().contains("invalid credential helper name"),
            "{err}"
        );
    }
}
