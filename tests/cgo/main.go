// Command cgo calls ds-porter's engine in-process through the Go package
// porter-ffi/go/porter (and, for the C conventions, porter.h directly) against a real registry
// and checks what it gets back: pull with platforms and export, list, export from the cache,
// inspect, tags, copy, push, cache verify, prune and remove, the adapter's operations, the
// error paths (kind and message), concurrent pulls from goroutines, cancellation of pulls and
// copies by context, deadlines, a client closed while it pulls, exports cancelled mid-way
// (also with the process exiting at once), progress callbacks (also one that panics), and
// every result and error JSON against the committed JSON Schemas.
//
// The Rust test tests/tests/ffi_callers.rs builds it against libporter_ffi, starts the registry,
// publishes the fixtures and runs it with:
//
//	PORTER_TEST_REGISTRY   127.0.0.1:PORT (plain HTTP)
//	PORTER_TEST_TOOL       an index: linux/amd64, linux/arm64, windows/amd64; layer "tool" (or
//	                       "tool.exe") holding "tool for <os>/<arch>\n"
//	PORTER_TEST_TOOL_ID    its cache id
//	PORTER_TEST_REFS       comma-separated references pulled concurrently
//	PORTER_TEST_LARGE      a single-manifest artifact with one large layer (for cancellation)
//	PORTER_TEST_SIX        an index of six platforms with a large layer each (for exports)
//	PORTER_TEST_SCHEMAS    the directory of the JSON Schemas (porter-ffi/schema)
//	PORTER_TEST_WORKDIR    an empty directory for the caches, exports and push sources
//
// It exits 0 when every check passed, 1 otherwise (each failure on stderr).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"example.invalid/delivery-station/ds-porter/porter-ffi/go/porter"
)

// T collects failed checks.
type T struct {
	mu     sync.Mutex
	failed int
}

// Check records a failure unless ok; returns ok.
func (t *T) Check(ok bool, format string, args ...any) bool {
	if !ok {
		t.mu.Lock()
		t.failed++
		t.mu.Unlock()
		fmt.Fprintf(os.Stderr, "FAIL: "+format+"\n", args...)
	}
	return ok
}

// ExpectError checks err is a *porter.Error of kind with a message containing want.
func (t *T) ExpectError(err error, kind porter.Kind, want, what string) {
	var e *porter.Error
	if !t.Check(errors.As(err, &e), "%s: want a %s error, got %v", what, kind, err) {
		return
	}
	t.Check(errors.Is(err, kind), "%s: kind %s, want %s", what, e.Kind, kind)
	t.Check(strings.Contains(e.Message, want), "%s: message %q lacks %q", what, e.Message, want)
	t.Check(!strings.Contains(e.Message, " --"), "%s: message %q names a command-line flag", what, e.Message)
}

func env(name string) string {
	v := os.Getenv(name)
	if v == "" {
		fmt.Fprintf(os.Stderr, "%s is not set\n", name)
		os.Exit(2)
	}
	return v
}

func fatal(what string, err error) {
	fmt.Fprintf(os.Stderr, "FATAL: %s: %v\n", what, err)
	os.Exit(1)
}

// config is the clients' configuration: a cache in dir, the registry reachable over plain HTTP.
func config(dir string) porter.Config {
	return porter.Config{
		Cache:    &porter.CacheConfig{Dir: dir},
		Registry: &porter.RegistryConfig{InsecureRegistries: []string{env("PORTER_TEST_REGISTRY")}},
	}
}

// open opens a client on a cache in dir.
func open(dir string) *porter.Client {
	client, err := porter.Open(config(dir))
	if err != nil {
		fatal("open", err)
	}
	return client
}

func listIDs(t *T, c *porter.Client) map[string]bool {
	list, err := c.List(context.Background())
	if err != nil {
		fatal("list", err)
	}
	ids := map[string]bool{}
	for _, a := range list {
		ids[a.ID] = true
	}
	return ids
}

func main() {
	switch {
	case os.Getenv("PORTER_BENCH_RUNS") != "":
		runBench()
		return
	case os.Getenv(childMode) != "":
		runChild()
		return
	}
	watchdog := time.AfterFunc(5*time.Minute, func() {
		fmt.Fprintln(os.Stderr, "FATAL: the checks did not finish within 5 minutes")
		os.Exit(3)
	})
	defer watchdog.Stop()

	t := &T{}
	work := env("PORTER_TEST_WORKDIR")
	schemas := loadSchemas(env("PORTER_TEST_SCHEMAS"))
	checkRaw(t, schemas, work)

	client := open(filepath.Join(work, "cache"))
	list, err := client.List(context.Background())
	t.Check(err == nil && len(list) == 0, "list of an empty cache = %v, %v", list, err)

	checkPullAndExport(t, client, work)
	checkErrors(t, client, work)
	checkDeadlines(t, work)
	checkConcurrentPulls(t, client)
	checkCancel(t, client)
	checkCopyCancel(t, work)
	checkCallbacks(t, client)
	checkCloseWhilePulling(t, work)
	checkExportCancel(t, work)
	checkPush(t, client, work)
	checkCacheCommands(t, client)
	checkAdapter(t, work)

	if err := client.Close(); err != nil {
		t.Check(false, "close: %v", err)
	}
	if t.failed > 0 {
		fmt.Fprintf(os.Stderr, "%d checks failed\n", t.failed)
		os.Exit(1)
	}
	fmt.Println("cgo: all checks passed")
}
