// Package porter calls ds-porter's engine in-process: pull artifacts from OCI registries into
// a shared content-addressed cache, export them, inspect them, list tags, copy between
// registries and layouts, push, list and maintain the cache, without launching the ds-porter
// plugin. It wraps the C ABI of porter-ffi (porter.h) through cgo.
//
// A Client is safe for concurrent use by many goroutines. Every call takes a context: cancelling
// it stops the call, and its deadline bounds it; a stopped call returns only once its work has
// stopped (downloads abandoned, nothing partial in the cache, an export's staging removed from
// the destination, nothing appearing there afterwards). Failures are *Error values whose Kind
// works with errors.Is. Progress arrives through a ProgressFunc on the calling goroutine, and
// only while the call runs. Close cancels the calls still running and waits for them.
//
// # Linking
//
// Build the library first (`make ffi`, or `cargo build --release -p porter-ffi`). By default
// the package links the static archive libporter_ffi.a from the repository's target/release,
// with the header from porter-ffi/include; a library elsewhere is found through
// CGO_LDFLAGS="-L<dir>" (searched first). Build tags choose another way:
//
//	-tags porter_shared     link libporter_ffi.so instead (run-time search path: target/release)
//	-tags porter_pkgconfig  take every flag from pkg-config's porter-ffi.pc (`make ffi` writes it
//	                        to target/<profile>/pkgconfig; put that on PKG_CONFIG_PATH)
//
// The linker keeps unused parts of the archive unless told to drop them, which makes a small
// program several megabytes larger. Pass the flag to the external linker at build time:
//
//	go build -ldflags=-extldflags=-Wl,--gc-sections
//
// cgo refuses -Wl,--gc-sections in a package's #cgo directives, so this package cannot add it
// itself (or allow it with CGO_LDFLAGS_ALLOW='-Wl,--gc-sections' and CGO_LDFLAGS).
//
// Under valgrind, suppress the Go runtime's own reports with valgrind-go.supp from this
// directory.
package porter

/*
#include <stdint.h>
#include <stdlib.h>
#include "porter.h"
*/
import "C"

import (
	"context"
	"encoding/json"
	"time"
)

// Version is the library's version.
func Version() string {
	return C.GoString(C.porter_version())
}

// Config is DS's configuration (the fields of DS's types.Config that the engine reads), encoded
// as DS encodes it. Fields left at their zero value are not sent and take DS's defaults. Any
// other value that marshals to DS's configuration JSON (DS's own types.Config, a map,
// json.RawMessage) may be passed to Open instead.
type Config struct {
	Registry *RegistryConfig           `json:",omitempty"`
	Auth     *AuthConfig               `json:",omitempty"`
	Cache    *CacheConfig              `json:",omitempty"`
	Logging  *LoggingConfig            `json:",omitempty"`
	Proxy    *ProxyConfig              `json:",omitempty"`
	Settings map[string]map[string]any `json:",omitempty"`
}

// RegistryConfig is DS's Registry section.
type RegistryConfig struct {
	Default            string   `json:",omitempty"`
	Mirrors            []string `json:",omitempty"`
	InsecureRegistries []string `json:",omitempty"`
}

// AuthConfig is DS's Auth section.
type AuthConfig struct {
	DockerConfig string       `json:",omitempty"`
	Credentials  []Credential `json:",omitempty"`
}

// Credential is one entry of DS's Auth.Credentials.
type Credential struct {
	Registry string `json:",omitempty"`
	Username string `json:",omitempty"`
	Password string `json:",omitempty"`
	Token    string `json:",omitempty"`
}

// CacheConfig is DS's Cache section; the engine's cache is the porter directory inside Dir.
type CacheConfig struct {
	Dir     string        `json:",omitempty"`
	MaxSize int64         `json:",omitempty"`
	TTL     time.Duration `json:",omitempty"`
}

// LoggingConfig is DS's Logging section.
type LoggingConfig struct {
	Level  string `json:",omitempty"`
	Format string `json:",omitempty"`
	Output string `json:",omitempty"`
}

// ProxyConfig is DS's Proxy section.
type ProxyConfig struct {
	HTTPProxy  string `json:",omitempty"`
	HTTPSProxy string `json:",omitempty"`
	NoProxy    string `json:",omitempty"`
}

// Client is the engine on one configuration.
type Client struct {
	lifecycle
	ptr *C.porter_client
}

// Open opens a client on cfg: a Config, DS's own types.Config, or any value that marshals to
// DS's configuration JSON. A nil cfg reads the configuration as the ds-porter command line does
// (defaults, ~/.config/ds/config.yaml, DS_* environment variables). A key DS's configuration
// does not have is a KindInvalidInput error naming it. Open creates the cache directory.
func Open(cfg any) (*Client, error) {
	config, free, err := configJSON(cfg)
	if err != nil {
		return nil, err
	}
	defer free()
	var ptr *C.porter_client
	var errOut *C.char
	status := C.porter_client_new(config, &ptr, &errOut)
	if _, err := take("open", status, nil, errOut); err != nil {
		return nil, err
	}
	return &Client{lifecycle: newLifecycle(), ptr: ptr}, nil
}

// Close cancels the calls still running with c, waits until they have returned, and frees the
// client. Calls made during or after Close return an error matching ErrClosed. Close is
// idempotent. It must not be called from a ProgressFunc.
func (c *Client) Close() error {
	c.close(func() { C.porter_client_close(c.ptr) }, func() { C.porter_client_free(c.ptr) })
	return nil
}

// run calls fn with the client's handle unless the client is closed.
func (c *Client) run(ctx context.Context, op string, progress ProgressFunc,
	fn func(*C.porter_client, *C.porter_call, **C.char, **C.char) C.porter_status) ([]byte, error) {
	return c.call(op, func() ([]byte, error) {
		return invoke(ctx, op, progress, func(call *C.porter_call, out, errOut **C.char) C.porter_status {
			return fn(c.ptr, call, out, errOut)
		})
	})
}

// withOptions is a C function of a client call that takes options JSON.
type withOptions func(client *C.porter_client, options *C.char, call *C.porter_call, out, errOut **C.char) C.porter_status

// request runs fn with opts as the library's options JSON (with timeout_ms from ctx's deadline
// when deadline is set) and decodes the result into a T.
func request[T any](c *Client, ctx context.Context, op string, opts any, progress ProgressFunc, deadline bool, fn withOptions) (*T, error) {
	result, err := c.requestText(ctx, op, opts, progress, deadline, fn)
	return decode[T](op, result, err)
}

// requestText is request without decoding: the result as the library wrote it.
func (c *Client) requestText(ctx context.Context, op string, opts any, progress ProgressFunc, deadline bool, fn withOptions) ([]byte, error) {
	end, ok := ctx.Deadline()
	text, err := optionsJSON(opts, end, ok && deadline)
	if err != nil {
		return nil, &Error{Op: op, Kind: KindInvalidInput, Message: "options: " + err.Error()}
	}
	options, free := cString(text)
	defer free()
	return c.run(ctx, op, progress, func(client *C.porter_client, call *C.porter_call, out, errOut **C.char) C.porter_status {
		return fn(client, options, call, out, errOut)
	})
}

// Artifact is a pulled, exported, pushed or cached artifact (porter-ffi/schema/artifact.schema.json).
type Artifact struct {
	// ID is the cache id: the first 16 hex digits of the root digest.
	ID string `json:"id"`
	// Reference is the reference as given.
	Reference string `json:"reference"`
	// Digest is the root index or manifest digest.
	Digest string `json:"digest"`
	// Size is the root index or manifest's size in bytes.
	Size int64 `json:"size"`
	// LocalPath is the artifact's cache entry directory.
	LocalPath string `json:"local_path,omitempty"`
	// Metadata holds the artifact's annotations.
	Metadata map[string]string `json:"metadata,omitempty"`
	// PluginInfo is set when the artifact declares ds.plugin.name.
	PluginInfo *PluginInfo `json:"plugin_info,omitempty"`
	// Cached says whether the artifact is in the cache.
	Cached bool `json:"cached"`
	// CachedAt is when it was cached (the zero time when unknown).
	CachedAt time.Time `json:"cached_at"`
	// ExportedFiles are the paths an export wrote, joined to the destination as given.
	ExportedFiles []string `json:"exported_files,omitempty"`
	// Offline is set when the artifact was served from the cache without the registry.
	Offline bool `json:"offline,omitempty"`
}

// PluginInfo is what an artifact declares through ds.plugin.* annotations.
type PluginInfo struct {
	PluginName string            `json:"plugin_name"`
	Version    string            `json:"version,omitempty"`
	Parameters map[string]string `json:"parameters,omitempty"`
}

// PullOptions are the options of Pull. The zero value pulls this platform into the cache.
type PullOptions struct {
	// Platforms to fetch ("linux/amd64", "linux/arm/v7"); empty: this platform.
	Platforms []string `json:"platforms,omitempty"`
	// AllArch fetches every platform (not together with Platforms).
	AllArch bool `json:"all_arch,omitempty"`
	// Output, when set, is the file or directory to export into.
	Output string `json:"output,omitempty"`
	// Overwrite allows replacing an existing file (anything but a directory) at Output.
	Overwrite bool `json:"overwrite,omitempty"`
	// Insecure allows plain HTTP to the reference's registry.
	Insecure bool `json:"insecure,omitempty"`
	// Offline serves the pull from the cache alone.
	Offline bool `json:"offline,omitempty"`
	// Retries is how often a failed registry request is tried again (0–20); nil: the
	// configuration's (settings.porter.retries).
	Retries *int `json:"retries,omitempty"`
	// Progress receives the call's transfer events.
	Progress ProgressFunc `json:"-"`
}

// Pull pulls ref into the cache and, with opts.Output, exports it. nil opts means the defaults.
func (c *Client) Pull(ctx context.Context, ref string, opts *PullOptions) (*Artifact, error) {
	reference, freeRef := cString(ref)
	defer freeRef()
	return request[Artifact](c, ctx, "pull", opts, opts.progress(), true,
		func(client *C.porter_client, options *C.char, call *C.porter_call, out, errOut **C.char) C.porter_status {
			return C.porter_client_pull(client, reference, options, call, out, errOut)
		})
}

func (o *PullOptions) progress() ProgressFunc {
	if o == nil {
		return nil
	}
	return o.Progress
}

// ExportOptions are the options of Export.
type ExportOptions struct {
	// Platforms to export; empty: this platform, straight into the destination.
	Platforms []string `json:"platforms,omitempty"`
	// AllArch exports every cached platform into per-platform directories.
	AllArch bool `json:"all_arch,omitempty"`
	// Overwrite allows replacing an existing file (anything but a directory) at the destination.
	Overwrite bool `json:"overwrite,omitempty"`
	// Progress receives the call's events.
	Progress ProgressFunc `json:"-"`
}

// Export exports the cached artifact ref into output without touching the network (a digest as
// pinned, a tag as last pulled); KindNotFound when it is not cached. nil opts means the defaults.
func (c *Client) Export(ctx context.Context, ref, output string, opts *ExportOptions) (*Artifact, error) {
	reference, freeRef := cString(ref)
	defer freeRef()
	dest, freeDest := cString(output)
	defer freeDest()
	return request[Artifact](c, ctx, "export", opts, opts.progress(), true,
		func(client *C.porter_client, options *C.char, call *C.porter_call, out, errOut **C.char) C.porter_status {
			return C.porter_client_export(client, reference, dest, options, call, out, errOut)
		})
}

func (o *ExportOptions) progress() ProgressFunc {
	if o == nil {
		return nil
	}
	return o.Progress
}

// PushOptions are the options of Push.
type PushOptions struct {
	// Manifest reads the source as a ds.manifest.yaml release manifest whatever its name.
	Manifest bool
	// Insecure allows plain HTTP to the target registry.
	Insecure bool
	// NoLatest skips tagging latest besides the reference's tag.
	NoLatest bool
	// Retries is how often a failed registry request is tried again (0–20); nil: the
	// configuration's.
	Retries *int
	// Progress receives the call's events.
	Progress ProgressFunc
}

// MarshalJSON writes the library's push options.
func (o PushOptions) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Manifest  bool `json:"manifest,omitempty"`
		Insecure  bool `json:"insecure,omitempty"`
		TagLatest bool `json:"tag_latest"`
		Retries   *int `json:"retries,omitempty"`
	}{o.Manifest, o.Insecure, !o.NoLatest, o.Retries})
}

// Push pushes source (a binary, a directory, or a ds.manifest.yaml release) to ref (a registry
// reference or oci:<dir>[:tag]). nil opts means the defaults.
func (c *Client) Push(ctx context.Context, source, ref string, opts *PushOptions) (*Artifact, error) {
	src, freeSrc := cString(source)
	defer freeSrc()
	reference, freeRef := cString(ref)
	defer freeRef()
	return request[Artifact](c, ctx, "push", opts, opts.progress(), true,
		func(client *C.porter_client, options *C.char, call *C.porter_call, out, errOut **C.char) C.porter_status {
			return C.porter_client_push(client, src, reference, options, call, out, errOut)
		})
}

func (o *PushOptions) progress() ProgressFunc {
	if o == nil {
		return nil
	}
	return o.Progress
}

// List returns every cached artifact, sorted by id. It cannot be cancelled once started.
func (c *Client) List(ctx context.Context) ([]Artifact, error) {
	text, err := c.run(ctx, "list", nil, func(client *C.porter_client, _ *C.porter_call, out, errOut **C.char) C.porter_status {
		return C.porter_client_list(client, out, errOut)
	})
	list, err := decode[[]Artifact]("list", text, err)
	if err != nil {
		return nil, err
	}
	return *list, nil
}

// PruneOptions are the options of Prune; zero fields take the configured limits (DS's
// Cache.TTL and Cache.MaxSize).
type PruneOptions struct {
	// TTL removes artifacts not used for this long (whole seconds).
	TTL time.Duration
	// MaxSize, when set, removes least recently used artifacts until the blobs take at most
	// this many bytes (0 removes everything).
	MaxSize *uint64
}

// MarshalJSON writes the library's prune options.
func (o PruneOptions) MarshalJSON() ([]byte, error) {
	var ttl *uint64
	if o.TTL > 0 {
		seconds := uint64(o.TTL / time.Second)
		ttl = &seconds
	}
	return json.Marshal(struct {
		TTL     *uint64 `json:"ttl_seconds,omitempty"`
		MaxSize *uint64 `json:"max_size_bytes,omitempty"`
	}{ttl, o.MaxSize})
}

// PruneReport is what Prune or CacheRemove removed (porter-ffi/schema/prune-report.schema.json).
type PruneReport struct {
	// Removed are the ids of the removed artifacts, least recently used first.
	Removed []string `json:"removed"`
	// RemovedBlobs is how many blobs were deleted.
	RemovedBlobs int `json:"removed_blobs"`
	// FreedBytes is their size.
	FreedBytes uint64 `json:"freed_bytes"`
	// RemainingBytes is what the remaining blobs take.
	RemainingBytes uint64 `json:"remaining_bytes"`
}

// Prune removes least recently used artifacts by opts (nil: the configured limits), deleting
// only blobs no remaining artifact needs; it waits up to a minute for running pulls. It cannot
// be cancelled once started.
func (c *Client) Prune(ctx context.Context, opts *PruneOptions) (*PruneReport, error) {
	return request[PruneReport](c, ctx, "prune", opts, nil, false,
		func(client *C.porter_client, options *C.char, _ *C.porter_call, out, errOut **C.char) C.porter_status {
			return C.porter_client_cache_prune(client, options, out, errOut)
		})
}

// VerifyOptions are the options of Verify.
type VerifyOptions struct {
	// Repair deletes damaged blobs and fetches damaged or missing ones again.
	Repair bool `json:"repair,omitempty"`
	// Insecure allows plain HTTP to the registries a repair fetches from.
	Insecure bool `json:"insecure,omitempty"`
	// Retries is how often a failed registry request is tried again (0–20); nil: the
	// configuration's.
	Retries *int `json:"retries,omitempty"`
	// Progress receives the call's events.
	Progress ProgressFunc `json:"-"`
}

// BlobProblem is a damaged or missing blob and the cached references that need it.
type BlobProblem struct {
	Digest   string   `json:"digest"`
	NeededBy []string `json:"needed_by"`
}

// VerifyReport is what Verify found and repaired (porter-ffi/schema/verify-report.schema.json).
type VerifyReport struct {
	Checked      int           `json:"checked"`
	CheckedBytes uint64        `json:"checked_bytes"`
	Corrupt      []BlobProblem `json:"corrupt"`
	Missing      []BlobProblem `json:"missing"`
	Repaired     []string      `json:"repaired,omitempty"`
	Unrepaired   []string      `json:"unrepaired,omitempty"`
}

// Verify re-hashes every cached blob and checks cached artifacts are complete; with
// opts.Repair it fetches damaged or missing blobs again. nil opts means the defaults.
func (c *Client) Verify(ctx context.Context, opts *VerifyOptions) (*VerifyReport, error) {
	return request[VerifyReport](c, ctx, "verify", opts, opts.progress(), true,
		func(client *C.porter_client, options *C.char, call *C.porter_call, out, errOut **C.char) C.porter_status {
			return C.porter_client_cache_verify(client, options, call, out, errOut)
		})
}

func (o *VerifyOptions) progress() ProgressFunc {
	if o == nil {
		return nil
	}
	return o.Progress
}

// InspectOptions are the options of Inspect and InspectRaw.
type InspectOptions struct {
	// Insecure allows plain HTTP to the reference's registry.
	Insecure bool `json:"insecure,omitempty"`
	// Offline answers from the cache alone.
	Offline bool `json:"offline,omitempty"`
	// Retries is how often a failed registry request is tried again (0–20); nil: the
	// configuration's.
	Retries *int `json:"retries,omitempty"`
}

// Inspection is what an artifact is, without its layers
// (porter-ffi/schema/inspection.schema.json).
type Inspection struct {
	// Reference is the reference as given.
	Reference string `json:"reference"`
	// Resolved is the reference resolved (against Registry.Default; a layout by its directory).
	Resolved string `json:"resolved"`
	// Digest is the digest of the root manifest or index.
	Digest string `json:"digest"`
	// MediaType is the root's media type.
	MediaType string `json:"media_type"`
	// Size is the root's size in bytes.
	Size int64 `json:"size"`
	// ArtifactType is the root's artifactType, when it has one.
	ArtifactType string `json:"artifact_type,omitempty"`
	// Annotations are the root's annotations.
	Annotations map[string]string `json:"annotations"`
	// Source is where the answer came from: "registry", "mirror", "layout" or "cache".
	Source string `json:"source"`
	// Mirror is the mirror that answered, when one did.
	Mirror string `json:"mirror,omitempty"`
	// Platforms are each platform's manifest, in index order (one for a single manifest).
	Platforms []PlatformManifest `json:"platforms"`
	// TotalSize is the bytes of the root, every manifest listed and every config and layer
	// they name.
	TotalSize int64 `json:"total_size"`
}

// PlatformManifest is one platform's manifest in an Inspection.
type PlatformManifest struct {
	// Platform is "os/arch[/variant]", or "unknown" when the index does not say.
	Platform  string `json:"platform"`
	Digest    string `json:"digest"`
	MediaType string `json:"media_type"`
	Size      int64  `json:"size"`
	// ArtifactType is the manifest's artifactType, when it has one.
	ArtifactType string `json:"artifact_type,omitempty"`
	// Annotations are the index entry's and the manifest's own, the manifest's winning.
	Annotations map[string]string `json:"annotations"`
	// Config is nil, and Layers nil (not empty), when the manifest's content is unknown (an
	// offline answer from a cache that lacks it).
	Config *Blob  `json:"config,omitempty"`
	Layers []Blob `json:"layers"`
	// TotalSize is the bytes of the manifest, its config and its layers.
	TotalSize int64 `json:"total_size"`
}

// Blob is a config or layer a manifest names.
type Blob struct {
	// Title is the org.opencontainers.image.title annotation, when set.
	Title     string `json:"title,omitempty"`
	MediaType string `json:"media_type"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
}

// Inspect describes ref (a registry reference or oci:<dir>[:tag|@digest]) without downloading
// layers: its root manifest or index and each platform's manifest with its layers and sizes. A
// digest reference whose manifests are cached, and opts.Offline, are answered from the cache.
// nil opts means the defaults.
func (c *Client) Inspect(ctx context.Context, ref string, opts *InspectOptions) (*Inspection, error) {
	reference, freeRef := cString(ref)
	defer freeRef()
	return request[Inspection](c, ctx, "inspect", opts, nil, true,
		func(client *C.porter_client, options *C.char, call *C.porter_call, out, errOut **C.char) C.porter_status {
			return C.porter_client_inspect(client, reference, options, call, out, errOut)
		})
}

// InspectRaw returns the root manifest or index of ref exactly as served (its SHA-256 is the
// Digest Inspect reports). nil opts means the defaults.
func (c *Client) InspectRaw(ctx context.Context, ref string, opts *InspectOptions) ([]byte, error) {
	reference, freeRef := cString(ref)
	defer freeRef()
	raw := struct {
		*InspectOptions
		Raw bool `json:"raw"`
	}{opts, true}
	return c.requestText(ctx, "inspect", raw, nil, true,
		func(client *C.porter_client, options *C.char, call *C.porter_call, out, errOut **C.char) C.porter_status {
			return C.porter_client_inspect(client, reference, options, call, out, errOut)
		})
}

// TagsOptions are the options of Tags.
type TagsOptions struct {
	// Semver keeps only the tags that are semantic versions this constraint accepts (">=1.2, <2",
	// "^1.2", "~1.2.3", "1.x", alternatives joined by "||"), lowest first.
	Semver string `json:"semver,omitempty"`
	// Latest keeps only the highest version (of those Semver keeps, else of every version tag);
	// none is a KindNotFound error.
	Latest bool `json:"latest,omitempty"`
	// Insecure allows plain HTTP to the repository's registry.
	Insecure bool `json:"insecure,omitempty"`
	// PageSize is how many tags are asked for per page (1–65535); 0: 100. Every page is
	// followed.
	PageSize int `json:"page_size,omitempty"`
	// Retries is how often a failed registry request is tried again (0–20); nil: the
	// configuration's.
	Retries *int `json:"retries,omitempty"`
}

// TagList is a repository's tags (porter-ffi/schema/tags.schema.json).
type TagList struct {
	// Repository is the repository as given.
	Repository string `json:"repository"`
	// Constraint is TagsOptions.Semver, when one was given.
	Constraint string `json:"constraint,omitempty"`
	// Tags are, without a constraint, every tag sorted; with one, the versions it accepts,
	// lowest first (only the highest with Latest).
	Tags []string `json:"tags"`
}

// Tags lists the tags of repo (registry/repository, or a short name; no tag or digest),
// following every page. nil opts means the defaults.
func (c *Client) Tags(ctx context.Context, repo string, opts *TagsOptions) (*TagList, error) {
	repository, freeRepo := cString(repo)
	defer freeRepo()
	return request[TagList](c, ctx, "tags", opts, nil, true,
		func(client *C.porter_client, options *C.char, call *C.porter_call, out, errOut **C.char) C.porter_status {
			return C.porter_client_tags(client, repository, options, call, out, errOut)
		})
}

// CopyOptions are the options of Copy. The zero value copies every platform.
type CopyOptions struct {
	// Platforms to copy under a new index over the source's own platform manifests; empty:
	// every platform, every digest kept.
	Platforms []string `json:"platforms,omitempty"`
	// AllArch copies every platform (the default, spelled out; not together with Platforms).
	AllArch bool `json:"all_arch,omitempty"`
	// Insecure allows plain HTTP to the registries the source and the destination name.
	Insecure bool `json:"insecure,omitempty"`
	// Retries is how often a failed registry request is tried again (0–20); nil: the
	// configuration's.
	Retries *int `json:"retries,omitempty"`
	// Progress receives the call's transfer events.
	Progress ProgressFunc `json:"-"`
}

func (o *CopyOptions) progress() ProgressFunc {
	if o == nil {
		return nil
	}
	return o.Progress
}

// CopyResult is what Copy did (porter-ffi/schema/copy-outcome.schema.json).
type CopyResult struct {
	// Source is the source as given.
	Source string `json:"source"`
	// Destination is the destination as written, with the tag or digest it was stored under.
	Destination string `json:"destination"`
	// SourceDigest is the digest of the source's root manifest or index.
	SourceDigest string `json:"source_digest"`
	// Digest is what the destination now holds: SourceDigest unless a subset was copied.
	Digest string `json:"digest"`
	// MediaType is that root's media type.
	MediaType string `json:"media_type"`
	// Platforms are the platforms copied, in index order.
	Platforms []string `json:"platforms"`
	// Subset is set when a platform subset was copied under a new index.
	Subset bool `json:"subset"`
	// Manifests is how many manifests and indexes were written.
	Manifests int `json:"manifests"`
	// BlobsCopied, BlobsSkipped and BlobsMounted count the blobs sent, those the destination
	// had, and those mounted from another repository of the destination registry.
	BlobsCopied  int `json:"blobs_copied"`
	BlobsSkipped int `json:"blobs_skipped"`
	BlobsMounted int `json:"blobs_mounted"`
	// BytesCopied is the size of the blobs sent.
	BytesCopied uint64 `json:"bytes_copied"`
	// BytesDownloaded is what was fetched from the source (what the cache did not have).
	BytesDownloaded uint64 `json:"bytes_downloaded"`
}

// Copy copies src to dst, each a registry reference or oci:<dir>[:tag|@digest], in any
// combination: a pull into the cache, then an upload of what the destination lacks. A dst
// without a tag or digest takes the source's tag. Cancelling ctx stops the pull as it stops
// Pull and abandons the upload (the destination's tag moves only at the end). nil opts means
// the defaults.
func (c *Client) Copy(ctx context.Context, src, dst string, opts *CopyOptions) (*CopyResult, error) {
	source, freeSrc := cString(src)
	defer freeSrc()
	destination, freeDst := cString(dst)
	defer freeDst()
	return request[CopyResult](c, ctx, "copy", opts, opts.progress(), true,
		func(client *C.porter_client, options *C.char, call *C.porter_call, out, errOut **C.char) C.porter_status {
			return C.porter_client_copy(client, source, destination, options, call, out, errOut)
		})
}

// CacheRemove removes the cached artifacts names names (ids, digests or references as pulled)
// and every blob no remaining artifact needs, waiting up to a minute for running pulls. A name
// that matches nothing is a KindNotFound error, and then nothing is removed; no name, or an
// empty one, is KindInvalidInput. It cannot be cancelled once started.
func (c *Client) CacheRemove(ctx context.Context, names ...string) (*PruneReport, error) {
	if names == nil {
		names = []string{}
	}
	text, err := json.Marshal(names)
	if err != nil {
		return nil, &Error{Op: "remove", Kind: KindInvalidInput, Message: "names: " + err.Error()}
	}
	list, free := cString(string(text))
	defer free()
	result, err := c.run(ctx, "remove", nil, func(client *C.porter_client, _ *C.porter_call, out, errOut **C.char) C.porter_status {
		return C.porter_client_cache_remove(client, list, out, errOut)
	})
	return decode[PruneReport]("remove", result, err)
}

// Retries returns n as a pointer, for the Retries fields of the options.
func Retries(n int) *int { return &n }
