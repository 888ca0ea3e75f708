//! `Registry.Mirrors`: which mirrors a pull tries before the registry a reference names.
//!
//! An entry is `[http://|https://]<host[:port]>[/<prefix>]`, or `<registry>=<mirror>` to use the
//! mirror only for that registry. A mirror serves the upstream's repositories under the same
//! names (below `<prefix>` when given), the way a registry in pull-through-cache mode does. An
//! `http://` scheme marks that mirror as plain HTTP, the same as listing it in
//! `Registry.InsecureRegistries`. User info in an entry (`http://user:pass@host`) is the
//! mirror's credential: it is sent to that mirror only and never shown.

use super::http::auth::Credential;
use crate::config::{Secret, normalize_registry_host, same_registry};

/// One mirror that applies to a pull.
#[derive(Debug, Clone)]
pub(crate) struct Mirror {
    /// `host[:port]`, without user info.
    pub host: String,
    /// The repository on the mirror.
    pub repository: String,
    /// The entry said `http://`.
    pub plain_http: bool,
    /// User info of the entry.
    pub credential: Option<Credential>,
}

impl PartialEq for Mirror {
    fn eq(&self, other: &Self) -> bool {
        self.host == other.host
            && self.repository == other.repository
            && self.plain_http == other.plain_http
            && self
                .credential
                .as_ref()
                .map(|c| (&c.user, c.secret.expose()))
                == other
                    .credential
                    .as_ref()
                    .map(|c| (&c.user, c.secret.expose()))
    }
}

/// The mirrors to try, in configured order, for `repository` on `upstream`.
pub(crate) fn mirrors_for(entries: &[String], upstream: &str, repository: &str) -> Vec<Mirror> {
    entries
        .iter()
        .filter_map(|entry| parse(entry))
        .filter(|(scope, _)| scope.as_deref().is_none_or(|s| same_registry(s, upstream)))
        .map(|(_, spec)| Mirror {
            repository: match spec.prefix.as_str() {
                "" => repository.to_owned(),
                prefix => format!("{prefix}/{repository}"),
            },
            host: spec.host,
            plain_http: spec.plain_http,
            credential: spec.credential,
        })
        .filter(|m| !same_registry(&m.host, upstream))
        .collect()
}

struct Spec {
    host: String,
    prefix: String,
    plain_http: bool,
    credential: Option<Credential>,
}

/// `(scope, spec)` of one entry; `None` for an entry without a host.
fn parse(entry: &str) -> Option<(Option<String>, Spec)> {
    let entry = entry.trim();
    let (scope, mirror) = match entry.split_once('=') {
        Some((scope, mirror)) => (Some(normalize_registry_host(scope)), mirror.trim()),
        None => (None, entry),
    };
    let lower = mirror.to_ascii_lowercase();
    let plain_http = lower.starts_with("http://");
    let without_scheme = mirror.split_once("://").map_or(mirror, |(_, rest)| rest);
    let (authority, path) = without_scheme
        .split_once('/')
        .unwrap_or((without_scheme, ""));
    let (userinfo, host) = match authority.rsplit_once('@') {
        Some((userinfo, host)) => (Some(userinfo), host),
        None => (None, authority),
    };
    let host = normalize_registry_host(host);
    if host.is_empty() || scope.as_deref() == Some("") {
        tracing::warn!(
            entry = %crate::config::redact_userinfo(Some(entry)).unwrap_or_default(),
            "ignoring a Registry.Mirrors entry without a host"
        );
        return None;
    }
    let credential = userinfo.map(|info| {
        let (user, pass) = info.split_once(':').unwrap_or((info, ""));
        Credential {
            user: percent_decode(user),
            secret: Secret::new(percent_decode(pass)),
        }
    });
    Some((
        scope,
        Spec {
            host,
            prefix: path.trim_matches('/').to_owned(),
            plain_http,
            credential,
        },
    ))
}

/// `%XX` escapes of URL user info decoded (invalid ones are kept as they are).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn unscoped_mirrors_apply_to_every_registry_in_order() {
        let list = entries(&[
            "mirror.a:5000",
            "https://mirror.b/cache/",
            "http://127.0.0.1:6000",
        ]);
        let found = mirrors_for(&list, "ghcr.io", "delivery-station/porter");
        assert_eq!(
            found,
            [
                Mirror {
                    host: "mirror.a:5000".into(),
                    repository: "delivery-station/porter".into(),
                    plain_http: false,
                    credential: None,
                },
                Mirror {
                    host: "mirror.b".into(),
                    repository: "cache/delivery-station/porter".into(),
                    plain_http: false,
                    credential: None,
                },
                Mirror {
                    host: "127.0.0.1:6000".into(),
                    repository: "delivery-station/porter".into(),
                    plain_http: true,
                    credential: None,
                },
            ]
        );
    }

    #[test]
    fn scoped_mirrors_apply_only_to_their_registry() {
        let list = entries(&[
            "docker.io=mirror.hub",
            "ghcr.io=http://mirror.ghcr:5000",
            " ",
        ]);
        let hub = mirrors_for(&list, "index.docker.io", "library/busybox");
        assert_eq!(hub.len(), 1);
        assert_eq!(hub[0].host, "mirror.hub");
        let ghcr = mirrors_for(&list, "ghcr.io", "a/b");
        assert_eq!(ghcr.len(), 1);
        assert!(ghcr[0].plain_http);
        assert!(mirrors_for(&list, "quay.io", "a/b").is_empty());
    }

    #[test]
    fn user_info_is_the_mirrors_credential_and_not_its_host() {
        let list = entries(&["http://bob:p%40ss@127.0.0.1:6000/cache"]);
        let found = mirrors_for(&list, "ghcr.io", "a/b");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].host, "127.0.0.1:6000");
        assert_eq!(found[0].repository, "cache/a/b");
        let credential = found[0]
            .credential
            .as_ref()
            .map(|c| (c.user.as_str(), c.secret.expose()));
        assert_eq!(credential, Some(("bob", "p@ss")));
        assert!(!format!("{:?}", found[0]).contains("p@ss"));
    }

    #[test]
    fn a_registry_is_not_its_own_mirror() {
        let list = entries(&["127.0.0.1:5000"]);
        assert!(mirrors_for(&list, "127.0.0.1:5000", "a/b").is_empty());
    }
}
