//! `donghanh-core`: the shared core that Đồng Hành's phones embed.
//!
//! One entry point, [`Device`], opens the encrypted store, runs migrations and hands out the
//! operations of a field device (DESIGN.md §1, STYLE.md "libraries, not frameworks"). Inside:
//!
//! - [`domain`]: the entities of DOMAIN.md, their validation and the legal clock;
//! - [`crypto`]: the envelope (AES-256-GCM with bound associated data), the key hierarchy and
//!   the blind index;
//! - [`store`]: the encrypted SQLite store, its schema and the outbox;
//! - [`search`]: the name normalisation behind diacritic-insensitive search.
//!
//! The core knows nothing of uniffi or of HTTP frameworks. It never prints and never exits.

pub mod crypto;
mod device;
pub mod domain;
mod error;
pub mod keystore;
pub mod search;
pub mod store;

pub use device::Device;
pub use error::{Error, Result};
pub use keystore::{FileKeyStore, KeyStore, KeyStoreError};
pub use store::CaseloadEntry;
