//! `Registry.Mirrors`: which mirrors a pull tries before the registry a reference names.
//!
//! An entry is `[http://|https://]<host[:port]>[/<prefix>]`, or `<registry>=<mirror>` to use the
//! mirror only for that registry. A mirror serves the upstream's repositories under the same
//! names (below `<prefix>` when given), the way a registry in pull-through-cache mode does. An
//! `http://` scheme marks that mirror as plain HTTP, the same as listing it in
//! `Registry.InsecureRegistries`.

use crate::config::{normalize_registry_host, same_registry};

/// One mirror that applies to a pull.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mirror {
    /// `host[:port]`.
    pub host: String,
    /// The repository on the mirror.
    pub repository: String,
    /// The entry said `http://`.
    pub plain_http: bool,
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
        })
        .filter(|m| !same_registry(&m.host, upstream))
        .collect()
}

struct Spec {
    host: String,
    prefix: String,
    plain_http: bool,
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
    let host = normalize_registry_host(mirror);
    if host.is_empty() || scope.as_deref() == Some("") {
        tracing::warn!(entry, "ignoring a Registry.Mirrors entry without a host");
        return None;
    }
    let without_scheme = mirror.split_once("://").map_or(mirror, |(_, rest)| rest);
    let prefix = without_scheme
        .split_once('/')
        .map_or("", |(_, path)| path)
        .trim_matches('/')
        .to_owned();
    Some((
        scope,
        Spec {
            host,
            prefix,
            plain_http,
        },
    ))
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
                    plain_http: false
                },
                Mirror {
                    host: "mirror.b".into(),
                    repository: "cache/delivery-station/porter".into(),
                    plain_http: false
                },
                Mirror {
                    host: "127.0.0.1:6000".into(),
                    repository: "delivery-station/porter".into(),
                    plain_http: true
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
    fn a_registry_is_not_its_own_mirror() {
        let list = entries(&["127.0.0.1:5000"]);
        assert!(mirrors_for(&list, "127.0.0.1:5000", "a/b").is_empty());
    }
}
