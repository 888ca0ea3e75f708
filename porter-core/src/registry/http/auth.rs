//! Authentication: `WWW-Authenticate` challenges, what a request is sent with, and bearer tokens.
//!
//! Where credentials may go: only to the registry host they were configured for, over HTTPS or
//! to a host explicitly marked insecure; and to a token service only when the registry's own
//! challenge named it (a challenge from a redirect target is refused by the caller, see
//! `Connection::send`), again only over HTTPS or to an insecure host. Tokens obtained with them
//! are sent only to the registry host.

use std::collections::BTreeSet;

use base64::Engine as _;
use reqwest::header::{AUTHORIZATION, HeaderValue};

use crate::config::Secret;

/// A credential for one registry host: user and password (a token goes as a password).
#[derive(Clone)]
pub(crate) struct Credential {
    pub user: String,
    pub secret: Secret,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl Credential {
    /// The `Authorization: Basic …` value, marked sensitive.
    pub(crate) fn basic_header(&self) -> Option<HeaderValue> {
        let encoded = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            self.user,
            self.secret.expose()
        ));
        let mut value = HeaderValue::from_str(&format!("Basic {encoded}")).ok()?;
        value.set_sensitive(true);
        Some(value)
    }
}

/// What requests to the registry host are sent with.
#[derive(Debug, Clone)]
pub(crate) enum Scheme {
    /// No challenge seen yet: requests go out without credentials.
    Anonymous,
    /// Basic authentication with the host's credential.
    Basic,
    /// A bearer token from the registry's token service.
    Bearer(Secret),
}

impl Scheme {
    /// The scheme's name for logs (never the secret).
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Scheme::Anonymous => "anonymous",
            Scheme::Basic => "basic",
            Scheme::Bearer(_) => "bearer",
        }
    }

    /// Sets the `Authorization` header for this scheme.
    pub(crate) fn apply(&self, request: &mut reqwest::Request, credential: Option<&Credential>) {
        let value = match (self, credential) {
            (Scheme::Basic, Some(credential)) => credential.basic_header(),
            (Scheme::Bearer(token), _) => {
                HeaderValue::from_str(&format!("Bearer {}", token.expose()))
                    .ok()
                    .map(|mut v| {
                        v.set_sensitive(true);
                        v
                    })
            }
            _ => None,
        };
        if let Some(value) = value {
            request.headers_mut().insert(AUTHORIZATION, value);
        }
    }
}

/// Authentication state of one connection: the scheme in use and the token scopes asked for so
/// far (a token is always requested for all of them, so pulls, pushes and mounts share one).
#[derive(Debug)]
pub(crate) struct State {
    pub scheme: Scheme,
    pub scopes: BTreeSet<String>,
}

/// A `WWW-Authenticate` challenge.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

impl Challenge {
    /// The first challenge of a header value that ds-porter can answer.
    pub(crate) fn parse(header: &str) -> Option<Challenge> {
        let header = header.trim();
        let (scheme, params) = header.split_once(' ').unwrap_or((header, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            return Some(Challenge::Basic);
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let params = parse_params(params);
        let get = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        Some(Challenge::Bearer {
            realm: get("realm")?,
            service: get("service"),
            scope: get("scope"),
        })
    }
}

/// `key="value", key=value` pairs; quoted values may contain commas.
fn parse_params(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text.trim();
    for _ in 0..64 {
        if rest.is_empty() {
            break;
        }
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key.trim().trim_start_matches(',').trim().to_owned();
        let after = after.trim_start();
        let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.find('"') {
                Some(end) => (quoted[..end].to_owned(), &quoted[end + 1..]),
                None => (quoted.to_owned(), ""),
            }
        } else {
            match after.find(',') {
                Some(end) => (after[..end].trim().to_owned(), &after[end..]),
                None => (after.trim().to_owned(), ""),
            }
        };
        out.push((key, value));
        rest = remaining.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

/// A token service's answer.
#[derive(serde::Deserialize)]
pub(crate) struct TokenResponse {
    pub token: Option<String>,
    pub access_token: Option<String>,
}

impl TokenResponse {
    /// The token, when there is a non-empty one.
    pub(crate) fn into_token(self) -> Option<Secret> {
        self.token
            .or(self.access_token)
            .filter(|t| !t.is_empty())
            .map(Secret::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse() {
        assert_eq!(
            Challenge::parse(r#"Basic realm="basic-realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(
            Challenge::parse(
                r#"Bearer realm="https://auth.example/token",service="reg",scope="repository:a/b:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("reg".into()),
                scope: Some("repository:a/b:pull,push".into()),
            })
        );
        assert_eq!(
            Challenge::parse("bearer realm=https://a/t, service=s"),
            Some(Challenge::Bearer {
                realm: "https://a/t".into(),
                service: Some("s".into()),
                scope: None,
            })
        );
        assert_eq!(Challenge::parse("Bearer service=s"), None);
        assert_eq!(Challenge::parse("Negotiate"), None);
    }
}
