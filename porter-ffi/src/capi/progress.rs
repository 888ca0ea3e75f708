//! Progress for C callers: the engine's [`Progress`] events forwarded to a C function pointer.

use std::ffi::{CString, c_char, c_void};

use porter_core::digest::Digest;
use porter_core::progress::{Progress, Wait};

/// What a progress event reports.
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum porter_progress_kind {
    /// A blob transfer starts: `size` is its size, `title` its layer title (or NULL).
    PORTER_PROGRESS_STARTED = 1,
    /// `bytes` more bytes of the blob were transferred.
    PORTER_PROGRESS_BYTES = 2,
    /// The blob is complete and verified; `reused` when it was already there (in the cache for
    /// a pull, in the registry for a push) and nothing was transferred.
    PORTER_PROGRESS_DONE = 3,
    /// Another pull (another process, or another call of this one) is downloading the blob; this
    /// call waits for it. `holder` is that process's id (0 when unknown).
    PORTER_PROGRESS_WAITING = 4,
    /// The other pull made no progress within the attempt timeout; this call downloads the blob
    /// itself. `holder` as for `PORTER_PROGRESS_WAITING`.
    PORTER_PROGRESS_WAIT_ABANDONED = 5,
}

/// One progress event. The pointers are valid only during the callback; copy what you keep.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug)]
pub struct porter_progress_event {
    /// What happened.
    pub kind: porter_progress_kind,
    /// The blob's digest (`sha256:…`), NUL-terminated.
    pub digest: *const c_char,
    /// `PORTER_PROGRESS_STARTED`: the blob's size in bytes; otherwise 0.
    pub size: u64,
    /// `PORTER_PROGRESS_BYTES`: bytes transferred since the previous event; otherwise 0.
    pub bytes: u64,
    /// `PORTER_PROGRESS_DONE`: nothing was transferred because the blob was already there.
    pub reused: bool,
    /// `PORTER_PROGRESS_STARTED`: the layer title when known; otherwise NULL.
    pub title: *const c_char,
    /// `PORTER_PROGRESS_WAITING`, `PORTER_PROGRESS_WAIT_ABANDONED`: the process id of the pull
    /// holding the blob, 0 when unknown; otherwise 0.
    pub holder: u32,
}

/// Receives progress events of a call, on the thread that made the call and only while the call
/// runs: never after it returned, never after `porter_call_free` returned. A `porter_call` that
/// serves calls on several threads gets their events concurrently, each on its call's thread.
/// It must return quickly, must not unwind (no C++ exceptions, no Go panics), and must not start
/// porter calls (they return `PORTER_CALLED_FROM_CALLBACK`); it may call `porter_call_cancel`.
#[allow(non_camel_case_types)]
pub type porter_progress_callback =
    Option<unsafe extern "C" fn(userdata: *mut c_void, event: *const porter_progress_event)>;

/// A C callback and its user data.
#[derive(Debug)]
pub(super) struct CallbackProgress {
    callback: unsafe extern "C" fn(*mut c_void, *const porter_progress_event),
    userdata: *mut c_void,
}

// SAFETY: `porter_call_new`'s contract makes the callback callable from any thread with this
// `userdata`, concurrently; the library never dereferences `userdata` itself.
unsafe impl Send for CallbackProgress {}
// SAFETY: as for `Send`; `&CallbackProgress` only reads the two fields.
unsafe impl Sync for CallbackProgress {}

impl CallbackProgress {
    pub(super) fn new(callback: porter_progress_callback, userdata: *mut c_void) -> Option<Self> {
        callback.map(|callback| CallbackProgress { callback, userdata })
    }

    fn emit(&self, kind: porter_progress_kind, digest: &Digest, fields: Fields<'_>) {
        let digest = CString::new(digest.to_string()).unwrap_or_default();
        let title = fields.title.and_then(|t| CString::new(t).ok());
        let event = porter_progress_event {
            kind,
            digest: digest.as_ptr(),
            size: fields.size,
            bytes: fields.bytes,
            reused: fields.reused,
            title: title.as_ref().map_or(std::ptr::null(), |t| t.as_ptr()),
            holder: fields.holder,
        };
        // SAFETY: the callback was supplied for exactly this use; `event` and the strings it
        // points to outlive the call.
        unsafe { (self.callback)(self.userdata, &event) };
    }
}

#[derive(Default)]
struct Fields<'a> {
    size: u64,
    bytes: u64,
    reused: bool,
    title: Option<&'a str>,
    holder: u32,
}

impl Progress for CallbackProgress {
    fn blob_started(&self, digest: &Digest, size: u64, title: Option<&str>) {
        let fields = Fields {
            size,
            title,
            ..Fields::default()
        };
        self.emit(
            porter_progress_kind::PORTER_PROGRESS_STARTED,
            digest,
            fields,
        );
    }

    fn blob_progress(&self, digest: &Digest, bytes: u64) {
        let fields = Fields {
            bytes,
            ..Fields::default()
        };
        self.emit(porter_progress_kind::PORTER_PROGRESS_BYTES, digest, fields);
    }

    fn blob_done(&self, digest: &Digest, reused: bool) {
        let fields = Fields {
            reused,
            ..Fields::default()
        };
        self.emit(porter_progress_kind::PORTER_PROGRESS_DONE, digest, fields);
    }

    fn blob_waiting(&self, digest: &Digest, wait: Wait) {
        let (kind, holder) = match wait {
            Wait::Started { holder } => (porter_progress_kind::PORTER_PROGRESS_WAITING, holder),
            Wait::GaveUp { holder } => {
                (porter_progress_kind::PORTER_PROGRESS_WAIT_ABANDONED, holder)
            }
            _ => return,
        };
        let fields = Fields {
            holder: holder.unwrap_or(0),
            ..Fields::default()
        };
        self.emit(kind, digest, fields);
    }
}
