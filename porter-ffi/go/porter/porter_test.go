package porter

// The package's own behaviour, against the repository's example layout (no registry): options
// as the library reads them, errors and kinds, contexts, panics in callbacks, Close. The suite
// against the real registry is the program in tests/cgo.

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const store = "oci:../../../examples/store:1.0.0"

func open(t *testing.T) *Client {
	t.Helper()
	c, err := Open(Config{Cache: &CacheConfig{Dir: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestNilOptionsAreSentAsNullAndMeanTheDefaults(t *testing.T) {
	text, err := optionsJSON((*PullOptions)(nil), time.Time{}, false)
	if err != nil || text != "null" {
		t.Fatalf("nil options = %q, %v", text, err)
	}
	c := open(t)
	a, err := c.Pull(context.Background(), store, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.ID == "" || len(a.ExportedFiles) != 0 {
		t.Fatalf("pull with nil options: %+v", a)
	}
}

func TestOptionsAreWrittenAsTheLibraryReadsThem(t *testing.T) {
	for _, tc := range []struct {
		opts any
		want string
	}{
		{&PullOptions{Platforms: []string{"linux/amd64"}, Output: "d", Overwrite: true, Retries: Retries(0)},
			`{"platforms":["linux/amd64"],"output":"d","overwrite":true,"retries":0}`},
		{&PushOptions{}, `{"tag_latest":true}`},
		{&PushOptions{NoLatest: true, Insecure: true}, `{"insecure":true,"tag_latest":false}`},
		{&PruneOptions{TTL: 90 * time.Second, MaxSize: new(uint64)}, `{"ttl_seconds":90,"max_size_bytes":0}`},
		{&PruneOptions{}, `{}`},
	} {
		text, err := optionsJSON(tc.opts, time.Time{}, false)
		if err != nil || text != tc.want {
			t.Errorf("%#v = %s, %v; want %s", tc.opts, text, err, tc.want)
		}
	}
	text, err := optionsJSON(&VerifyOptions{Repair: true}, time.Now().Add(1500*time.Millisecond), true)
	var fields struct {
		Repair    bool  `json:"repair"`
		TimeoutMS int64 `json:"timeout_ms"`
	}
	if err != nil || json.Unmarshal([]byte(text), &fields) != nil ||
		!fields.Repair || fields.TimeoutMS < 1400 || fields.TimeoutMS > 1500 {
		t.Fatalf("options with a deadline = %s, %v", text, err)
	}
}

func TestKindsHaveTheLibrarysNamesAndWorkWithErrorsIs(t *testing.T) {
	for kind, name := range map[Kind]string{KindNotFound: "not_found", KindTimedOut: "timed_out", KindCancelled: "cancelled", Kind(4242): "unknown"} {
		if kind.String() != name {
			t.Errorf("%d = %q, want %q", kind, kind.String(), name)
		}
	}
	err := error(&Error{Op: "pull", Kind: KindTimedOut, Message: "m"})
	if !errors.Is(err, KindTimedOut) || errors.Is(err, KindCancelled) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("errors.Is on %v", err)
	}
	stopped := error(&Error{Op: "pull", Kind: KindCancelled, cause: context.DeadlineExceeded})
	if !errors.Is(stopped, context.DeadlineExceeded) || errors.Is(stopped, context.Canceled) {
		t.Fatalf("a call its context's deadline stopped: %v", stopped)
	}
}

func TestUnknownConfigurationKeysAreRefusedByName(t *testing.T) {
	_, err := Open(map[string]any{"Cache": map[string]any{"Dir": t.TempDir()}, "Registy": map[string]any{}})
	if !errors.Is(err, KindInvalidInput) || !strings.Contains(err.Error(), "unknown key Registy") {
		t.Fatalf("Open with a misspelt key: %v", err)
	}
}

func TestAnEmptyExportDestinationIsRefusedNamingOutput(t *testing.T) {
	c := open(t)
	_, err := c.Export(context.Background(), store, "", nil)
	if !errors.Is(err, KindInvalidInput) || !strings.Contains(err.Error(), "output is empty") {
		t.Fatalf("export to \"\": %v", err)
	}
}

func TestAPanickingCallbackIsRecoveredAndStopsTheCall(t *testing.T) {
	c := open(t)
	calls := 0
	out := filepath.Join(t.TempDir(), "out")
	_, err := c.Pull(context.Background(), store, &PullOptions{
		AllArch: true,
		Output:  out,
		Progress: func(ProgressEvent) {
			calls++
			panic("boom")
		},
	})
	var p *PanicError
	if !errors.As(err, &p) || p.Value != "boom" || !strings.Contains(string(p.Stack), "TestAPanickingCallback") {
		t.Fatalf("pull with a panicking callback: %v", err)
	}
	if calls != 1 {
		t.Fatalf("the callback ran %d times after panicking", calls)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the stopped pull exported: %v", err)
	}
	if list, err := c.List(context.Background()); err != nil || len(list) != 0 {
		t.Fatalf("the stopped pull is cached: %v %v", list, err)
	}
}

func TestADoneContextStopsTheCallBeforeItStarts(t *testing.T) {
	c := open(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Pull(ctx, store, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("pull with a cancelled context: %v", err)
	}
	ctx, cancel = context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	if _, err := c.Pull(ctx, store, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("pull past its deadline: %v", err)
	}
}

func TestCallsOnAClosedClientMatchErrClosed(t *testing.T) {
	c := open(t)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal("a second Close failed:", err)
	}
	_, err := c.Pull(context.Background(), store, nil)
	if !errors.Is(err, ErrClosed) || !errors.Is(err, KindCancelled) {
		t.Fatalf("pull on a closed client: %v", err)
	}
	if _, err := c.List(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("list on a closed client: %v", err)
	}
}
