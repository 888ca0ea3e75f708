package main

// A raw pull with a progress callback of its own (porter_call_new from C, see
// rawprogress.c), for checks that must know a transfer is under way.

/*
#include <stdint.h>
#include "porter.h"

porter_status raw_call_new(uintptr_t handle, porter_call **call_out);
*/
import "C"

import (
	"runtime/cgo"
	"sync"
	"unsafe"
)

//export cgoRawProgress
func cgoRawProgress(userdata unsafe.Pointer, event *C.porter_progress_event) {
	if event.kind == C.PORTER_PROGRESS_BYTES {
		cgo.Handle(uintptr(userdata)).Value().(func())()
	}
}

// rawPullWithProgress pulls ref with client through the C ABI and closes started at the
// first bytes transferred.
func rawPullWithProgress(client *C.porter_client, ref *C.char, started chan struct{}, out, errOut **C.char) C.porter_status {
	var once sync.Once
	handle := cgo.NewHandle(func() { once.Do(func() { close(started) }) })
	defer handle.Delete()
	var call *C.porter_call
	if s := C.raw_call_new(C.uintptr_t(handle), &call); s != C.PORTER_OK {
		return s
	}
	defer C.porter_call_free(call)
	return C.porter_client_pull(client, ref, nil, call, out, errOut)
}
