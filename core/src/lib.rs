//! `donghanh-core`: the shared core that Đồng Hành's phones embed.
//!
//! One entry point, `Device`, opens the encrypted store, runs migrations and hands out the
//! operations of a field device (DESIGN.md §1, STYLE.md "libraries, not frameworks"). Inside:
//!
//! - [`domain`]: the entities of DOMAIN.md, their validation and the legal clock;
//! - [`crypto`]: the envelope (AES-256-GCM with bound associated data), the key hierarchy and
//!   the blind index;
//! - [`store`]: the encrypted SQLite store, its schema and the outbox;
//! - [`search`]: the name normalisation behind diacritic-insensitive search;
//! - [`sync`]: the device's data layer of sync: building a push from the outbox, applying
//!   receipts and pulled pages (the wire types are [`protocol`], re-exported).
//!
//! The core knows nothing of uniffi or of HTTP frameworks. It never prints and never exits.
//!
//! Feature `storage` (default) brings the store, its crypto and `Device`; without it the crate
//! is the domain rules and name folding only, which is what the server links.

#[cfg(feature = "storage")]
pub mod crypto;
#[cfg(feature = "storage")]
mod device;
pub mod domain;
#[cfg(feature = "storage")]
mod error;
pub mod input;
#[cfg(feature = "storage")]
pub mod keystore;
pub mod report;
pub mod search;
#[cfg(feature = "storage")]
pub mod store;
#[cfg(feature = "storage")]
pub mod sync;

#[cfg(feature = "storage")]
pub use device::Device;
/// The sync wire types (`donghanh-protocol`), as the core uses them.
#[cfg(feature = "storage")]
pub use donghanh_protocol as protocol;
#[cfg(feature = "storage")]
pub use error::{Error, RemoteProblem, Result};
#[cfg(feature = "storage")]
pub use keystore::{FileKeyStore, KeyStore, KeyStoreError};
#[cfg(feature = "storage")]
pub use store::CaseloadEntry;
