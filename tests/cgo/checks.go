package main

// Pull, export, errors, concurrency, cancellation, deadlines, callbacks, push and the cache
// commands, through the Go package.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"example.invalid/delivery-station/ds-porter/porter-ffi/go/porter"
)

func checkPullAndExport(t *T, client *porter.Client, work string) {
	ctx := context.Background()
	tool, toolID := env("PORTER_TEST_TOOL"), env("PORTER_TEST_TOOL_ID")

	var started, done, bytes atomic.Int64
	var titled atomic.Bool
	out := filepath.Join(work, "pulled")
	result, err := client.Pull(ctx, tool, &porter.PullOptions{
		Platforms: []string{"linux/amd64"},
		Output:    out,
		Progress: func(ev porter.ProgressEvent) {
			switch ev.Kind {
			case porter.ProgressStarted:
				started.Add(1)
				if ev.Title == "tool" && strings.HasPrefix(ev.Digest, "sha256:") {
					titled.Store(true)
				}
			case porter.ProgressBytes:
				bytes.Add(int64(ev.Bytes))
			case porter.ProgressDone:
				done.Add(1)
			}
		},
	})
	if !t.Check(err == nil, "pull %s: %v", tool, err) {
		return
	}
	t.Check(result.ID == toolID && result.Reference == tool && result.Cached, "pull result %+v", result)
	want := filepath.Join(out, "linux", "amd64", "tool")
	t.Check(len(result.ExportedFiles) == 1 && result.ExportedFiles[0] == want,
		"exported_files %v, want [%s]", result.ExportedFiles, want)
	content, _ := os.ReadFile(want)
	t.Check(string(content) == "tool for linux/amd64\n", "exported content %q", content)
	t.Check(started.Load() > 0 && started.Load() == done.Load() && titled.Load() && bytes.Load() > 0,
		"progress: %d started, %d done, %d bytes, titled %v", started.Load(), done.Load(), bytes.Load(), titled.Load())

	// Every platform into the cache, then one exported from the cache alone.
	_, err = client.Pull(ctx, tool, &porter.PullOptions{AllArch: true})
	t.Check(err == nil, "pull of every platform: %v", err)
	ids := listIDs(t, client)
	t.Check(len(ids) == 1 && ids[toolID], "list after pulls: %v", ids)

	exported := filepath.Join(work, "exported")
	result, err = client.Export(ctx, tool, exported, &porter.ExportOptions{Platforms: []string{"linux/arm64"}})
	if t.Check(err == nil, "export: %v", err) {
		content, _ := os.ReadFile(filepath.Join(exported, "linux", "arm64", "tool"))
		t.Check(string(content) == "tool for linux/arm64\n", "export content %q (result %+v)", content, result)
	}

	// An existing file at the destination is kept unless Overwrite says otherwise.
	file := filepath.Join(work, "mine.bin")
	if err := os.WriteFile(file, []byte("mine"), 0o600); err != nil {
		fatal("write", err)
	}
	_, err = client.Export(ctx, tool, file, nil)
	t.ExpectError(err, porter.KindInvalidInput, `"overwrite": true`, "export over a file")
	_, err = client.Pull(ctx, tool, &porter.PullOptions{Output: file})
	t.ExpectError(err, porter.KindInvalidInput, `"overwrite": true`, "pull over a file")
	kept, _ := os.ReadFile(file)
	t.Check(string(kept) == "mine", "a refused export changed the file: %q", kept)
	_, err = client.Export(ctx, tool, file, &porter.ExportOptions{Overwrite: true})
	replaced, _ := os.ReadFile(file)
	t.Check(err == nil && strings.HasPrefix(string(replaced), "tool for "), "export with Overwrite: %v, %q", err, replaced)
}

func checkErrors(t *T, client *porter.Client, work string) {
	ctx := context.Background()
	registry := env("PORTER_TEST_REGISTRY")
	_, err := client.Pull(ctx, "Not A Reference", nil)
	t.ExpectError(err, porter.KindInvalidInput, "Not A Reference", "bad reference")

	begin := time.Now()
	_, err = client.Pull(ctx, "127.0.0.1:1/demo/tool:1.0", &porter.PullOptions{Insecure: true, Retries: porter.Retries(0)})
	t.ExpectError(err, porter.KindNetwork, "127.0.0.1:1", "unreachable registry")
	fmt.Printf("unreachable registry, retries 0: failed after %v\n", time.Since(begin))

	_, err = client.Pull(ctx, registry+"/demo/missing:1.0", nil)
	t.ExpectError(err, porter.KindNotFound, "demo/missing", "missing repository")

	_, err = client.Pull(ctx, env("PORTER_TEST_TOOL"), &porter.PullOptions{AllArch: true, Platforms: []string{"linux/amd64"}})
	t.ExpectError(err, porter.KindInvalidInput, "all_arch", "all_arch with platforms")

	_, err = client.Pull(ctx, env("PORTER_TEST_TOOL"), &porter.PullOptions{Retries: porter.Retries(21)})
	t.ExpectError(err, porter.KindInvalidInput, "retries must be at most 20", "too many retries")

	_, err = client.Export(ctx, registry+"/demo/never-pulled:1.0", filepath.Join(work, "never"), nil)
	t.ExpectError(err, porter.KindNotFound, "never-pulled", "export of an uncached reference")

	// A registry that is not marked insecure is spoken to over HTTPS; the remedy is named as
	// the option and the configuration key, never as a command-line flag.
	strict, err := porter.Open(porter.Config{Cache: &porter.CacheConfig{Dir: filepath.Join(work, "strict")}})
	if err != nil {
		fatal("open", err)
	}
	defer strict.Close()
	_, err = strict.Pull(ctx, env("PORTER_TEST_TOOL"), &porter.PullOptions{Retries: porter.Retries(0)})
	t.ExpectError(err, porter.KindNetwork, `set "insecure": true in the options or list it in Registry.InsecureRegistries`, "plain-HTTP registry")
}

func checkDeadlines(t *T, work string) {
	large := env("PORTER_TEST_LARGE")
	client := open(filepath.Join(work, "deadline-cache"))
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := client.Pull(ctx, large, nil)
	t.Check(errors.Is(err, context.DeadlineExceeded), "pull past its context's deadline: %v", err)
	t.Check(len(listIDs(t, client)) == 0, "a pull stopped by its deadline is cached")
}

func checkConcurrentPulls(t *T, client *porter.Client) {
	refs := strings.Split(env("PORTER_TEST_REFS"), ",")
	const perRef = 2
	results := make([][perRef]string, len(refs))
	var wg sync.WaitGroup
	for i, ref := range refs {
		for j := 0; j < perRef; j++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				a, err := client.Pull(context.Background(), ref, nil)
				if t.Check(err == nil, "concurrent pull %s: %v", ref, err) {
					results[i][j] = a.ID
				}
			}()
		}
	}
	// Lists while the pulls run.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for k := 0; k < 5; k++ {
			_, err := client.List(context.Background())
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

// firstBytes is a ProgressFunc that closes started at the first bytes transferred.
func firstBytes(started chan struct{}) porter.ProgressFunc {
	var once sync.Once
	return func(ev porter.ProgressEvent) {
		if ev.Kind == porter.ProgressBytes {
			once.Do(func() { close(started) })
		}
	}
}

// after runs f once started is closed (or fails the check after a minute).
func after(t *T, started chan struct{}, what string, f func()) {
	go func() {
		select {
		case <-started:
		case <-time.After(time.Minute):
			t.Check(false, "%s: no bytes within a minute", what)
		}
		f()
	}()
}

func checkCancel(t *T, client *porter.Client) {
	large := env("PORTER_TEST_LARGE")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started := make(chan struct{})
	after(t, started, "cancelled pull", cancel)

	begin := time.Now()
	_, err := client.Pull(ctx, large, &porter.PullOptions{Progress: firstBytes(started)})
	t.Check(errors.Is(err, context.Canceled) && errors.Is(err, porter.KindCancelled), "cancelled pull: %v", err)
	t.Check(time.Since(begin) < time.Minute, "cancellation took %v", time.Since(begin))
	list, _ := client.List(context.Background())
	for _, a := range list {
		t.Check(a.Reference != large, "a cancelled pull is listed: %+v", a)
	}

	a, err := client.Pull(context.Background(), large, nil)
	if t.Check(err == nil, "pull after cancel: %v", err) {
		t.Check(listIDs(t, client)[a.ID], "pull after cancel not listed")
	}
}

func checkCallbacks(t *T, client *porter.Client) {
	tool := env("PORTER_TEST_TOOL")
	// A callback that calls the client gets KindCalledFromCallback.
	var inner []error
	_, err := client.Pull(context.Background(), tool, &porter.PullOptions{
		Platforms: []string{"windows/amd64"},
		Progress: func(porter.ProgressEvent) {
			_, err := client.Pull(context.Background(), tool, nil)
			inner = append(inner, err)
		},
	})
	t.Check(err == nil, "pull with a re-entering callback: %v", err)
	t.Check(len(inner) > 0, "no progress events")
	for _, e := range inner {
		t.Check(errors.Is(e, porter.KindCalledFromCallback), "a call from a callback returned %v", e)
	}

	// A callback that panics: recovered, the call stopped, the process alive.
	large := env("PORTER_TEST_LARGE")
	fresh := open(filepath.Join(env("PORTER_TEST_WORKDIR"), "panic-cache"))
	defer fresh.Close()
	_, err = fresh.Pull(context.Background(), large, &porter.PullOptions{
		Progress: func(ev porter.ProgressEvent) {
			if ev.Kind == porter.ProgressBytes {
				panic(fmt.Sprintf("callback saw %d bytes", ev.Bytes))
			}
		},
	})
	var p *porter.PanicError
	t.Check(errors.As(err, &p) && strings.HasPrefix(fmt.Sprint(p.Value), "callback saw"), "pull with a panicking callback: %v", err)
	t.Check(len(listIDs(t, fresh)) == 0, "a pull stopped by a panicking callback is cached")
}

func checkPush(t *T, client *porter.Client, work string) {
	ctx := context.Background()
	registry := env("PORTER_TEST_REGISTRY")
	source := filepath.Join(work, "push", "hello")
	if err := os.MkdirAll(filepath.Dir(source), 0o755); err != nil {
		fatal("mkdir", err)
	}
	if err := os.WriteFile(source, []byte("hello from cgo\n"), 0o755); err != nil {
		fatal("write", err)
	}
	target := registry + "/cgo/hello:1.0"
	pushed, err := client.Push(ctx, source, target, &porter.PushOptions{Insecure: true})
	if !t.Check(err == nil, "push: %v", err) {
		return
	}
	t.Check(pushed.Reference == target && strings.HasPrefix(pushed.Digest, "sha256:"), "push result %+v", pushed)

	out := filepath.Join(work, "hello.bin")
	pulled, err := client.Pull(ctx, target, &porter.PullOptions{Output: out})
	if t.Check(err == nil, "pull of the pushed artifact: %v", err) {
		content, _ := os.ReadFile(out)
		t.Check(string(content) == "hello from cgo\n", "pushed then pulled %q", content)
		t.Check(pulled.Digest == pushed.Digest, "digests differ: %s, %s", pulled.Digest, pushed.Digest)
	}

	_, err = client.Push(ctx, filepath.Join(work, "no-such-file"), target, &porter.PushOptions{Insecure: true})
	var e *porter.Error
	t.Check(errors.As(err, &e) && strings.Contains(e.Message, "no-such-file"), "push of a missing file: %v", err)
}

func checkCacheCommands(t *T, client *porter.Client) {
	ctx := context.Background()
	report, err := client.Verify(ctx, nil)
	if t.Check(err == nil, "verify: %v", err) {
		t.Check(report.Checked > 0 && len(report.Corrupt) == 0 && len(report.Missing) == 0, "verify report %+v", report)
	}
	zero := uint64(0)
	pruned, err := client.Prune(ctx, &porter.PruneOptions{MaxSize: &zero})
	if t.Check(err == nil, "prune: %v", err) {
		t.Check(len(pruned.Removed) > 0, "prune removed nothing: %+v", pruned)
	}
	list, err := client.List(ctx)
	t.Check(err == nil && len(list) == 0, "list after pruning everything = %v, %v", list, err)
}

// checkCopyCancel cancels a copy at its first bytes: the call stops, nothing is cached, and
// nothing is written to the destination layout.
func checkCopyCancel(t *T, work string) {
	client := open(filepath.Join(work, "copy-cancel-cache"))
	defer client.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started := make(chan struct{})
	after(t, started, "cancelled copy", cancel)
	dir := filepath.Join(work, "copy-cancel-layout")
	_, err := client.Copy(ctx, env("PORTER_TEST_LARGE"), "oci:"+dir+":1.0", &porter.CopyOptions{Progress: firstBytes(started)})
	t.Check(errors.Is(err, context.Canceled) && errors.Is(err, porter.KindCancelled), "cancelled copy: %v", err)
	_, statErr := os.Stat(filepath.Join(dir, "index.json"))
	t.Check(errors.Is(statErr, os.ErrNotExist), "a cancelled copy wrote the layout's index: %v", statErr)
	t.Check(len(listIDs(t, client)) == 0, "a cancelled copy is cached")
}
