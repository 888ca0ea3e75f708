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
}

impl Porter {
    /// Every tag of a repository, in the order the registry returns them, following `Link`
    /// pagination. Needs the registry: offline, this fails.
    pub async fn list_tags(&self, request: &TagListRequest) -> Result<Vec<String>> {
        let invalid = |reason: &str| Error::InvalidReference {
            reference: request.repository.clone(),
            reason: reason.to_owned(),
        };
        let last = request.repository.rsplit('/').next().unwrap_or_default();
        if last.contains(':') || last.contains('@') {
            return Err(invalid(
                "name a repository without a tag or digest to list its tags",
            ));
        }
        if request.repository.starts_with("oci:") {
            return Err(invalid("tags can only be listed in a registry"));
        }
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
