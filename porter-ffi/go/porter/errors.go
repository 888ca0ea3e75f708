package porter

/*
#include <stdint.h>
#include "porter.h"
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
)

// Kind classifies a failure: it is the library's porter_status, with the same stable names.
// A Kind is itself an error, so errors.Is(err, porter.KindNotFound) tells what went wrong.
type Kind uint32

// The kinds of failure (porter.h, enum porter_status).
const (
	KindNullParameter      Kind = C.PORTER_NULL_PARAMETER
	KindInvalidUTF8        Kind = C.PORTER_INVALID_UTF8
	KindPanic              Kind = C.PORTER_PANIC
	KindCalledFromCallback Kind = C.PORTER_CALLED_FROM_CALLBACK
	KindRuntimeUnavailable Kind = C.PORTER_RUNTIME_UNAVAILABLE
	KindCancelled          Kind = C.PORTER_CANCELLED
	KindTimedOut           Kind = C.PORTER_TIMED_OUT
	KindInvalidInput       Kind = C.PORTER_INVALID_INPUT
	KindNotFound           Kind = C.PORTER_NOT_FOUND
	KindUnauthorized       Kind = C.PORTER_UNAUTHORIZED
	KindNetwork            Kind = C.PORTER_NETWORK
	KindIntegrity          Kind = C.PORTER_INTEGRITY
	KindIO                 Kind = C.PORTER_IO
	KindUnsafe             Kind = C.PORTER_UNSAFE
	KindOther              Kind = C.PORTER_OTHER
	KindExpired            Kind = C.PORTER_EXPIRED
	KindStore              Kind = C.PORTER_STORE
	KindCacheCorrupt       Kind = C.PORTER_CACHE_CORRUPT
	KindInternal           Kind = C.PORTER_INTERNAL
)

// String is the kind's stable name ("not_found", "network", …; "unknown" for a number this
// library does not know).
func (k Kind) String() string {
	return C.GoString(C.porter_status_name(C.uint32_t(k)))
}

// Error makes a Kind usable as the target of errors.Is.
func (k Kind) Error() string { return k.String() }

// Error is a failed call: what was being done, the kind of failure, and the library's message,
// which names the reference, registry, path, option or configuration key at fault.
//
// errors.Is(err, k) holds for the Error's Kind k. A call stopped by its context matches the
// context's error (context.Canceled or context.DeadlineExceeded); otherwise KindCancelled
// matches context.Canceled and KindTimedOut context.DeadlineExceeded. A call refused or stopped
// because its Client or Adapter was closed matches ErrClosed.
type Error struct {
	// Op is the operation: "open", "pull", "export", "inspect", "tags", "copy", "push",
	// "list", "prune", "remove", "verify", "adapter".
	Op string
	// Kind classifies the failure.
	Kind Kind
	// Message is the library's description.
	Message string
	// cause is what stopped the call from this side: the context's error or ErrClosed.
	cause error
}

func (e *Error) Error() string {
	return fmt.Sprintf("porter: %s: %s: %s", e.Op, e.Kind, e.Message)
}

// Is reports whether target is e's Kind, or what stopped the call.
func (e *Error) Is(target error) bool {
	switch target {
	case context.Canceled, context.DeadlineExceeded:
		if e.cause != nil {
			return target == e.cause
		}
		return (target == context.Canceled && e.Kind == KindCancelled) ||
			(target == context.DeadlineExceeded && e.Kind == KindTimedOut)
	case ErrClosed:
		return e.cause == ErrClosed
	}
	kind, ok := target.(Kind)
	return ok && kind == e.Kind
}

// ErrClosed is returned by calls on a Client or Adapter that is closed or closing.
var ErrClosed = errors.New("porter: closed")

// PanicError is returned by a call whose progress callback panicked: the panic was recovered,
// the call cancelled, and no further callbacks were made.
type PanicError struct {
	// Value is what the callback panicked with.
	Value any
	// Stack is the callback goroutine's stack at the panic.
	Stack []byte
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("porter: progress callback panicked: %v", e.Value)
}
