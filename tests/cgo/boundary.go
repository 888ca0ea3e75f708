package main

// The C conventions checked with raw calls: NULL checks, UTF-8 checks, outputs written only on
// success, NULL error_out allowed, _free(NULL) harmless.

/*
#include <stdlib.h>
#include "porter.h"
*/
import "C"

import (
	"encoding/json"
	"strings"
	"unsafe"
)

func checkBoundary(t *T) {
	t.Check(Version() != "", "porter_version is empty")
	for status, name := range map[Status]string{0: "ok", 1: "null_parameter", 6: "cancelled", 100: "invalid_input", 103: "network", 4242: "unknown"} {
		t.Check(StatusName(status) == name, "porter_status_name(%d) = %q, want %q", status, StatusName(status), name)
	}

	// A NULL client: NULL_PARAMETER, the result output untouched, the error JSON names it.
	var out, errOut *C.char
	status := Status(C.porter_client_list(nil, &out, &errOut))
	t.Check(status == StatusNullParameter, "list(NULL) = %d", status)
	t.Check(out == nil, "list(NULL) wrote result_out")
	if t.Check(errOut != nil, "list(NULL) did not write error_out") {
		var e PorterError
		text := take(errOut)
		t.Check(json.Unmarshal([]byte(text), &e) == nil && e.Kind == "null_parameter" &&
			strings.Contains(e.Message, "client"), "list(NULL) error JSON %q", text)
	}
	// error_out may be NULL.
	status = Status(C.porter_client_list(nil, &out, nil))
	t.Check(status == StatusNullParameter && out == nil, "list(NULL, error_out NULL) = %d", status)
	// A NULL output pointer fails before any work.
	errOut = nil
	status = Status(C.porter_client_new(nil, nil, &errOut))
	t.Check(status == StatusNullParameter, "client_new(client_out NULL) = %d", status)
	if errOut != nil {
		text := take(errOut)
		t.Check(strings.Contains(text, "client_out"), "client_new(client_out NULL) error %q", text)
	}

	// Not UTF-8.
	bad := C.CString("{\"Cache\":{\"Dir\":\"\xff\"}}")
	defer C.free(unsafe.Pointer(bad))
	var client *C.porter_client
	errOut = nil
	status = Status(C.porter_client_new(bad, &client, &errOut))
	t.Check(status == StatusInvalidUTF8, "client_new(invalid UTF-8) = %d", status)
	t.Check(client == nil, "client_new wrote client_out on failure")
	if errOut != nil {
		take(errOut)
	}

	// Malformed configuration JSON.
	broken := "{"
	_, err := NewClient(&broken)
	t.ExpectError(err, StatusInvalidInput, "invalid_input", "configuration", "client_new({)")

	// Freeing NULL is harmless.
	C.porter_string_free(nil)
	C.porter_client_free(nil)
	C.porter_call_free(nil)
	status = Status(C.porter_call_cancel(nil))
	t.Check(status == StatusNullParameter, "call_cancel(NULL) = %d", status)
}
