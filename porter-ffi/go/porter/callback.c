// The C side of progress callbacks: porter_call_new with the exported Go function and a
// cgo.Handle as userdata (a Go file with //export may only declare C functions).
#include "_cgo_export.h"

porter_status porter_go_call_new(uintptr_t handle, porter_call **call_out) {
  return porter_call_new(handle ? (porter_progress_callback)porterGoProgress : NULL,
                         (void *)handle, call_out);
}
