package porter

/*
#include <stdlib.h>
*/
import "C"

import (
	"encoding/json"
	"sync"
)

// lifecycle is what a Client and an Adapter share: calls run while the handle is open, and
// closing cancels them, waits for them, and frees the handle.
type lifecycle struct {
	// mu is held shared by every call while it runs in the library, and exclusively while the
	// handle is freed.
	mu      sync.RWMutex
	closed  bool
	closing chan struct{}
	once    sync.Once
}

func newLifecycle() lifecycle {
	return lifecycle{closing: make(chan struct{})}
}

// call runs do unless the handle is closed; a call the library cancelled because the handle
// was closing matches ErrClosed.
func (l *lifecycle) call(op string, do func() ([]byte, error)) ([]byte, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return nil, &Error{Op: op, Kind: KindCancelled, Message: "closed", cause: ErrClosed}
	}
	text, err := do()
	if e, ok := err.(*Error); ok && e.Kind == KindCancelled {
		select {
		case <-l.closing:
			e.cause = ErrClosed
		default:
		}
	}
	return text, err
}

// close runs cancel (the library's _close: cancel the running calls and wait for them), waits
// for the calls still in this package, and runs free, once.
func (l *lifecycle) close(cancel, free func()) {
	l.once.Do(func() {
		l.mu.RLock()
		close(l.closing)
		cancel()
		l.mu.RUnlock()
		l.mu.Lock()
		free()
		l.closed = true
		l.mu.Unlock()
	})
}

// configJSON is cfg as DS's configuration JSON (NULL for nil), freed by the returned function.
func configJSON(cfg any) (*C.char, func(), error) {
	if cfg == nil {
		return nil, func() {}, nil
	}
	text, err := json.Marshal(cfg)
	if err != nil {
		return nil, nil, &Error{Op: "open", Kind: KindInvalidInput, Message: "configuration: " + err.Error()}
	}
	p, free := cString(string(text))
	return p, free, nil
}
