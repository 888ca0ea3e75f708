//! The one HTTP client builder: user agent, timeouts from the retry policy, TLS roots (the system
//! roots plus the host's extra CA bundles), only the configured proxies, the redirect rules and
//! the address rules, for every registry request.
//!
//! Redirect rules: at most ten; never from HTTPS to plain HTTP unless the target host was marked
//! insecure; for a mirror, never to another host (a mirror that sends us elsewhere is skipped).
//! Address rules (`settings.porter.block_private_redirects`): a redirect target, and any host
//! other than the registry itself and its own token service, may not be a link-local address, a
//! loopback address unless the registry is on loopback, or a private address unless the registry
//! is on a private network.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::super::tls::ExtraRoots;
use crate::config::Settings;
use crate::error::{Error, NetworkCause, Result};

/// Redirects followed per request.
const MAX_REDIRECTS: usize = 10;

/// The `User-Agent` of every registry request.
const USER_AGENT: &str = concat!("ds-porter/", env!("CARGO_PKG_VERSION"));

/// What a client for one registry host may follow and connect to.
#[derive(Debug, Clone)]
pub(crate) struct Rules {
    /// `host[:port]` the client is for.
    pub host: String,
    /// Redirects to another host are refused (mirrors).
    pub same_host_redirects_only: bool,
    /// Hosts that may be spoken to in plain HTTP (a redirect there is not a downgrade).
    pub insecure: Arc<super::InsecureHosts>,
    /// Refuse link-local, and loopback or private addresses the registry itself is not on.
    pub block_private: bool,
}

/// Hosts a client may connect to whatever their address: the registry itself and the token
/// services its own challenges named.
#[derive(Debug, Default)]
pub(crate) struct Trusted {
    hosts: Mutex<HashSet<String>>,
}

impl Trusted {
    /// Trusts `host` (a name, without port).
    pub(crate) fn add(&self, host: &str) {
        self.hosts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(host.to_ascii_lowercase());
    }

    fn contains(&self, host: &str) -> bool {
        self.hosts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&host.to_ascii_lowercase())
    }
}

/// Builds the client for `rules.host`.
pub(crate) fn build(
    settings: &Settings,
    roots: &ExtraRoots,
    rules: Rules,
    trusted: Arc<Trusted>,
) -> Result<reqwest::Client> {
    let timeout = settings.retry.attempt_timeout;
    let host = rules.host.clone();
    let name = host_name(&host).to_owned();
    trusted.add(&name);
    let mut builder = reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .connect_timeout(timeout.min(Duration::from_secs(30)))
        .read_timeout(timeout)
        .no_proxy()
        .tls_backend_preconfigured(roots.tls_config()?)
        .dns_resolver(Arc::new(Resolver {
            registry: name,
            trusted: Arc::clone(&trusted),
            block_private: rules.block_private,
        }))
        .redirect(redirect_policy(rules));
    let no_proxy = settings
        .proxy
        .no_proxy
        .as_deref()
        .and_then(reqwest::NoProxy::from_string);
    for (url, https) in [(&settings.proxy.https, true), (&settings.proxy.http, false)] {
        let Some(url) = url else { continue };
        let (proxy, name) = if https {
            (reqwest::Proxy::https(url), "Proxy.HTTPSProxy")
        } else {
            (reqwest::Proxy::http(url), "Proxy.HTTPProxy")
        };
        let proxy = proxy.map_err(|e| Error::Config {
            source_name: name.into(),
            reason: e.to_string(),
        })?;
        if let Ok(parsed) = reqwest::Url::parse(url)
            && let Some(host) = parsed.host_str()
        {
            trusted.add(host);
        }
        builder = builder.proxy(proxy.no_proxy(no_proxy.clone()));
    }
    builder.build().map_err(|e| Error::Network {
        registry: host,
        reason: format!("cannot build the HTTP client: {e}"),
        cause: NetworkCause::Other,
    })
}

/// `host` without its port (brackets of an IPv6 literal removed).
pub(crate) fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => host,
    }
}

/// `host[:port]` of a URL, as registry hosts are written.
pub(crate) fn url_host(url: &reqwest::Url) -> String {
    let host = match url.host() {
        Some(url::Host::Ipv6(ip)) => format!("[{ip}]"),
        Some(host) => host.to_string(),
        None => String::new(),
    };
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host,
    }
}

fn redirect_policy(rules: Rules) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() >= MAX_REDIRECTS {
            return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
        }
        let target = url_host(attempt.url());
        if rules.same_host_redirects_only && !crate::config::same_registry(&target, &rules.host) {
            return attempt.error(format!(
                "the mirror {} redirected to another host ({target})",
                rules.host
            ));
        }
        let downgrade = attempt.url().scheme() == "http"
            && attempt.previous().iter().any(|u| u.scheme() == "https");
        if downgrade && !rules.insecure.contains(&target) {
            return attempt.error(format!(
                "refusing a redirect from HTTPS to plain HTTP ({target})"
            ));
        }
        if rules.block_private
            && let Some(url::Host::Ipv4(_) | url::Host::Ipv6(_)) = attempt.url().host()
            && let Ok(ip) = host_name(&target).parse::<IpAddr>()
            && let Some(reason) = refused_address(ip, registry_class(&rules.host))
        {
            return attempt.error(format!("refusing a redirect to {target}: {reason}"));
        }
        attempt.follow()
    })
}

/// The kind of address a registry host literally is, when it is an IP address.
fn registry_class(host: &str) -> Option<AddressClass> {
    let name = host_name(host);
    if name.eq_ignore_ascii_case("localhost") {
        return Some(AddressClass::Loopback);
    }
    name.parse::<IpAddr>().ok().map(AddressClass::of)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AddressClass {
    Public,
    Private,
    Loopback,
    LinkLocal,
    Unspecified,
}

impl AddressClass {
    fn of(ip: IpAddr) -> Self {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        match ip {
            IpAddr::V4(v4) if v4.is_unspecified() => AddressClass::Unspecified,
            IpAddr::V4(v4) if v4.is_loopback() => AddressClass::Loopback,
            IpAddr::V4(v4) if v4.is_link_local() => AddressClass::LinkLocal,
            IpAddr::V4(v4) if v4.is_private() || is_shared_v4(v4.octets()) => AddressClass::Private,
            IpAddr::V6(v6) if v6.is_unspecified() => AddressClass::Unspecified,
            IpAddr::V6(v6) if v6.is_loopback() => AddressClass::Loopback,
            IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80 => AddressClass::LinkLocal,
            IpAddr::V6(v6) if v6.segments()[0] & 0xfe00 == 0xfc00 => AddressClass::Private,
            _ => AddressClass::Public,
        }
    }
}

/// 100.64.0.0/10, carrier-grade NAT space.
fn is_shared_v4(octets: [u8; 4]) -> bool {
    octets[0] == 100 && (octets[1] & 0xc0) == 64
}

/// Why `ip` may not be connected to when the registry's own address is `registry`.
fn refused_address(ip: IpAddr, registry: Option<AddressClass>) -> Option<&'static str> {
    match AddressClass::of(ip) {
        AddressClass::Public => None,
        AddressClass::LinkLocal => Some("a link-local address"),
        AddressClass::Unspecified => Some("an unspecified address"),
        AddressClass::Loopback if registry == Some(AddressClass::Loopback) => None,
        AddressClass::Loopback => Some("a loopback address, and the registry is not on loopback"),
        AddressClass::Private if registry == Some(AddressClass::Private) => None,
        AddressClass::Private => Some("a private address, and the registry is not on one"),
    }
}

/// Name resolution that fails with a typed error (so "does not resolve" is told apart from
/// other connection failures) and applies the address rules to hosts other than the registry.
struct Resolver {
    registry: String,
    trusted: Arc<Trusted>,
    block_private: bool,
}

/// A host name that does not resolve (or resolves only to refused addresses).
#[derive(Debug, thiserror::Error)]
#[error("{host} does not resolve: {reason}")]
pub(crate) struct ResolveError {
    host: String,
    reason: String,
    /// Addresses existed but every one was refused by the address rules.
    pub(crate) refused: bool,
}

impl Resolve for Resolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        let check = self.block_private && !self.trusted.contains(&host);
        let registry = registry_class(&self.registry);
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|e| ResolveError {
                    host: host.clone(),
                    reason: e.to_string(),
                    refused: false,
                })?
                .collect();
            if found.is_empty() {
                return Err(Box::new(ResolveError {
                    host,
                    reason: "no addresses".into(),
                    refused: false,
                })
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            let allowed: Vec<SocketAddr> = if check {
                found
                    .iter()
                    .copied()
                    .filter(|a| refused_address(a.ip(), registry).is_none())
                    .collect()
            } else {
                found.clone()
            };
            if allowed.is_empty() {
                let reason = refused_address(found[0].ip(), registry).unwrap_or_default();
                return Err(Box::new(ResolveError {
                    host,
                    reason: format!("it resolves to {} ({reason})", found[0].ip()),
                    refused: true,
                })
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_drop_ports_and_brackets() {
        assert_eq!(host_name("127.0.0.1:5000"), "127.0.0.1");
        assert_eq!(host_name("[::1]:5000"), "::1");
        assert_eq!(host_name("ghcr.io"), "ghcr.io");
        assert_eq!(host_name("localhost:80"), "localhost");
    }

    #[test]
    fn addresses_are_refused_unless_the_registry_is_on_the_same_kind() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let public = registry_class("ghcr.io");
        assert!(refused_address(ip("169.254.169.254"), public).is_some());
        assert!(refused_address(ip("169.254.169.254"), Some(AddressClass::LinkLocal)).is_some());
        assert!(refused_address(ip("127.0.0.1"), public).is_some());
        assert!(refused_address(ip("127.0.0.1"), registry_class("127.0.0.1:5000")).is_none());
        assert!(refused_address(ip("::1"), registry_class("localhost:5000")).is_none());
        assert!(refused_address(ip("10.1.2.3"), public).is_some());
        assert!(refused_address(ip("10.1.2.3"), registry_class("192.168.1.9")).is_none());
        assert!(refused_address(ip("fe80::1"), public).is_some());
        assert!(refused_address(ip("fd00::1"), public).is_some());
        assert!(refused_address(ip("::ffff:127.0.0.1"), public).is_some());
        assert!(refused_address(ip("100.100.1.1"), public).is_some());
        assert!(refused_address(ip("8.8.8.8"), public).is_none());
    }
}
