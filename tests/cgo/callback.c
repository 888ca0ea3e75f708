// Hands the exported Go progress function to porter_call_new with a cgo.Handle as userdata
// (a Go file with //export may only declare C functions, not define them).
#include "_cgo_export.h"

porter_status cgo_call_new(uintptr_t handle, porter_call **call_out) {
  return porter_call_new((porter_progress_callback)porterGoProgress, (void *)handle, call_out);
}
