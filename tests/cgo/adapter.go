package main

// The adapter through the package's Adapter: installation artifacts pushed and pulled, tags
// listed, state with a TTL, the event log and the installation store.

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"example.invalid/delivery-station/ds-porter/porter-ffi/go/porter"
)

// call runs one adapter request and returns its JSON answer.
func call(adapter *porter.Adapter, request any) (string, error) {
	var answer json.RawMessage
	err := adapter.Call(context.Background(), request, &answer)
	return string(answer), err
}

func decode[V any](t *T, text, what string) V {
	var v V
	t.Check(json.Unmarshal([]byte(text), &v) == nil, "%s: not the expected JSON: %q", what, text)
	return v
}

type obj = map[string]any

func checkAdapter(t *T, work string) {
	registry := env("PORTER_TEST_REGISTRY")
	adapter, err := porter.OpenAdapter(config(filepath.Join(work, "cache")),
		&porter.AdapterOptions{StorePath: filepath.Join(work, "adapter", "store.db")})
	if err != nil {
		fatal("adapter", err)
	}
	defer adapter.Close()

	source := filepath.Join(work, "installation.json")
	if err := os.WriteFile(source, []byte(`{"name":"demo"}`), 0o644); err != nil {
		fatal("write", err)
	}
	reference := registry + "/cgo/installation:v1"
	text, err := call(adapter, obj{"op": "push_installation", "reference": reference, "source": source,
		"media_type": "application/vnd.ds.installation.v1+json"})
	if t.Check(err == nil, "adapter push: %v", err) {
		t.Check(strings.HasPrefix(decode[porter.Artifact](t, text, "adapter push").Digest, "sha256:"), "adapter push %s", text)
	}
	out := filepath.Join(work, "installation.out")
	_, err = call(adapter, obj{"op": "pull_installation", "reference": reference, "output": out})
	if t.Check(err == nil, "adapter pull: %v", err) {
		content, _ := os.ReadFile(out)
		t.Check(string(content) == `{"name":"demo"}`, "adapter pull wrote %q", content)
	}
	text, err = call(adapter, obj{"op": "list_installations", "repository": registry + "/cgo/installation"})
	t.Check(err == nil && slices.Contains(decode[[]string](t, text, "tags"), "v1"), "adapter tags %s, %v", text, err)

	// State: stored, read, expired, deleted.
	_, err = call(adapter, obj{"op": "store_installation_state", "id": "demo", "value": obj{"step": 3}})
	t.Check(err == nil, "store state: %v", err)
	text, err = call(adapter, obj{"op": "get_installation_state", "id": "demo"})
	t.Check(err == nil && text == `{"step":3}`, "get state = %s, %v", text, err)
	_, err = call(adapter, obj{"op": "store_bundle_metadata", "reference": "b:1", "value": obj{"x": true}, "ttl_seconds": 1})
	t.Check(err == nil, "store metadata: %v", err)
	time.Sleep(1100 * time.Millisecond)
	_, err = call(adapter, obj{"op": "get_bundle_metadata", "reference": "b:1"})
	t.ExpectError(err, porter.KindExpired, "expired", "expired metadata")
	text, err = call(adapter, obj{"op": "delete_installation_state", "id": "demo"})
	t.Check(err == nil && text == "true", "delete state = %s, %v", text, err)
	_, err = call(adapter, obj{"op": "get_installation_state", "id": "demo"})
	t.ExpectError(err, porter.KindNotFound, "demo", "deleted state")

	// Events: the adapter's own and ours, in order.
	_, err = call(adapter, obj{"op": "publish", "type": "cgo.checked", "data": obj{"ok": true}})
	t.Check(err == nil, "publish: %v", err)
	text, err = call(adapter, obj{"op": "events_since", "cursor": 0, "limit": 100})
	if t.Check(err == nil, "events_since: %v", err) {
		var types []string
		for _, e := range decode[[]struct {
			Type string `json:"type"`
		}](t, text, "events") {
			types = append(types, e.Type)
		}
		t.Check(slices.Equal(types, []string{"installation.pushed", "installation.pulled", "cgo.checked"}),
			"events %v", types)
	}

	// The installation store.
	now := time.Now().UTC().Format(time.RFC3339)
	installation := obj{"namespace": "ns", "name": "app", "bundle": reference, "created": now, "modified": now}
	_, err = call(adapter, obj{"op": "save_installation", "installation": installation})
	t.Check(err == nil, "save installation: %v", err)
	text, err = call(adapter, obj{"op": "list_installation_records", "namespace": "ns"})
	t.Check(err == nil && strings.Contains(text, `"name":"app"`), "installations %s, %v", text, err)
	_, err = call(adapter, obj{"op": "delete_installation", "namespace": "ns", "name": "app"})
	t.Check(err == nil, "delete installation: %v", err)
	_, err = call(adapter, obj{"op": "get_installation", "namespace": "ns", "name": "app"})
	t.ExpectError(err, porter.KindNotFound, "app", "deleted installation")

	_, err = call(adapter, obj{"op": "no_such_op"})
	t.ExpectError(err, porter.KindInvalidInput, "no_such_op", "unknown adapter op")
}
