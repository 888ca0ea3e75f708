// porter_call_new with the exported Go progress function (a Go file with //export may only
// declare C functions).
#include "_cgo_export.h"

porter_status raw_call_new(uintptr_t handle, porter_call **call_out) {
  return porter_call_new((porter_progress_callback)cgoRawProgress, (void *)handle, call_out);
}
