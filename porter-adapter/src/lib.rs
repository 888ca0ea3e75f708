//! `porter-adapter`: the higher-level DS client (installations, bundles, state, events) with its
//! own SQLite metadata store.
//!
//! Not built yet: this crate is an empty member of the workspace so the dependency direction
//! (`porter-core` ← `porter-adapter`) is fixed from the start. See the project's open issues.
