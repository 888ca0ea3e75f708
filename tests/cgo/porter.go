package main

// A small Go wrapper over porter.h, as Go tooling would write one: every string the library
// returns is copied and freed at once, errors become *PorterError, progress goes to a Go func
// through a cgo.Handle.

/*
#cgo CFLAGS: -I${SRCDIR}/../../porter-ffi/include
#include <stdlib.h>
#include "porter.h"

porter_status cgo_call_new(uintptr_t handle, porter_call **call_out);
*/
import "C"

import (
	"encoding/json"
	"fmt"
	"runtime/cgo"
	"unsafe"
)

// Status is a porter_status.
type Status uint32

// The statuses the checks use (porter.h).
const (
	StatusOK                 Status = C.PORTER_OK
	StatusNullParameter      Status = C.PORTER_NULL_PARAMETER
	StatusInvalidUTF8        Status = C.PORTER_INVALID_UTF8
	StatusCalledFromCallback Status = C.PORTER_CALLED_FROM_CALLBACK
	StatusCancelled          Status = C.PORTER_CANCELLED
	StatusInvalidInput       Status = C.PORTER_INVALID_INPUT
	StatusNotFound           Status = C.PORTER_NOT_FOUND
	StatusNetwork            Status = C.PORTER_NETWORK
	StatusIO                 Status = C.PORTER_IO
)

// StatusName is porter_status_name.
func StatusName(s Status) string {
	return C.GoString(C.porter_status_name(C.uint32_t(s)))
}

// Version is porter_version.
func Version() string {
	return C.GoString(C.porter_version())
}

// PorterError is a failed call: the status and the error JSON's fields.
type PorterError struct {
	Status  Status `json:"status"`
	Kind    string `json:"kind"`
	Message string `json:"message"`
}

func (e *PorterError) Error() string {
	return fmt.Sprintf("%s (%d): %s", e.Kind, e.Status, e.Message)
}

// take copies a string the library returned and frees it.
func take(p *C.char) string {
	s := C.GoString(p)
	C.porter_string_free(p)
	return s
}

// cstring is a C copy of s (NULL for nil) and its free.
func cstring(s *string) (*C.char, func()) {
	if s == nil {
		return nil, func() {}
	}
	p := C.CString(*s)
	return p, func() { C.free(unsafe.Pointer(p)) }
}

// outcome turns a status and the two outputs into a result or an error, checking the
// convention that exactly one of them was written.
func outcome(status C.porter_status, out, errOut *C.char) (string, error) {
	if Status(status) == StatusOK {
		if errOut != nil {
			take(errOut)
			return take(out), fmt.Errorf("error_out written on success")
		}
		if out == nil {
			return "", fmt.Errorf("result_out not written on success")
		}
		return take(out), nil
	}
	if out != nil {
		take(out)
		return "", fmt.Errorf("result_out written on failure (status %d)", status)
	}
	if errOut == nil {
		return "", fmt.Errorf("error_out not written on failure (status %d)", status)
	}
	var e PorterError
	text := take(errOut)
	if err := json.Unmarshal([]byte(text), &e); err != nil {
		return "", fmt.Errorf("error JSON %q: %v", text, err)
	}
	if e.Status != Status(status) {
		return "", fmt.Errorf("error JSON status %d, returned %d", e.Status, status)
	}
	return "", &e
}

// Client is a porter_client.
type Client struct{ ptr *C.porter_client }

// NewClient opens a client on DS's configuration JSON (nil: the CLI's configuration).
func NewClient(configJSON *string) (*Client, error) {
	config, free := cstring(configJSON)
	defer free()
	var ptr *C.porter_client
	var errOut *C.char
	status := C.porter_client_new(config, &ptr, &errOut)
	if Status(status) != StatusOK {
		if ptr != nil {
			return nil, fmt.Errorf("client_out written on failure")
		}
		_, err := outcome(status, nil, errOut)
		return nil, err
	}
	return &Client{ptr}, nil
}

// Close frees the client.
func (c *Client) Close() {
	C.porter_client_free(c.ptr)
	c.ptr = nil
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func (call *Call) raw() *C.porter_call {
	if call == nil {
		return nil
	}
	return call.ptr
}

// Pull is porter_client_pull; options is JSON or "".
func (c *Client) Pull(reference, options string, call *Call) (string, error) {
	ref, freeRef := cstring(&reference)
	defer freeRef()
	opts, freeOpts := cstring(optional(options))
	defer freeOpts()
	var out, errOut *C.char
	status := C.porter_client_pull(c.ptr, ref, opts, call.raw(), &out, &errOut)
	return outcome(status, out, errOut)
}

// Export is porter_client_export.
func (c *Client) Export(reference, output, options string, call *Call) (string, error) {
	ref, freeRef := cstring(&reference)
	defer freeRef()
	dest, freeDest := cstring(&output)
	defer freeDest()
	opts, freeOpts := cstring(optional(options))
	defer freeOpts()
	var out, errOut *C.char
	status := C.porter_client_export(c.ptr, ref, dest, opts, call.raw(), &out, &errOut)
	return outcome(status, out, errOut)
}

// Push is porter_client_push.
func (c *Client) Push(source, reference, options string, call *Call) (string, error) {
	src, freeSrc := cstring(&source)
	defer freeSrc()
	ref, freeRef := cstring(&reference)
	defer freeRef()
	opts, freeOpts := cstring(optional(options))
	defer freeOpts()
	var out, errOut *C.char
	status := C.porter_client_push(c.ptr, src, ref, opts, call.raw(), &out, &errOut)
	return outcome(status, out, errOut)
}

// List is porter_client_list.
func (c *Client) List() (string, error) {
	var out, errOut *C.char
	status := C.porter_client_list(c.ptr, &out, &errOut)
	return outcome(status, out, errOut)
}

// Prune is porter_client_cache_prune.
func (c *Client) Prune(options string) (string, error) {
	opts, freeOpts := cstring(optional(options))
	defer freeOpts()
	var out, errOut *C.char
	status := C.porter_client_cache_prune(c.ptr, opts, &out, &errOut)
	return outcome(status, out, errOut)
}

// Verify is porter_client_cache_verify.
func (c *Client) Verify(options string, call *Call) (string, error) {
	opts, freeOpts := cstring(optional(options))
	defer freeOpts()
	var out, errOut *C.char
	status := C.porter_client_cache_verify(c.ptr, opts, call.raw(), &out, &errOut)
	return outcome(status, out, errOut)
}

// ProgressEvent is a copy of a porter_progress_event.
type ProgressEvent struct {
	Kind   uint32
	Digest string
	Size   uint64
	Bytes  uint64
	Reused bool
	Title  string
}

// The event kinds.
const (
	ProgressStarted uint32 = C.PORTER_PROGRESS_STARTED
	ProgressBytes   uint32 = C.PORTER_PROGRESS_BYTES
	ProgressDone    uint32 = C.PORTER_PROGRESS_DONE
)

// Call is a porter_call: cancellation and progress for the calls it is passed to.
type Call struct {
	ptr    *C.porter_call
	handle cgo.Handle
}

// NewCall creates per-call controls; progress may be nil.
func NewCall(progress func(ProgressEvent)) (*Call, error) {
	var ptr *C.porter_call
	if progress == nil {
		if s := C.porter_call_new(nil, nil, &ptr); Status(s) != StatusOK {
			return nil, fmt.Errorf("porter_call_new: %s", StatusName(Status(s)))
		}
		return &Call{ptr: ptr}, nil
	}
	handle := cgo.NewHandle(progress)
	if s := C.cgo_call_new(C.uintptr_t(handle), &ptr); Status(s) != StatusOK {
		handle.Delete()
		return nil, fmt.Errorf("porter_call_new: %s", StatusName(Status(s)))
	}
	return &Call{ptr: ptr, handle: handle}, nil
}

// Cancel is porter_call_cancel.
func (call *Call) Cancel() error {
	if s := C.porter_call_cancel(call.ptr); Status(s) != StatusOK {
		return fmt.Errorf("porter_call_cancel: %s", StatusName(Status(s)))
	}
	return nil
}

// Close frees the controls; no call using them may be running.
func (call *Call) Close() {
	C.porter_call_free(call.ptr)
	call.ptr = nil
	if call.handle != 0 {
		call.handle.Delete()
	}
}

//export porterGoProgress
func porterGoProgress(userdata unsafe.Pointer, event *C.porter_progress_event) {
	progress := cgo.Handle(uintptr(userdata)).Value().(func(ProgressEvent))
	ev := ProgressEvent{
		Kind:   uint32(event.kind),
		Digest: C.GoString(event.digest),
		Size:   uint64(event.size),
		Bytes:  uint64(event.bytes),
		Reused: bool(event.reused),
	}
	if event.title != nil {
		ev.Title = C.GoString(event.title)
	}
	progress(ev)
}
