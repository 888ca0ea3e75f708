//! `porter-ffi`: the C ABI (for cgo) and uniffi bindings of the engine.
//!
//! Not built yet: this crate is an empty member of the workspace, kept out of `default-members`
//! so the default build stays lean. See the project's open issues.
