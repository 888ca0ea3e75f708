package main

// The C conventions of porter.h, checked with direct calls: NULL arguments, UTF-8, outputs
// written only on success (exactly one of result and error JSON), `null` options, the empty
// output rule, unknown keys, timeout_ms, freeing a client while a pull runs; and every result
// and error JSON validated against the committed JSON Schemas.

/*
#cgo CFLAGS: -I${SRCDIR}/../../porter-ffi/include
#include <stdlib.h>
#include "porter.h"
*/
import "C"

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unsafe"

	"example.invalid/delivery-station/ds-porter/porter-ffi/go/porter"
)

// rawResult is what a C call returned and wrote.
type rawResult struct {
	status C.porter_status
	result string
	err    string
}

// rawCall runs fn with fresh outputs and checks the output convention: on PORTER_OK the result
// and no error JSON, otherwise the error JSON (with the same status) and no result.
func rawCall(t *T, what string, fn func(out, errOut **C.char) C.porter_status) rawResult {
	return rawCheck(t, what, true, fn)
}

// rawNew is rawCall for a _new function, whose result is a handle rather than a string.
func rawNew(t *T, what string, fn func(errOut **C.char) C.porter_status) rawResult {
	return rawCheck(t, what, false, func(_, errOut **C.char) C.porter_status { return fn(errOut) })
}

func rawCheck(t *T, what string, result bool, fn func(out, errOut **C.char) C.porter_status) rawResult {
	var out, errOut *C.char
	status := fn(&out, &errOut)
	r := rawResult{status: status}
	if out != nil {
		r.result = C.GoString(out)
		C.porter_string_free(out)
	}
	if errOut != nil {
		r.err = C.GoString(errOut)
		C.porter_string_free(errOut)
	}
	if status == C.PORTER_OK {
		t.Check((out != nil) == result && errOut == nil, "%s: OK with result %v, error %q", what, out != nil, r.err)
	} else {
		t.Check(out == nil && errOut != nil, "%s: status %d with result %q, error written %v", what, status, r.result, errOut != nil)
		var e struct {
			Status uint32 `json:"status"`
		}
		t.Check(json.Unmarshal([]byte(r.err), &e) == nil && e.Status == uint32(status), "%s: error JSON %q for status %d", what, r.err, status)
	}
	return r
}

// expect checks a raw failure's kind and that its message contains want.
func (r rawResult) expect(t *T, kind, want, what string) {
	var e struct {
		Kind    string `json:"kind"`
		Message string `json:"message"`
	}
	_ = json.Unmarshal([]byte(r.err), &e)
	t.Check(e.Kind == kind && C.GoString(C.porter_status_name(C.uint32_t(r.status))) == kind,
		"%s: %q (status %d), want kind %s", what, r.err, r.status, kind)
	t.Check(strings.Contains(e.Message, want), "%s: message %q lacks %q", what, e.Message, want)
}

// cStrings are the C strings the raw checks made, freed by freeCStrings.
var cStrings []*C.char

// cstr is a C copy of s, freed by freeCStrings.
func cstr(s string) *C.char {
	p := C.CString(s)
	cStrings = append(cStrings, p)
	return p
}

// freeCStrings frees every string cstr made.
func freeCStrings() {
	for _, p := range cStrings {
		C.free(unsafe.Pointer(p))
	}
	cStrings = nil
}

func checkRaw(t *T, schemas *schemas, work string) {
	defer freeCStrings()
	t.Check(C.GoString(C.porter_version()) != "", "porter_version is empty")
	for status, name := range map[uint32]string{0: "ok", 1: "null_parameter", 6: "cancelled", 7: "timed_out", 100: "invalid_input", 103: "network", 4242: "unknown"} {
		got := C.GoString(C.porter_status_name(C.uint32_t(status)))
		t.Check(got == name, "porter_status_name(%d) = %q, want %q", status, got, name)
	}

	// NULL arguments.
	r := rawCall(t, "list(NULL)", func(out, errOut **C.char) C.porter_status { return C.porter_client_list(nil, out, errOut) })
	r.expect(t, "null_parameter", "client", "list(NULL)")
	schemas.validate(t, "error.schema.json", r.err, "error JSON")
	var out *C.char
	t.Check(C.porter_client_list(nil, &out, nil) == C.PORTER_NULL_PARAMETER && out == nil, "list(NULL, error_out NULL)")
	r = rawNew(t, "client_new(client_out NULL)", func(errOut **C.char) C.porter_status { return C.porter_client_new(nil, nil, errOut) })
	r.expect(t, "null_parameter", "client_out", "client_new(client_out NULL)")
	t.Check(C.porter_call_cancel(nil) == C.PORTER_NULL_PARAMETER, "porter_call_cancel(NULL)")
	t.Check(C.porter_client_close(nil) == C.PORTER_NULL_PARAMETER, "porter_client_close(NULL)")
	t.Check(C.porter_adapter_close(nil) == C.PORTER_NULL_PARAMETER, "porter_adapter_close(NULL)")
	C.porter_string_free(nil)
	C.porter_client_free(nil)
	C.porter_call_free(nil)
	C.porter_adapter_free(nil)

	// Configuration: not UTF-8, malformed, a misspelt key.
	var client *C.porter_client
	r = rawNew(t, "client_new(invalid UTF-8)", func(errOut **C.char) C.porter_status {
		return C.porter_client_new(cstr("{\"Cache\":{\"Dir\":\"\xff\"}}"), &client, errOut)
	})
	r.expect(t, "invalid_utf8", "config_json", "client_new(invalid UTF-8)")
	t.Check(client == nil, "client_new wrote client_out on failure")
	r = rawNew(t, "client_new({)", func(errOut **C.char) C.porter_status { return C.porter_client_new(cstr("{"), &client, errOut) })
	r.expect(t, "invalid_input", "configuration", "client_new({)")
	r = rawNew(t, "client_new(misspelt key)", func(errOut **C.char) C.porter_status {
		return C.porter_client_new(cstr(`{"Cache":{"Dir":"/tmp/x"},"Registry":{"InsecureRegistry":[]}}`), &client, errOut)
	})
	r.expect(t, "invalid_input", "unknown key Registry.InsecureRegistry", "client_new(misspelt key)")

	config, _ := json.Marshal(porter.Config{Cache: &porter.CacheConfig{Dir: filepath.Join(work, "raw-cache")},
		Registry: &porter.RegistryConfig{InsecureRegistries: []string{env("PORTER_TEST_REGISTRY")}}})
	r = rawNew(t, "client_new", func(errOut **C.char) C.porter_status {
		return C.porter_client_new(cstr(string(config)), &client, errOut)
	})
	if !t.Check(r.status == C.PORTER_OK, "client_new: %s", r.err) {
		return
	}
	defer C.porter_client_free(client)
	tool := cstr(env("PORTER_TEST_TOOL"))
	pull := func(what, options string) rawResult {
		opts := cstr(options)
		if options == "" {
			opts = nil
		}
		return rawCall(t, what, func(out, errOut **C.char) C.porter_status {
			return C.porter_client_pull(client, tool, opts, nil, out, errOut)
		})
	}

	// Options: `null` and NULL are the defaults; unknown keys, an empty output and a zero
	// timeout are refused by name.
	r = pull("pull(null options)", "null")
	if t.Check(r.status == C.PORTER_OK, "pull with options null: %s", r.err) {
		schemas.validate(t, "artifact.schema.json", r.result, "pull result")
	}
	r = pull("pull(NULL options)", "")
	t.Check(r.status == C.PORTER_OK, "pull with NULL options: %s", r.err)
	pull("pull(misspelt option)", `{"platform":["linux/amd64"]}`).expect(t, "invalid_input", "unknown field `platform`", "misspelt option")
	pull(`pull({"output":""})`, `{"output":""}`).expect(t, "invalid_input", "output is empty", "pull with an empty output")
	r = rawCall(t, "export(\"\")", func(out, errOut **C.char) C.porter_status {
		return C.porter_client_export(client, tool, cstr(""), nil, nil, out, errOut)
	})
	r.expect(t, "invalid_input", "output is empty", "export to an empty output")
	pull("pull(timeout_ms 0)", `{"timeout_ms":0}`).expect(t, "invalid_input", "timeout_ms", "a zero timeout")

	// A call that cannot finish within timeout_ms is stopped.
	large := cstr(env("PORTER_TEST_LARGE"))
	r = rawCall(t, "pull(timeout_ms 20)", func(out, errOut **C.char) C.porter_status {
		return C.porter_client_pull(client, large, cstr(`{"timeout_ms":20}`), nil, out, errOut)
	})
	r.expect(t, "timed_out", "timeout_ms (20 ms)", "a pull past its timeout_ms")

	// Every result shape against its schema.
	dest := filepath.Join(work, "raw-export")
	r = rawCall(t, "export", func(out, errOut **C.char) C.porter_status {
		return C.porter_client_export(client, tool, cstr(dest), cstr(`{"platforms":["linux/amd64"]}`), nil, out, errOut)
	})
	if t.Check(r.status == C.PORTER_OK, "export: %s", r.err) {
		schemas.validate(t, "artifact.schema.json", r.result, "export result")
	}
	r = rawCall(t, "list", func(out, errOut **C.char) C.porter_status { return C.porter_client_list(client, out, errOut) })
	schemas.validate(t, "list.schema.json", r.result, "list result")
	r = rawCall(t, "verify", func(out, errOut **C.char) C.porter_status {
		return C.porter_client_cache_verify(client, cstr(`{"repair":true}`), nil, out, errOut)
	})
	schemas.validate(t, "verify-report.schema.json", r.result, "verify report")
	source := filepath.Join(work, "raw-push")
	if err := os.WriteFile(source, []byte("raw push\n"), 0o755); err != nil {
		fatal("write", err)
	}
	r = rawCall(t, "push", func(out, errOut **C.char) C.porter_status {
		return C.porter_client_push(client, cstr(source), cstr(env("PORTER_TEST_REGISTRY")+"/cgo/raw:1"), cstr(`{"insecure":true,"retries":1}`), nil, out, errOut)
	})
	if t.Check(r.status == C.PORTER_OK, "push: %s", r.err) {
		schemas.validate(t, "artifact.schema.json", r.result, "push result")
	}
	checkRawOperations(t, schemas, work, client, tool)
	r = rawCall(t, "prune", func(out, errOut **C.char) C.porter_status {
		return C.porter_client_cache_prune(client, cstr(`{"max_size_bytes":0}`), out, errOut)
	})
	schemas.validate(t, "prune-report.schema.json", r.result, "prune report")
	r = rawCall(t, "list", func(out, errOut **C.char) C.porter_status { return C.porter_client_list(client, out, errOut) })
	t.Check(r.result == "[]", "list after pruning everything = %s", r.result)
	schemas.validate(t, "list.schema.json", r.result, "empty list")
}

// checkRawFreeWhilePulling frees a client from this goroutine while another pulls with it:
// porter_client_free returns only after the pull has returned PORTER_CANCELLED.
func checkRawFreeWhilePulling(t *T, work string) {
	defer freeCStrings()
	config, _ := json.Marshal(config(filepath.Join(work, "raw-free-cache")))
	var client *C.porter_client
	if C.porter_client_new(cstr(string(config)), &client, nil) != C.PORTER_OK {
		fatal("client_new", fmt.Errorf("raw client"))
	}
	started := make(chan struct{})
	status := make(chan C.porter_status, 1)
	go func() {
		var out, errOut *C.char
		s := rawPullWithProgress(client, cstr(env("PORTER_TEST_LARGE")), started, &out, &errOut)
		C.porter_string_free(out)
		C.porter_string_free(errOut)
		status <- s
	}()
	select {
	case <-started:
	case <-time.After(time.Minute):
		t.Check(false, "free while pulling: no bytes within a minute")
	}
	C.porter_client_free(client)
	select {
	case s := <-status:
		t.Check(s == C.PORTER_CANCELLED, "a pull whose client was freed returned %d", s)
	case <-time.After(10 * time.Second):
		t.Check(false, "the pull had not returned 10 s after porter_client_free returned")
	}
}

// checkRawOperations calls inspect, tags, copy and cache remove through the C ABI: NULL
// arguments, `null` and misspelt options, results against their schemas, errors by kind.
func checkRawOperations(t *T, schemas *schemas, work string, client *C.porter_client, tool *C.char) {
	registry := env("PORTER_TEST_REGISTRY")
	inspect := func(what string, ref *C.char, options string) rawResult {
		return rawCall(t, what, func(out, errOut **C.char) C.porter_status {
			return C.porter_client_inspect(client, ref, cstr(options), nil, out, errOut)
		})
	}
	r := inspect("inspect(null options)", tool, "null")
	var found struct {
		Digest    string `json:"digest"`
		Platforms []any  `json:"platforms"`
	}
	if t.Check(r.status == C.PORTER_OK, "inspect: %s", r.err) {
		schemas.validate(t, "inspection.schema.json", r.result, "inspect result")
		_ = json.Unmarshal([]byte(r.result), &found)
		t.Check(len(found.Platforms) == 3, "inspect of the tool index: %s", r.result)
	}
	r = inspect("inspect(raw)", tool, `{"raw":true,"retries":1}`)
	if t.Check(r.status == C.PORTER_OK, "inspect raw: %s", r.err) {
		got := fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(r.result)))
		t.Check(got == found.Digest, "the raw root hashes to %s, the inspection says %s", got, found.Digest)
	}
	inspect("inspect(NULL reference)", nil, "null").expect(t, "null_parameter", "reference", "inspect(NULL reference)")
	inspect("inspect(misspelt option)", tool, `{"format":"raw"}`).expect(t, "invalid_input", "unknown field `format`", "inspect with a misspelt option")
	inspect("inspect(bad reference)", cstr("Not A Reference"), "null").expect(t, "invalid_input", "Not A Reference", "inspect of a bad reference")

	tags := func(what string, repo *C.char, options string) rawResult {
		return rawCall(t, what, func(out, errOut **C.char) C.porter_status {
			return C.porter_client_tags(client, repo, cstr(options), nil, out, errOut)
		})
	}
	repo := cstr(registry + "/cgo/raw")
	r = tags("tags(null options)", repo, "null")
	if t.Check(r.status == C.PORTER_OK, "tags: %s", r.err) {
		schemas.validate(t, "tags.schema.json", r.result, "tags result")
		want := fmt.Sprintf(`{"repository":"%s/cgo/raw","tags":["1","latest"]}`, registry)
		t.Check(r.result == want, "tags of cgo/raw = %s, want %s", r.result, want)
	}
	r = tags("tags(semver)", repo, `{"semver":">=1","page_size":1}`)
	if t.Check(r.status == C.PORTER_OK, "tags with a constraint: %s", r.err) {
		schemas.validate(t, "tags.schema.json", r.result, "tags result with a constraint")
	}
	tags("tags(latest, no version)", repo, `{"semver":">=1","latest":true}`).expect(t, "not_found", "satisfying the version constraint", "latest of no version")
	tags("tags(bad constraint)", repo, `{"semver":"one"}`).expect(t, "invalid_input", "invalid version constraint", "tags with a bad constraint")
	tags("tags(page_size 0)", repo, `{"page_size":0}`).expect(t, "invalid_input", "page_size", "tags with page_size 0")
	tags("tags(NULL repository)", nil, "null").expect(t, "null_parameter", "repository", "tags(NULL repository)")

	layout := cstr("oci:" + filepath.Join(work, "raw-layout"))
	copyTo := func(what string, dst *C.char, options string) rawResult {
		return rawCall(t, what, func(out, errOut **C.char) C.porter_status {
			return C.porter_client_copy(client, tool, dst, cstr(options), nil, out, errOut)
		})
	}
	r = copyTo("copy", layout, `{"platforms":["linux/amd64"]}`)
	if t.Check(r.status == C.PORTER_OK, "copy: %s", r.err) {
		schemas.validate(t, "copy-outcome.schema.json", r.result, "copy result")
	}
	copyTo("copy(NULL destination)", nil, "null").expect(t, "null_parameter", "destination", "copy(NULL destination)")
	copyTo("copy(misspelt option)", layout, `{"platform":["linux/amd64"]}`).expect(t, "invalid_input", "unknown field `platform`", "copy with a misspelt option")
	copyTo("copy(timeout_ms 0)", layout, `{"timeout_ms":0}`).expect(t, "invalid_input", "timeout_ms", "copy with a zero timeout")

	remove := func(what string, names *C.char) rawResult {
		return rawCall(t, what, func(out, errOut **C.char) C.porter_status {
			return C.porter_client_cache_remove(client, names, out, errOut)
		})
	}
	remove("cache_remove(NULL)", nil).expect(t, "null_parameter", "names_json", "cache_remove(NULL)")
	remove("cache_remove(object)", cstr(`{}`)).expect(t, "invalid_input", "names_json", "cache_remove of an object")
	remove("cache_remove(unknown)", cstr(`["no-such-artifact"]`)).expect(t, "not_found", "no-such-artifact", "cache_remove of an unknown name")
	r = remove("cache_remove", cstr(fmt.Sprintf("[%q]", env("PORTER_TEST_TOOL_ID"))))
	if t.Check(r.status == C.PORTER_OK, "cache_remove: %s", r.err) {
		schemas.validate(t, "prune-report.schema.json", r.result, "cache remove report")
	}
}
