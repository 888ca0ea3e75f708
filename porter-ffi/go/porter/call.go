package porter

/*
#include <stdint.h>
#include <stdlib.h>
#include "porter.h"

porter_status porter_go_call_new(uintptr_t handle, porter_call **call_out);
*/
import "C"

import (
	"context"
	"encoding/json"
	"math"
	"runtime/cgo"
	"runtime/debug"
	"sync"
	"time"
	"unsafe"
)

// ProgressKind says what a ProgressEvent reports.
type ProgressKind uint32

// The kinds of progress event (porter.h, enum porter_progress_kind).
const (
	// ProgressStarted: a blob transfer starts; Size and Title are set.
	ProgressStarted ProgressKind = C.PORTER_PROGRESS_STARTED
	// ProgressBytes: Bytes more bytes of the blob were transferred.
	ProgressBytes ProgressKind = C.PORTER_PROGRESS_BYTES
	// ProgressDone: the blob is complete and verified; Reused when nothing was transferred.
	ProgressDone ProgressKind = C.PORTER_PROGRESS_DONE
	// ProgressWaiting: another pull is downloading the blob; this call waits for it. Holder is
	// that process's id (0 when unknown).
	ProgressWaiting ProgressKind = C.PORTER_PROGRESS_WAITING
	// ProgressWaitAbandoned: the other pull made no progress within the attempt timeout; this
	// call downloads the blob itself.
	ProgressWaitAbandoned ProgressKind = C.PORTER_PROGRESS_WAIT_ABANDONED
)

// ProgressEvent is one transfer event of a call.
type ProgressEvent struct {
	Kind   ProgressKind
	Digest string // the blob's digest, sha256:…
	Size   uint64 // ProgressStarted: the blob's size
	Bytes  uint64 // ProgressBytes: bytes since the previous event
	Reused bool   // ProgressDone: the blob was already there
	Title  string // ProgressStarted: the layer's title, when it has one
	Holder uint32 // ProgressWaiting, ProgressWaitAbandoned: the holding process, 0 when unknown
}

// ProgressFunc receives a call's progress events. It runs on the goroutine that made the call,
// only while the call runs (never after it returned), so it must return quickly; it must not
// call the Client (such calls fail with KindCalledFromCallback). A panic in it is recovered:
// the call is cancelled and returns a *PanicError.
type ProgressFunc func(ProgressEvent)

// ProgressTo returns a ProgressFunc that sends every event on ch. The call waits while ch is
// full, so drain it from another goroutine; the channel is never closed by this package.
func ProgressTo(ch chan<- ProgressEvent) ProgressFunc {
	return func(ev ProgressEvent) { ch <- ev }
}

// callState is what the progress trampoline finds through the call's cgo.Handle.
type callState struct {
	progress ProgressFunc
	call     *C.porter_call
	mu       sync.Mutex
	panicked *PanicError
}

//export porterGoProgress
func porterGoProgress(userdata unsafe.Pointer, event *C.porter_progress_event) {
	state := cgo.Handle(uintptr(userdata)).Value().(*callState)
	state.mu.Lock()
	stopped := state.panicked != nil
	state.mu.Unlock()
	if stopped {
		return
	}
	ev := ProgressEvent{
		Kind:   ProgressKind(event.kind),
		Digest: C.GoString(event.digest),
		Size:   uint64(event.size),
		Bytes:  uint64(event.bytes),
		Reused: bool(event.reused),
		Holder: uint32(event.holder),
	}
	if event.title != nil {
		ev.Title = C.GoString(event.title)
	}
	defer func() {
		if r := recover(); r != nil {
			state.mu.Lock()
			state.panicked = &PanicError{Value: r, Stack: debug.Stack()}
			state.mu.Unlock()
			C.porter_call_cancel(state.call)
		}
	}()
	state.progress(ev)
}

// cString is a C copy of s, freed by the returned function.
func cString(s string) (*C.char, func()) {
	p := C.CString(s)
	return p, func() { C.free(unsafe.Pointer(p)) }
}

// optionsJSON is opts as JSON (`null` for nil), with timeout_ms added when the context has a
// deadline.
func optionsJSON(opts any, deadline time.Time, hasDeadline bool) (string, error) {
	text, err := json.Marshal(opts)
	if err != nil {
		return "", err
	}
	if !hasDeadline {
		return string(text), nil
	}
	fields := map[string]json.RawMessage{}
	if string(text) != "null" {
		if err := json.Unmarshal(text, &fields); err != nil {
			return "", err
		}
	}
	// Rounded up, so a call never gets less time than the context leaves.
	ms := int64(math.Ceil(float64(time.Until(deadline)) / float64(time.Millisecond)))
	fields["timeout_ms"] = json.RawMessage(jsonInt(max(ms, 1)))
	text, err = json.Marshal(fields)
	return string(text), err
}

func jsonInt(n int64) []byte {
	b, _ := json.Marshal(n)
	return b
}

// cFunc is one C call: it gets the porter_call (NULL when the call needs none) and the two
// outputs.
type cFunc func(call *C.porter_call, result, errOut **C.char) C.porter_status

// invoke runs fn with a porter_call that ctx cancels and that forwards progress, and returns
// the result JSON or an *Error.
func invoke(ctx context.Context, op string, progress ProgressFunc, fn cFunc) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	state := &callState{progress: progress}
	var handle cgo.Handle
	if progress != nil {
		handle = cgo.NewHandle(state)
		defer handle.Delete()
	}
	if s := C.porter_go_call_new(C.uintptr_t(handle), &state.call); s != C.PORTER_OK {
		return nil, &Error{Op: op, Kind: Kind(s), Message: "porter_call_new failed"}
	}
	// Freeing the call waits for nothing: the C call below has returned by then.
	defer C.porter_call_free(state.call)

	cancelled := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		C.porter_call_cancel(state.call)
		close(cancelled)
	})
	var result, errOut *C.char
	status := fn(state.call, &result, &errOut)
	if !stop() {
		// The cancellation ran (or is running): let it finish before the call is freed.
		<-cancelled
	}
	state.mu.Lock()
	panicked := state.panicked
	state.mu.Unlock()
	text, err := take(op, status, result, errOut)
	if panicked != nil {
		return nil, panicked
	}
	if e, ok := err.(*Error); ok && e.Kind == KindCancelled && ctx.Err() != nil {
		e.cause = ctx.Err()
	}
	return text, err
}

// take copies the result or the error JSON the library wrote and frees it.
func take(op string, status C.porter_status, result, errOut *C.char) ([]byte, error) {
	defer C.porter_string_free(result)
	defer C.porter_string_free(errOut)
	if status == C.PORTER_OK {
		if result == nil {
			return nil, nil
		}
		return []byte(C.GoString(result)), nil
	}
	e := &Error{Op: op, Kind: Kind(status)}
	var body struct {
		Message string `json:"message"`
	}
	if errOut == nil || json.Unmarshal([]byte(C.GoString(errOut)), &body) != nil {
		e.Message = "the library reported no details"
	} else {
		e.Message = body.Message
	}
	return nil, e
}

// decode unmarshals a result into a new T.
func decode[T any](op string, text []byte, err error) (*T, error) {
	if err != nil {
		return nil, err
	}
	v := new(T)
	if err := json.Unmarshal(text, v); err != nil {
		return nil, &Error{Op: op, Kind: KindOther, Message: "unexpected result JSON: " + err.Error()}
	}
	return v, nil
}
