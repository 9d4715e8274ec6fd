//! `donghanh-ffi`: Đồng Hành's core for the phones (Kotlin, Swift) and for Python, through
//! uniffi proc-macros (DESIGN.md §6, STYLE.md points 2–3).
//!
//! FFI at the edge: the core knows nothing of uniffi. This crate holds only
//!
//! - [`Device`](device::Device), one object over `donghanh_core::Device`, and `store_exists`;
//! - record and enum mirrors ([`types`]) with their conversions: ids are strings, days
//!   `YYYY-MM-DD`, instants RFC 3339;
//! - the one error type, [`DonghanhError`](error::DonghanhError);
//! - the foreign traits [`KeyStore`](callbacks::KeyStore) and
//!   [`SyncListener`](callbacks::SyncListener).
//!
//! Every export is blocking (no async anywhere): apps call them on a worker thread. Nothing
//! here panics on input: every argument is parsed into a typed error.
//!
//! Tests are the foreign-language ones (`bindings/python`, `bindings/kotlin`), run by
//! `scripts/bindings test`: this crate is only a `cdylib`/`staticlib`, so that release LTO
//! applies to it. The invalid-argument table (`invalid_args.rs`, a unit-test module) calls the
//! exported functions directly, as the bindings do.

mod callbacks;
mod device;
mod error;
#[cfg(test)]
mod invalid_args;
mod types;

uniffi::setup_scaffolding!();
