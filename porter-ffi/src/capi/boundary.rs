//! What every exported function does at the boundary: install the crypto provider, catch
//! panics, read pointer arguments with NULL and UTF-8 checks, and write outputs — results only
//! on success, the error JSON only on failure.

use std::any::Any;
use std::ffi::{CStr, CString, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::status::{Failure, porter_status};

/// Runs `body` behind the panic boundary: a panic becomes a `PORTER_PANIC` failure.
pub(super) fn guard(body: impl FnOnce() -> Result<(), Failure>) -> Result<(), Failure> {
    porter_core::install_crypto_provider();
    catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|payload| {
        Err(Failure::new(
            porter_status::PORTER_PANIC,
            format!("porter panicked: {}", panic_message(payload.as_ref())),
        ))
    })
}

/// The status of an outcome; on failure writes the error JSON to `error_out` when it is not
/// NULL (and nothing else is written).
///
/// # Safety
///
/// `error_out` is NULL or valid for writing a pointer.
pub(super) unsafe fn finish(
    outcome: Result<(), Failure>,
    error_out: *mut *mut c_char,
) -> porter_status {
    match outcome {
        Ok(()) => porter_status::PORTER_OK,
        Err(failure) => {
            if !error_out.is_null() {
                // SAFETY: not NULL, and the caller guarantees it is valid for writes.
                unsafe { error_out.write(into_c_string(failure.to_json())) };
            }
            failure.status
        }
    }
}

/// Runs `body` behind the panic boundary for functions without a status (the `_free`s): a
/// panic is swallowed, since there is nobody to report it to.
pub(super) fn guard_void(body: impl FnOnce()) {
    let _ = catch_unwind(AssertUnwindSafe(body));
}

/// Runs `body` behind the panic boundary for functions that return a value rather than a
/// status: a panic returns `fallback`.
pub(super) fn guard_value<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(fallback)
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a non-string panic payload")
}

/// A `PORTER_NULL_PARAMETER` failure naming the parameter.
pub(super) fn null(parameter: &str) -> Failure {
    Failure::new(
        porter_status::PORTER_NULL_PARAMETER,
        format!("{parameter} is NULL"),
    )
}

/// A required string argument.
///
/// # Safety
///
/// `ptr` is NULL or a NUL-terminated string that stays valid and unmodified for `'a`.
pub(super) unsafe fn str_arg<'a>(ptr: *const c_char, parameter: &str) -> Result<&'a str, Failure> {
    // SAFETY: forwarded to the caller.
    unsafe { opt_str_arg(ptr, parameter) }?.ok_or_else(|| null(parameter))
}

/// An optional string argument (NULL is `None`).
///
/// # Safety
///
/// As [`str_arg`].
pub(super) unsafe fn opt_str_arg<'a>(
    ptr: *const c_char,
    parameter: &str,
) -> Result<Option<&'a str>, Failure> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: not NULL; NUL-terminated and valid for 'a by the caller's guarantee.
    let text = unsafe { CStr::from_ptr(ptr) };
    text.to_str().map(Some).map_err(|e| {
        Failure::new(
            porter_status::PORTER_INVALID_UTF8,
            format!("{parameter} is not valid UTF-8: {e}"),
        )
    })
}

/// Checks an output pointer before any work is done, so a NULL output fails fast.
pub(super) fn out_arg<T>(ptr: *mut T, parameter: &str) -> Result<*mut T, Failure> {
    if ptr.is_null() {
        Err(null(parameter))
    } else {
        Ok(ptr)
    }
}

/// Writes a string output: the one allocation rule is that every `char *` the library hands
/// out is freed with `porter_string_free`.
///
/// # Safety
///
/// `out` is valid for writing a pointer (checked by [`out_arg`]).
pub(super) unsafe fn write_string(out: *mut *mut c_char, text: String) {
    // SAFETY: forwarded to the caller.
    unsafe { out.write(into_c_string(text)) };
}

/// A heap C string owned by the caller until `porter_string_free`. Interior NULs (impossible in
/// JSON, possible in an odd message) become U+FFFD so the text is never cut short.
pub(super) fn into_c_string(text: String) -> *mut c_char {
    let text = if text.contains('\0') {
        text.replace('\0', "\u{FFFD}")
    } else {
        text
    };
    CString::new(text).unwrap_or_default().into_raw()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interior_nuls_do_not_cut_messages_short() {
        let raw = into_c_string("a\0b".to_owned());
        // SAFETY: `raw` came from `CString::into_raw` above and is freed once.
        let back = unsafe { CString::from_raw(raw) };
        assert_eq!(back.to_str(), Ok("a\u{FFFD}b"));
    }

    #[test]
    fn panics_become_a_status_and_an_error_json() {
        let mut error: *mut c_char = std::ptr::null_mut();
        let outcome = guard(|| panic!("boom"));
        // SAFETY: `error` is a valid, writable pointer.
        let status = unsafe { finish(outcome, &mut error) };
        assert_eq!(status, porter_status::PORTER_PANIC);
        assert!(!error.is_null());
        // SAFETY: written by `guard` with `into_c_string`; freed once.
        let json = unsafe { CString::from_raw(error) };
        assert_eq!(
            json.to_str(),
            Ok(r#"{"status":3,"kind":"panic","message":"porter panicked: boom"}"#)
        );
    }
}
