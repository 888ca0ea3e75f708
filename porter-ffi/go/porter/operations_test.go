package porter

// Inspect, Tags, Copy and CacheRemove: on the repository's example layout, and against the real
// registry that tests/tests/ffi_callers.rs starts (PORTER_TEST_REGISTRY, PORTER_TEST_TOOL: an
// index of linux/amd64, linux/arm64 and windows/amd64, PORTER_TEST_TOOL_DIGEST, its digest;
// the tests that need them are skipped without them).

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fixtures is the registry and the index the e2e suite published, or a skip.
func fixtures(t *testing.T) (registry, tool, digest string) {
	t.Helper()
	registry, tool, digest = os.Getenv("PORTER_TEST_REGISTRY"), os.Getenv("PORTER_TEST_TOOL"), os.Getenv("PORTER_TEST_TOOL_DIGEST")
	if registry == "" || tool == "" || digest == "" {
		t.Skip("PORTER_TEST_REGISTRY, PORTER_TEST_TOOL and PORTER_TEST_TOOL_DIGEST are not set (tests/tests/ffi_callers.rs sets them)")
	}
	return registry, tool, digest
}

// openRegistry opens a client on a fresh cache that speaks plain HTTP to registry.
func openRegistry(t *testing.T, registry string) *Client {
	t.Helper()
	c, err := Open(Config{
		Cache:    &CacheConfig{Dir: t.TempDir()},
		Registry: &RegistryConfig{InsecureRegistries: []string{registry}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func sha256Digest(b []byte) string {
	return fmt.Sprintf("sha256:%x", sha256.Sum256(b))
}

func TestInspectOfAnIndexInTheRegistryListsItsPlatforms(t *testing.T) {
	registry, tool, digest := fixtures(t)
	c := openRegistry(t, registry)
	ctx := context.Background()
	found, err := c.Inspect(ctx, tool, nil)
	if err != nil {
		t.Fatal(err)
	}
	if found.Digest != digest || found.Source != "registry" || found.Reference != tool {
		t.Fatalf("inspection of %s: %+v, want digest %s from the registry", tool, found, digest)
	}
	var platforms []string
	for _, p := range found.Platforms {
		platforms = append(platforms, p.Platform)
		if len(p.Layers) != 1 || p.Config == nil || !strings.HasPrefix(p.Layers[0].Title, "tool") {
			t.Errorf("%s: config %v, layers %+v", p.Platform, p.Config, p.Layers)
		}
	}
	if want := []string{"linux/amd64", "linux/arm64", "windows/amd64"}; !reflect.DeepEqual(platforms, want) {
		t.Fatalf("platforms %v, want %v", platforms, want)
	}
	raw, err := c.InspectRaw(ctx, tool, &InspectOptions{Retries: Retries(1)})
	if err != nil || sha256Digest(raw) != digest || int64(len(raw)) != found.Size {
		t.Fatalf("raw index: %d bytes hashing to %s, %v; want %d bytes, %s", len(raw), sha256Digest(raw), err, found.Size, digest)
	}
	if list, err := c.List(ctx); err != nil || len(list) != 0 {
		t.Fatalf("inspect cached an artifact: %v, %v", list, err)
	}

	_, err = c.Inspect(ctx, registry+"/demo/missing:1.0", nil)
	if !errors.Is(err, KindNotFound) {
		t.Fatalf("inspect of a missing repository: %v", err)
	}
	_, err = c.Inspect(ctx, tool, &InspectOptions{Offline: true})
	if !errors.Is(err, KindNotFound) {
		t.Fatalf("offline inspect of an uncached tag: %v", err)
	}
}

func TestTagsNarrowedByASemverConstraint(t *testing.T) {
	registry, _, _ := fixtures(t)
	c := openRegistry(t, registry)
	ctx := context.Background()
	source := filepath.Join(t.TempDir(), "versioned")
	if err := os.WriteFile(source, []byte("versioned\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	repo := registry + "/gotest/versions"
	for _, tag := range []string{"1.0.0", "1.2.0", "1.10.0", "2.0.0-rc.1", "nightly"} {
		if _, err := c.Push(ctx, source, repo+":"+tag, &PushOptions{Insecure: true, NoLatest: true}); err != nil {
			t.Fatalf("push %s: %v", tag, err)
		}
	}

	all, err := c.Tags(ctx, repo, &TagsOptions{PageSize: 2})
	if err != nil || all.Repository != repo || all.Constraint != "" ||
		!reflect.DeepEqual(all.Tags, []string{"1.0.0", "1.10.0", "1.2.0", "2.0.0-rc.1", "nightly"}) {
		t.Fatalf("every tag, two a page: %+v, %v", all, err)
	}
	ones, err := c.Tags(ctx, repo, &TagsOptions{Semver: "^1.2"})
	if err != nil || ones.Constraint != "^1.2" || !reflect.DeepEqual(ones.Tags, []string{"1.2.0", "1.10.0"}) {
		t.Fatalf("tags ^1.2: %+v, %v", ones, err)
	}
	latest, err := c.Tags(ctx, repo, &TagsOptions{Semver: ">=1, <3", Latest: true})
	if err != nil || !reflect.DeepEqual(latest.Tags, []string{"1.10.0"}) {
		t.Fatalf("latest of >=1, <3: %+v, %v", latest, err)
	}

	_, err = c.Tags(ctx, repo, &TagsOptions{Semver: "^3", Latest: true})
	if !errors.Is(err, KindNotFound) || !strings.Contains(err.Error(), "^3") {
		t.Fatalf("latest of ^3: %v", err)
	}
	_, err = c.Tags(ctx, repo, &TagsOptions{Semver: "one point two"})
	if !errors.Is(err, KindInvalidInput) || !strings.Contains(err.Error(), "invalid version constraint") {
		t.Fatalf("an invalid constraint: %v", err)
	}
	_, err = c.Tags(ctx, repo+":1.0.0", nil)
	if !errors.Is(err, KindInvalidInput) {
		t.Fatalf("tags of a reference with a tag: %v", err)
	}
}

func TestCopyFromTheRegistryToALayoutKeepsTheDigest(t *testing.T) {
	registry, tool, digest := fixtures(t)
	c := openRegistry(t, registry)
	ctx := context.Background()
	layout := "oci:" + filepath.Join(t.TempDir(), "airgap")
	var started, done atomic.Int64
	copied, err := c.Copy(ctx, tool, layout, &CopyOptions{
		Progress: func(ev ProgressEvent) {
			switch ev.Kind {
			case ProgressStarted:
				started.Add(1)
			case ProgressDone:
				done.Add(1)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if copied.Digest != digest || copied.SourceDigest != digest || copied.Subset ||
		len(copied.Platforms) != 3 || copied.Destination != layout+":1.0" {
		t.Fatalf("copy result %+v, want every platform of %s at %s:1.0", copied, digest, layout)
	}
	if started.Load() == 0 || done.Load() == 0 {
		t.Fatalf("no progress: %d started, %d done", started.Load(), done.Load())
	}
	found, err := c.Inspect(ctx, copied.Destination, nil)
	if err != nil || found.Digest != digest || found.Source != "layout" || len(found.Platforms) != 3 {
		t.Fatalf("inspection of the copy: %+v, %v", found, err)
	}

	subset, err := c.Copy(ctx, tool, layout+":arm", &CopyOptions{Platforms: []string{"linux/arm64"}})
	if err != nil || !subset.Subset || subset.Digest == digest || !reflect.DeepEqual(subset.Platforms, []string{"linux/arm64"}) {
		t.Fatalf("copy of one platform: %+v, %v", subset, err)
	}
	_, err = c.Copy(ctx, tool, layout, &CopyOptions{AllArch: true, Platforms: []string{"linux/arm64"}})
	if !errors.Is(err, KindInvalidInput) || !strings.Contains(err.Error(), "all_arch and platforms") {
		t.Fatalf("copy with all_arch and platforms: %v", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.Copy(cancelled, tool, layout+":never", nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("copy with a cancelled context: %v", err)
	}
}

func TestCacheRemoveOfAPulledEntryLeavesTheCacheEmpty(t *testing.T) {
	registry, tool, _ := fixtures(t)
	c := openRegistry(t, registry)
	ctx := context.Background()
	pulled, err := c.Pull(ctx, tool, &PullOptions{AllArch: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.CacheRemove(ctx, pulled.ID, "no-such-artifact")
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, KindNotFound) || e.Op != "remove" || !strings.Contains(e.Message, "no-such-artifact") {
		t.Fatalf("removing an unknown name: %v", err)
	}
	if list, err := c.List(ctx); err != nil || len(list) != 1 {
		t.Fatalf("a failed removal removed something: %v, %v", list, err)
	}
	report, err := c.CacheRemove(ctx, tool)
	if err != nil || !reflect.DeepEqual(report.Removed, []string{pulled.ID}) || report.RemovedBlobs == 0 || report.FreedBytes == 0 {
		t.Fatalf("removing %s: %+v, %v", tool, report, err)
	}
	if list, err := c.List(ctx); err != nil || len(list) != 0 {
		t.Fatalf("list after the removal: %v, %v", list, err)
	}
	if _, err := c.CacheRemove(ctx); !errors.Is(err, KindInvalidInput) {
		t.Fatalf("removing no name: %v", err)
	}
	if _, err := c.CacheRemove(ctx, " "); !errors.Is(err, KindInvalidInput) {
		t.Fatalf("removing an empty name: %v", err)
	}
}

// The example layout needs no registry: inspect it, copy it to another layout, remove it.
func TestInspectCopyAndRemoveOnTheExampleLayout(t *testing.T) {
	c := open(t)
	ctx := context.Background()
	found, err := c.Inspect(ctx, store, nil)
	if err != nil || found.Source != "layout" || len(found.Platforms) != 6 {
		t.Fatalf("inspection of %s: %+v, %v", store, found, err)
	}
	raw, err := c.InspectRaw(ctx, store, nil)
	if err != nil || sha256Digest(raw) != found.Digest {
		t.Fatalf("raw root of %s hashes to %s, %v; want %s", store, sha256Digest(raw), err, found.Digest)
	}
	copied, err := c.Copy(ctx, store, "oci:"+filepath.Join(t.TempDir(), "copy"), nil)
	if err != nil || copied.Digest != found.Digest {
		t.Fatalf("copy of %s: %+v, %v", store, copied, err)
	}
	again, err := c.Inspect(ctx, copied.Destination, nil)
	if err != nil || again.Digest != found.Digest {
		t.Fatalf("inspection of the copy: %+v, %v", again, err)
	}
	report, err := c.CacheRemove(ctx, copied.SourceDigest)
	if err != nil || len(report.Removed) != 1 {
		t.Fatalf("removing %s: %+v, %v", copied.SourceDigest, report, err)
	}
	if list, err := c.List(ctx); err != nil || len(list) != 0 {
		t.Fatalf("list after the removal: %v, %v", list, err)
	}
}

func TestNewOptionsAreWrittenAsTheLibraryReadsThem(t *testing.T) {
	for _, tc := range []struct {
		opts any
		want string
	}{
		{&TagsOptions{Semver: "^1", Latest: true, PageSize: 5}, `{"semver":"^1","latest":true,"page_size":5}`},
		{&CopyOptions{Platforms: []string{"linux/arm64"}, Insecure: true}, `{"platforms":["linux/arm64"],"insecure":true}`},
		{&InspectOptions{Offline: true}, `{"offline":true}`},
		{struct {
			*InspectOptions
			Raw bool `json:"raw"`
		}{nil, true}, `{"raw":true}`},
	} {
		text, err := optionsJSON(tc.opts, time.Time{}, false)
		if err != nil || text != tc.want {
			t.Errorf("%#v = %s, %v; want %s", tc.opts, text, err, tc.want)
		}
	}
}
