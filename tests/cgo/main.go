// Command cgo calls ds-porter's engine in-process through the C ABI (porter-ffi, porter.h)
// against a real registry and checks what it gets back: pull with platforms and export, list,
// export from the cache, push, cache verify and prune, the adapter's operations, the error paths
// (status, kind, message), concurrent pulls from goroutines, cancellation from another
// goroutine, progress callbacks, and that every string, call, client and adapter is freed.
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
//	PORTER_TEST_WORKDIR    an empty directory for the cache, exports and push sources
//
// It exits 0 when every check passed, 1 otherwise (each failure on stderr).
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
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

// ExpectError checks err is a *PorterError with status, kind and a message containing want.
func (t *T) ExpectError(err error, status Status, kind, want, what string) {
	var e *PorterError
	if !t.Check(errors.As(err, &e), "%s: want a %s error, got %v", what, kind, err) {
		return
	}
	t.Check(e.Status == status && e.Kind == kind && StatusName(status) == kind,
		"%s: status %d kind %q, want %d %q", what, e.Status, e.Kind, status, kind)
	t.Check(strings.Contains(e.Message, want), "%s: message %q lacks %q", what, e.Message, want)
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

type artifact struct {
	ID            string            `json:"id"`
	Reference     string            `json:"reference"`
	Digest        string            `json:"digest"`
	Metadata      map[string]string `json:"metadata"`
	ExportedFiles []string          `json:"exported_files"`
}

func decode[V any](t *T, text, what string) V {
	var v V
	t.Check(json.Unmarshal([]byte(text), &v) == nil, "%s: not the expected JSON: %q", what, text)
	return v
}

func listIDs(t *T, c *Client) map[string]bool {
	text, err := c.List()
	if err != nil {
		fatal("list", err)
	}
	ids := map[string]bool{}
	for _, a := range decode[[]artifact](t, text, "list") {
		ids[a.ID] = true
	}
	return ids
}

func main() {
	if os.Getenv("PORTER_BENCH_RUNS") != "" {
		runBench()
		return
	}
	watchdog := time.AfterFunc(5*time.Minute, func() {
		fmt.Fprintln(os.Stderr, "FATAL: the checks did not finish within 5 minutes")
		os.Exit(3)
	})
	defer watchdog.Stop()

	t := &T{}
	registry := env("PORTER_TEST_REGISTRY")
	work := env("PORTER_TEST_WORKDIR")

	checkBoundary(t)

	config := fmt.Sprintf(`{"Cache":{"Dir":%q},"Registry":{"InsecureRegistries":[%q],"Mirrors":null}}`,
		filepath.Join(work, "cache"), registry)
	client, err := NewClient(&config)
	if err != nil {
		fatal("client", err)
	}

	text, err := client.List()
	t.Check(err == nil && text == "[]", "list of an empty cache = %q, %v", text, err)

	checkPullAndExport(t, client, work)
	checkErrors(t, client, registry)
	checkConcurrentPulls(t, client)
	checkCancel(t, client)
	checkCallbackReentry(t, client)
	checkPush(t, client, registry, work)
	checkCacheCommands(t, client)
	checkAdapter(t, config, registry, work)

	client.Close()
	if t.failed > 0 {
		fmt.Fprintf(os.Stderr, "%d checks failed\n", t.failed)
		os.Exit(1)
	}
	fmt.Println("cgo: all checks passed")
}

func checkPullAndExport(t *T, client *Client, work string) {
	tool, toolID := env("PORTER_TEST_TOOL"), env("PORTER_TEST_TOOL_ID")

	var started, done, bytes atomic.Int64
	var titled atomic.Bool
	call, err := NewCall(func(ev ProgressEvent) {
		switch ev.Kind {
		case ProgressStarted:
			started.Add(1)
			if ev.Title == "tool" && strings.HasPrefix(ev.Digest, "sha256:") {
				titled.Store(true)
			}
		case ProgressBytes:
			bytes.Add(int64(ev.Bytes))
		case ProgressDone:
			done.Add(1)
		}
	})
	if err != nil {
		fatal("call", err)
	}
	defer call.Close()

	out := filepath.Join(work, "pulled")
	options := fmt.Sprintf(`{"platforms":["linux/amd64"],"output":%q}`, out)
	text, err := client.Pull(tool, options, call)
	if !t.Check(err == nil, "pull %s: %v", tool, err) {
		return
	}
	result := decode[artifact](t, text, "pull")
	t.Check(result.ID == toolID && result.Reference == tool, "pull result %q", text)
	want := filepath.Join(out, "linux", "amd64", "tool")
	t.Check(len(result.ExportedFiles) == 1 && result.ExportedFiles[0] == want,
		"exported_files %v, want [%s]", result.ExportedFiles, want)
	content, _ := os.ReadFile(want)
	t.Check(string(content) == "tool for linux/amd64\n", "exported content %q", content)
	t.Check(started.Load() > 0 && started.Load() == done.Load() && titled.Load() && bytes.Load() > 0,
		"progress: %d started, %d done, %d bytes, titled %v", started.Load(), done.Load(), bytes.Load(), titled.Load())

	// Every platform into the cache, then one exported from the cache alone.
	_, err = client.Pull(tool, `{"all_arch":true}`, nil)
	t.Check(err == nil, "pull --all-arch: %v", err)
	ids := listIDs(t, client)
	t.Check(len(ids) == 1 && ids[toolID], "list after pulls: %v", ids)

	exported := filepath.Join(work, "exported")
	text, err = client.Export(tool, exported, `{"platforms":["linux/arm64"]}`, nil)
	if t.Check(err == nil, "export: %v", err) {
		content, _ := os.ReadFile(filepath.Join(exported, "linux", "arm64", "tool"))
		t.Check(string(content) == "tool for linux/arm64\n", "export content %q (result %s)", content, text)
	}
}

func checkErrors(t *T, client *Client, registry string) {
	_, err := client.Pull("Not A Reference", "", nil)
	t.ExpectError(err, StatusInvalidInput, "invalid_input", "Not A Reference", "bad reference")

	_, err = client.Pull("127.0.0.1:1/demo/tool:1.0", `{"insecure":true}`, nil)
	t.ExpectError(err, StatusNetwork, "network", "127.0.0.1:1", "unreachable registry")

	missing := registry + "/demo/missing:1.0"
	_, err = client.Pull(missing, "", nil)
	t.ExpectError(err, StatusNotFound, "not_found", "demo/missing", "missing repository")

	_, err = client.Pull(env("PORTER_TEST_TOOL"), `{"platform":["linux/amd64"]}`, nil)
	t.ExpectError(err, StatusInvalidInput, "invalid_input", "unknown field", "misspelt option")

	_, err = client.Pull(env("PORTER_TEST_TOOL"), `{"all_arch":true,"platforms":["linux/amd64"]}`, nil)
	t.ExpectError(err, StatusInvalidInput, "invalid_input", "all platforms", "all_arch with platforms")

	_, err = client.Export(registry+"/demo/never-pulled:1.0", filepath.Join(os.TempDir(), "never"), "", nil)
	t.ExpectError(err, StatusNotFound, "not_found", "never-pulled", "export of an uncached reference")
}

func checkConcurrentPulls(t *T, client *Client) {
	refs := strings.Split(env("PORTER_TEST_REFS"), ",")
	const perRef = 2
	results := make([][perRef]string, len(refs))
	var wg sync.WaitGroup
	for i, ref := range refs {
		for j := 0; j < perRef; j++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				text, err := client.Pull(ref, "", nil)
				if t.Check(err == nil, "concurrent pull %s: %v", ref, err) {
					results[i][j] = decode[artifact](t, text, "concurrent pull").ID
				}
			}()
		}
	}
	// Lists while the pulls run.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for k := 0; k < 5; k++ {
			_, err := client.List()
			t.Check(err == nil, "concurrent list: %v", err)
		}
	}()
	wg.Wait()
	ids := listIDs(t, client)
	for i, ref := range refs {
		t.Check(results[i][0] != "" && results[i][0] == results[i][1] && ids[results[i][0]],
			"concurrent pulls of %s: ids %v, listed %v", ref, results[i], ids)
	}
}

func checkCancel(t *T, client *Client) {
	large := env("PORTER_TEST_LARGE")
	started := make(chan struct{})
	cancelled := make(chan struct{})
	var once sync.Once
	call, err := NewCall(func(ev ProgressEvent) {
		if ev.Kind == ProgressBytes {
			// Hold the transfer until another goroutine has cancelled it.
			once.Do(func() {
				close(started)
				<-cancelled
			})
		}
	})
	if err != nil {
		fatal("call", err)
	}
	defer call.Close()

	go func() {
		select {
		case <-started:
		case <-time.After(time.Minute):
			fmt.Fprintln(os.Stderr, "FAIL: the large pull reported no bytes within a minute")
		}
		t.Check(call.Cancel() == nil, "porter_call_cancel failed")
		close(cancelled)
	}()

	begin := time.Now()
	_, err = client.Pull(large, "", call)
	t.ExpectError(err, StatusCancelled, "cancelled", "cancelled", "cancelled pull")
	t.Check(time.Since(begin) < time.Minute, "cancellation took %v", time.Since(begin))

	listed, _ := client.List()
	t.Check(!strings.Contains(listed, large), "a cancelled pull is listed: %s", listed)

	// A cancelled call stays cancelled; a fresh pull completes and is listed.
	_, err = client.Pull(large, "", call)
	t.ExpectError(err, StatusCancelled, "cancelled", "cancelled", "pull with a cancelled call")
	text, err := client.Pull(large, "", nil)
	if t.Check(err == nil, "pull after cancel: %v", err) {
		id := decode[artifact](t, text, "pull after cancel").ID
		t.Check(listIDs(t, client)[id], "pull after cancel not listed")
	}
}

func checkCallbackReentry(t *T, client *Client) {
	var statuses []Status
	var mu sync.Mutex
	tool := env("PORTER_TEST_TOOL")
	call, err := NewCall(func(ProgressEvent) {
		_, err := client.Pull(tool, "", nil)
		var e *PorterError
		mu.Lock()
		defer mu.Unlock()
		if errors.As(err, &e) {
			statuses = append(statuses, e.Status)
		} else {
			statuses = append(statuses, StatusOK)
		}
	})
	if err != nil {
		fatal("call", err)
	}
	defer call.Close()
	_, err = client.Pull(tool, `{"platforms":["linux/arm64"]}`, call)
	t.Check(err == nil, "pull with a re-entering callback: %v", err)
	mu.Lock()
	defer mu.Unlock()
	t.Check(len(statuses) > 0, "no progress events")
	for _, s := range statuses {
		t.Check(s == StatusCalledFromCallback, "a porter call from a callback returned %d", s)
	}
}

func checkPush(t *T, client *Client, registry, work string) {
	source := filepath.Join(work, "push", "hello")
	if err := os.MkdirAll(filepath.Dir(source), 0o755); err != nil {
		fatal("mkdir", err)
	}
	if err := os.WriteFile(source, []byte("hello from cgo\n"), 0o755); err != nil {
		fatal("write", err)
	}
	target := registry + "/cgo/hello:1.0"
	text, err := client.Push(source, target, `{"insecure":true}`, nil)
	if !t.Check(err == nil, "push: %v", err) {
		return
	}
	pushed := decode[artifact](t, text, "push")
	t.Check(pushed.Reference == target && strings.HasPrefix(pushed.Digest, "sha256:"), "push result %q", text)

	out := filepath.Join(work, "hello.bin")
	text, err = client.Pull(target, fmt.Sprintf(`{"output":%q}`, out), nil)
	if t.Check(err == nil, "pull of the pushed artifact: %v", err) {
		content, _ := os.ReadFile(out)
		t.Check(string(content) == "hello from cgo\n", "pushed then pulled %q (%s)", content, text)
		t.Check(decode[artifact](t, text, "pull").Digest == pushed.Digest, "digests differ: %s", text)
	}

	_, err = client.Push(filepath.Join(work, "no-such-file"), target, `{"insecure":true}`, nil)
	var e *PorterError
	t.Check(errors.As(err, &e) && strings.Contains(e.Message, "no-such-file"),
		"push of a missing file: %v", err)
}

func checkCacheCommands(t *T, client *Client) {
	text, err := client.Verify("", nil)
	if t.Check(err == nil, "verify: %v", err) {
		report := decode[struct {
			Checked int               `json:"checked"`
			Corrupt []json.RawMessage `json:"corrupt"`
			Missing []json.RawMessage `json:"missing"`
		}](t, text, "verify")
		t.Check(report.Checked > 0 && len(report.Corrupt) == 0 && len(report.Missing) == 0, "verify report %s", text)
	}
	text, err = client.Prune(`{"max_size_bytes":0}`)
	if t.Check(err == nil, "prune: %v", err) {
		report := decode[struct {
			Removed []string `json:"removed"`
		}](t, text, "prune")
		t.Check(len(report.Removed) > 0, "prune removed nothing: %s", text)
	}
	text, err = client.List()
	t.Check(err == nil && text == "[]", "list after pruning everything = %q, %v", text, err)
}
