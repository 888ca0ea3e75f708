package porter

/*
#include <stdlib.h>
#include "porter.h"
*/
import "C"

import (
	"context"
	"encoding/json"
)

// Adapter is porter-adapter: installations and bundles as OCI artifacts, installation state and
// bundle metadata with TTLs, the event log and the installation store, over the engine and a
// SQLite metadata store shared by every process that opens it.
type Adapter struct {
	lifecycle
	ptr *C.porter_adapter
}

// AdapterOptions are how an Adapter is opened; zero fields take the defaults.
type AdapterOptions struct {
	// StorePath is the SQLite file (default <Cache.Dir>/porter-adapter/store.db).
	StorePath string `json:"store_path,omitempty"`
	// PluginID is recorded with published events (default "porter").
	PluginID string `json:"plugin_id,omitempty"`
	// BusyTimeoutMS is how long a write waits for another process's (default 30000).
	BusyTimeoutMS uint64 `json:"busy_timeout_ms,omitempty"`
}

// OpenAdapter opens the adapter on cfg (as for Open) with opts (nil: the defaults).
func OpenAdapter(cfg any, opts *AdapterOptions) (*Adapter, error) {
	config, free, err := configJSON(cfg)
	if err != nil {
		return nil, err
	}
	defer free()
	text, err := json.Marshal(opts)
	if err != nil {
		return nil, &Error{Op: "open", Kind: KindInvalidInput, Message: "options: " + err.Error()}
	}
	options, freeOptions := cString(string(text))
	defer freeOptions()
	var ptr *C.porter_adapter
	var errOut *C.char
	status := C.porter_adapter_new(config, options, &ptr, &errOut)
	if _, err := take("open", status, nil, errOut); err != nil {
		return nil, err
	}
	return &Adapter{lifecycle: newLifecycle(), ptr: ptr}, nil
}

// Call runs one operation: request is the JSON request ({"op":"publish","type":…,"data":…};
// the operations are listed in porter-ffi/README.md), as a value that marshals to it. The JSON
// answer is unmarshalled into answer unless it is nil. Cancelling ctx abandons the operation.
func (a *Adapter) Call(ctx context.Context, request, answer any) error {
	text, err := json.Marshal(request)
	if err != nil {
		return &Error{Op: "adapter", Kind: KindInvalidInput, Message: "request: " + err.Error()}
	}
	req, freeReq := cString(string(text))
	defer freeReq()
	result, err := a.call("adapter", func() ([]byte, error) {
		return invoke(ctx, "adapter", nil, func(call *C.porter_call, out, errOut **C.char) C.porter_status {
			return C.porter_adapter_call(a.ptr, req, call, out, errOut)
		})
	})
	if err != nil || answer == nil {
		return err
	}
	if err := json.Unmarshal(result, answer); err != nil {
		return &Error{Op: "adapter", Kind: KindOther, Message: "unexpected answer JSON: " + err.Error()}
	}
	return nil
}

// Close cancels the operations still running, waits until they have returned, and frees the
// adapter. Later calls return an error matching ErrClosed. Close is idempotent.
func (a *Adapter) Close() error {
	a.close(func() { C.porter_adapter_close(a.ptr) }, func() { C.porter_adapter_free(a.ptr) })
	return nil
}
