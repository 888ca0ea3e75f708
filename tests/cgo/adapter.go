package main

// The adapter through porter_adapter_new / porter_adapter_call: installation artifacts pushed
// and pulled, tags listed, state with a TTL, the event log and the installation store.

/*
#include <stdlib.h>
#include "porter.h"
*/
import "C"

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Adapter is a porter_adapter.
type Adapter struct{ ptr *C.porter_adapter }

// NewAdapter opens the adapter.
func NewAdapter(configJSON, optionsJSON string) (*Adapter, error) {
	config, freeConfig := cstring(&configJSON)
	defer freeConfig()
	options, freeOptions := cstring(optional(optionsJSON))
	defer freeOptions()
	var ptr *C.porter_adapter
	var errOut *C.char
	status := C.porter_adapter_new(config, options, &ptr, &errOut)
	if Status(status) != StatusOK {
		_, err := outcome(status, nil, errOut)
		return nil, err
	}
	return &Adapter{ptr}, nil
}

// Close frees the adapter.
func (a *Adapter) Close() {
	C.porter_adapter_free(a.ptr)
	a.ptr = nil
}

// Call runs one request (marshalled to JSON) and returns the JSON answer.
func (a *Adapter) Call(request any) (string, error) {
	text, err := json.Marshal(request)
	if err != nil {
		return "", err
	}
	req := string(text)
	creq, free := cstring(&req)
	defer free()
	var out, errOut *C.char
	status := C.porter_adapter_call(a.ptr, creq, nil, &out, &errOut)
	return outcome(status, out, errOut)
}

type obj = map[string]any

func checkAdapter(t *T, config, registry, work string) {
	adapter, err := NewAdapter(config, fmt.Sprintf(`{"store_path":%q}`, filepath.Join(work, "adapter", "store.db")))
	if err != nil {
		fatal("adapter", err)
	}
	defer adapter.Close()

	source := filepath.Join(work, "installation.json")
	if err := os.WriteFile(source, []byte(`{"name":"demo"}`), 0o644); err != nil {
		fatal("write", err)
	}
	reference := registry + "/cgo/installation:v1"
	text, err := adapter.Call(obj{"op": "push_installation", "reference": reference, "source": source,
		"media_type": "application/vnd.ds.installation.v1+json"})
	if t.Check(err == nil, "adapter push: %v", err) {
		t.Check(strings.HasPrefix(decode[artifact](t, text, "adapter push").Digest, "sha256:"), "adapter push %s", text)
	}
	out := filepath.Join(work, "installation.out")
	_, err = adapter.Call(obj{"op": "pull_installation", "reference": reference, "output": out})
	if t.Check(err == nil, "adapter pull: %v", err) {
		content, _ := os.ReadFile(out)
		t.Check(string(content) == `{"name":"demo"}`, "adapter pull wrote %q", content)
	}
	text, err = adapter.Call(obj{"op": "list_installations", "repository": registry + "/cgo/installation"})
	t.Check(err == nil && slices.Contains(decode[[]string](t, text, "tags"), "v1"), "adapter tags %s, %v", text, err)

	// State: stored, read, expired, deleted.
	_, err = adapter.Call(obj{"op": "store_installation_state", "id": "demo", "value": obj{"step": 3}})
	t.Check(err == nil, "store state: %v", err)
	text, err = adapter.Call(obj{"op": "get_installation_state", "id": "demo"})
	t.Check(err == nil && text == `{"step":3}`, "get state = %s, %v", text, err)
	_, err = adapter.Call(obj{"op": "store_bundle_metadata", "reference": "b:1", "value": obj{"x": true}, "ttl_seconds": 1})
	t.Check(err == nil, "store metadata: %v", err)
	time.Sleep(1100 * time.Millisecond)
	_, err = adapter.Call(obj{"op": "get_bundle_metadata", "reference": "b:1"})
	t.ExpectError(err, Status(108), "expired", "expired", "expired metadata")
	text, err = adapter.Call(obj{"op": "delete_installation_state", "id": "demo"})
	t.Check(err == nil && text == "true", "delete state = %s, %v", text, err)
	_, err = adapter.Call(obj{"op": "get_installation_state", "id": "demo"})
	t.ExpectError(err, StatusNotFound, "not_found", "demo", "deleted state")

	// Events: the adapter's own and ours, in order.
	_, err = adapter.Call(obj{"op": "publish", "type": "cgo.checked", "data": obj{"ok": true}})
	t.Check(err == nil, "publish: %v", err)
	text, err = adapter.Call(obj{"op": "events_since", "cursor": 0, "limit": 100})
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
	_, err = adapter.Call(obj{"op": "save_installation", "installation": installation})
	t.Check(err == nil, "save installation: %v", err)
	text, err = adapter.Call(obj{"op": "list_installation_records", "namespace": "ns"})
	t.Check(err == nil && strings.Contains(text, `"name":"app"`), "installations %s, %v", text, err)
	_, err = adapter.Call(obj{"op": "delete_installation", "namespace": "ns", "name": "app"})
	t.Check(err == nil, "delete installation: %v", err)
	_, err = adapter.Call(obj{"op": "get_installation", "namespace": "ns", "name": "app"})
	t.ExpectError(err, StatusNotFound, "not_found", "app", "deleted installation")

	_, err = adapter.Call(obj{"op": "no_such_op"})
	t.ExpectError(err, StatusInvalidInput, "invalid_input", "no_such_op", "unknown adapter op")
}
