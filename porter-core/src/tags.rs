//! Listing a repository's tags, every page of them.
//!
//! The registry decides the order (distribution sorts lexically) and the page boundaries; the
//! engine follows `Link: <…>; rel="next"` until the last page, within a page-count bound.

use crate::engine::Porter;
use crate::error::{Error, Result};
use crate::reference::ArtifactRef;
use crate::registry::Remote;

/// Tags asked for per page unless the request says otherwise.
pub const DEFAULT_PAGE_SIZE: usize = 100;
/// Pages followed at most unless the request says otherwise.
pub const DEFAULT_MAX_PAGES: usize = 10_000;

/// A tag listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagListRequest {
    /// `registry/repository`, or a short repository resolved against `Registry.Default`
    /// (`delivery-station/porter`, `porter`). No tag or digest.
    pub repository: String,
    /// Allow plain HTTP to this repository's registry.
    pub insecure: bool,
    /// Tags asked for per page (`?n=`).
    pub page_size: usize,
    /// Pages followed at most; a longer listing is an error rather than an endless loop.
    pub max_pages: usize,
}

impl TagListRequest {
    /// A listing of `repository` with the default paging.
    pub fn new(repository: &str) -> Self {
        TagListRequest {
            repository: repository.trim().to_owned(),
            insecure: false,
            page_size: DEFAULT_PAGE_SIZE,
            max_pages: DEFAULT_MAX_PAGES,
        }
    }

    /// A listing of `repository` (not empty) with the default paging, before any I/O.
    pub fn checked(repository: &str) -> Result<Self> {
        if repository.trim().is_empty() {
            return Err(Error::InvalidInput("repository required".into()));
        }
        Ok(TagListRequest::new(repository))
    }

    /// Refuses what does not name a registry repository (a tag, a digest, an `oci:` layout);
    /// [`Porter::list_tags`] checks it too.
    pub fn check(&self) -> Result<()> {
        let invalid = |reason: &str| Error::InvalidReference {
            reference: self.repository.clone(),
            reason: reason.to_owned(),
        };
        let last = self.repository.rsplit('/').next().unwrap_or_default();
        if last.contains(':') || last.contains('@') {
            return Err(invalid(
                "name a repository without a tag or digest to list its tags",
            ));
        }
        if self.repository.starts_with("oci:") {
            return Err(invalid("tags can only be listed in a registry"));
        }
        Ok(())
    }
}

impl Porter {
    /// Every tag of a repository, in the order the registry returns them, following `Link`
    /// pagination. Needs the registry: offline, this fails.
    pub async fn list_tags(&self, request: &TagListRequest) -> Result<Vec<String>> {
        request.check()?;
        let invalid = |reason: &str| Error::InvalidReference {
            reference: request.repository.clone(),
            reason: reason.to_owned(),
        };
        let settings = self.settings();
        let reference = match self.resolve(&request.repository, request.insecure)? {
            ArtifactRef::Registry(r) => r,
            ArtifactRef::Layout(_) => {
                return Err(invalid("tags can only be listed in a registry"));
            }
        };
        if settings.offline {
            return Err(Error::InvalidInput(format!(
                "cannot list the tags of {}/{} while offline",
                reference.registry, reference.repository
            )));
        }
        let remote = Remote::upstream_only(settings, &reference, request.insecure);
        let endpoint = remote.upstream();
        let what = "tag listing";
        let first = endpoint
            .conn()
            .url(&format!("tags/list?n={}", request.page_size.max(1)));
        let mut url = url::Url::parse(&first).map_err(|e| Error::InvalidReference {
            reference: request.repository.clone(),
            reason: format!("cannot form the tag list URL: {e}"),
        })?;
        // Credentials go only to the registry's own origin: a `Link` elsewhere is refused.
        let origin = url.origin();
        let target = endpoint.conn().target();
        let mut tags = Vec::new();
        let mut seen = Vec::new();
        for _ in 0..request.max_pages.max(1) {
            let (page, next) = endpoint.tags_page(&url).await?;
            tags.extend(page);
            seen.push(url.clone());
            let Some(next) = next else {
                return Ok(tags);
            };
            let next = url.join(&next).map_err(|e| {
                target.registry(
                    what,
                    200,
                    Some(format!(
                        "invalid Link {:?}: {e}",
                        crate::display::escape_remote(&next)
                    )),
                )
            })?;
            if next.origin() != origin {
                return Err(Error::Unsafe(format!(
                    "{reference}: refusing to follow a tag list Link to another origin: {}",
                    crate::registry::http::redacted(&next)
                )));
            }
            if seen.contains(&next) {
                return Err(target.registry(
                    what,
                    200,
                    Some(format!(
                        "the Link header loops back to {}",
                        crate::registry::http::redacted(&next)
                    )),
                ));
            }
            url = next;
        }
        Err(target.registry(
            what,
            200,
            Some(format!("more than {} pages of tags", request.max_pages)),
        ))
    }
}

/// A semantic-version constraint on tags: `>=1.2, <2`, `^1.2`, `~1.2.3`, `1.x`, alternatives
/// joined by `||`. Comparators may also be separated by spaces (`>=1.2 <2`), as DS writes
/// them. A tag counts when it parses as a full semantic version (`1.2.3`, `1.2.3-rc.1`), with
/// or without a leading `v`; pre-releases match only a comparator that names a pre-release of
/// the same `major.minor.patch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SemverConstraint {
    text: String,
    alternatives: Vec<semver::VersionReq>,
}

impl SemverConstraint {
    /// Parses a constraint; an invalid one is an error naming it.
    pub fn parse(text: &str) -> Result<Self> {
        let invalid = |reason: String| {
            Error::InvalidInput(format!("invalid version constraint {text:?}: {reason}"))
        };
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(invalid("it is empty".into()));
        }
        let mut alternatives = Vec::new();
        for alternative in trimmed.split("||") {
            let normalized = comma_separated(alternative);
            if normalized.is_empty() {
                return Err(invalid("an alternative of `||` is empty".into()));
            }
            let req = semver::VersionReq::parse(&normalized).map_err(|e| invalid(e.to_string()))?;
            alternatives.push(req);
        }
        Ok(SemverConstraint {
            text: trimmed.to_owned(),
            alternatives,
        })
    }

    /// The constraint as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `tag` is a semantic version this constraint accepts.
    pub fn matches(&self, tag: &str) -> bool {
        version_of(tag).is_some_and(|v| self.alternatives.iter().any(|r| r.matches(&v)))
    }

    /// The tags this constraint accepts, lowest version first (equal versions by tag).
    pub fn select(&self, tags: &[String]) -> Vec<String> {
        let mut matched: Vec<(semver::Version, &String)> = tags
            .iter()
            .filter_map(|t| version_of(t).map(|v| (v, t)))
            .filter(|(v, _)| self.alternatives.iter().any(|r| r.matches(v)))
            .collect();
        matched.sort();
        matched.into_iter().map(|(_, t)| t.clone()).collect()
    }
}

impl std::fmt::Display for SemverConstraint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// The tags a listing shows, the one rule every front end applies: without a constraint every
/// tag, sorted, each once; with one, the versions it accepts, lowest first; with `latest`, only
/// the highest of those (of every version tag when there is no constraint), and an error naming
/// `repository` and the constraint when there is none.
pub fn narrow(
    repository: &str,
    mut tags: Vec<String>,
    constraint: Option<&SemverConstraint>,
    latest: bool,
) -> Result<Vec<String>> {
    let any;
    let constraint = match (constraint, latest) {
        (Some(c), _) => c,
        (None, true) => {
            any = SemverConstraint::parse("*")?;
            &any
        }
        (None, false) => {
            tags.sort();
            tags.dedup();
            return Ok(tags);
        }
    };
    let mut matched = constraint.select(&tags);
    if latest {
        matched = matched.pop().into_iter().collect();
        if matched.is_empty() {
            let versions = tags.iter().filter(|t| version_of(t).is_some()).count();
            return Err(Error::NotFound {
                what: "a tag satisfying the version constraint",
                reference: format!(
                    "{repository} ({:?}; {} tags, {versions} of them semantic versions)",
                    constraint.as_str(),
                    tags.len()
                ),
            });
        }
    }
    Ok(matched)
}

/// `tag` as a semantic version (a leading `v` allowed), when it is one.
pub fn version_of(tag: &str) -> Option<semver::Version> {
    let bare = tag.strip_prefix('v').unwrap_or(tag);
    semver::Version::parse(bare).ok()
}

/// Comparators separated by spaces joined with commas: `>= 1.2 <2` → `>=1.2, <2`. An operator
/// standing alone is joined to the version after it.
fn comma_separated(text: &str) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut pending_op = String::new();
    for token in text.split(|c: char| c.is_whitespace() || c == ',') {
        if token.is_empty() {
            continue;
        }
        if token.chars().all(|c| "<>=~^!".contains(c)) {
            pending_op.push_str(token);
            continue;
        }
        let token = token.strip_prefix('v').unwrap_or(token);
        let token = match token.find(|c: char| !"<>=~^".contains(c)) {
            Some(i) if token[i..].starts_with('v') => format!("{}{}", &token[..i], &token[i + 1..]),
            _ => token.to_owned(),
        };
        parts.push(format!("{}{token}", std::mem::take(&mut pending_op)));
    }
    if !pending_op.is_empty() {
        parts.push(pending_op);
    }
    parts.join(", ")
}

impl Porter {
    /// Points a pull of a repository (no tag) at its highest tag that `constraint` accepts, and
    /// returns that tag; an error naming the constraint when none does.
    pub async fn pin_highest_tag(
        &self,
        request: &mut crate::engine::PullRequest,
        constraint: &SemverConstraint,
    ) -> Result<String> {
        let mut listing = TagListRequest::new(&request.original);
        listing.insecure = request.insecure;
        let tag = self.highest_tag(&listing, constraint).await?;
        let chosen = format!("{}:{tag}", request.original);
        request.reference = chosen.parse()?;
        request.original = chosen;
        tracing::info!(constraint = %constraint, %tag, reference = %request.original, "chose the highest matching tag");
        Ok(tag)
    }

    /// The highest tag of `request.repository` that `constraint` accepts, with how many tags
    /// were listed; an error naming the constraint when none does.
    pub async fn highest_tag(
        &self,
        request: &TagListRequest,
        constraint: &SemverConstraint,
    ) -> Result<String> {
        let tags = self.list_tags(request).await?;
        let mut highest = narrow(&request.repository, tags, Some(constraint), true)?;
        highest
            .pop()
            .ok_or_else(|| Error::Internal("narrowing to the latest tag returned none".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(list: &[&str]) -> Vec<String> {
        list.iter().map(|t| (*t).to_owned()).collect()
    }

    #[test]
    fn constraints_select_semantic_versions_in_version_order() {
        let all = tags(&[
            "latest",
            "1.10.0",
            "v1.2.0",
            "1.2.3",
            "1.9.1-rc.1",
            "1.2",
            "2.0.0",
            "v1.3.0-beta",
            "main",
            "1.2.10",
        ]);
        let cases: &[(&str, &[&str])] = &[
            (">=1.2, <2", &["v1.2.0", "1.2.3", "1.2.10", "1.10.0"]),
            (">=1.2 <2", &["v1.2.0", "1.2.3", "1.2.10", "1.10.0"]),
            (">= v1.2 < 2", &["v1.2.0", "1.2.3", "1.2.10", "1.10.0"]),
            ("^1.2", &["v1.2.0", "1.2.3", "1.2.10", "1.10.0"]),
            ("~1.2.3", &["1.2.3", "1.2.10"]),
            ("1.2.x", &["v1.2.0", "1.2.3", "1.2.10"]),
            (">=1.9.1-rc.1, <1.10", &["1.9.1-rc.1"]),
            ("^2 || ~1.2.3", &["1.2.3", "1.2.10", "2.0.0"]),
            ("*", &["v1.2.0", "1.2.3", "1.2.10", "1.10.0", "2.0.0"]),
            (">=3", &[]),
        ];
        for (constraint, want) in cases {
            let c = SemverConstraint::parse(constraint).unwrap();
            assert_eq!(c.select(&all), tags(want), "{constraint}");
        }
    }

    #[test]
    fn invalid_constraints_are_errors_naming_them() {
        for bad in ["", "  ", ">=x.y", "^1.2 ||", "1.2.3.4"] {
            let err = SemverConstraint::parse(bad).unwrap_err().to_string();
            assert!(err.contains("invalid version constraint"), "{bad}: {err}");
        }
    }
}
