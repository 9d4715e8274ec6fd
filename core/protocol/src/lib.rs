//! `donghanh-protocol`: the wire types shared by the sync client and the server.
//!
//! Serde types only: no I/O, no storage, no crypto (DESIGN.md §1). The JSON shape of each type
//! is frozen by fixture tests in `tests/fixtures.rs`: changing a fixture is a protocol change
//! and needs a new [`PROTOCOL_VERSION`]. The sync requests and responses arrive with the sync
//! server (DESIGN.md §3); this crate starts with what every endpoint shares.

use serde::{Deserialize, Serialize};

/// The protocol version this build speaks. Both sides check it on every request.
pub const PROTOCOL_VERSION: u32 = 1;

/// The header that carries [`PROTOCOL_VERSION`].
pub const PROTOCOL_HEADER: &str = "x-donghanh-protocol";

/// The one error shape of every endpoint: a stable machine code and a message for people.
/// Messages never carry personal data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    /// Stable code a client acts on, e.g. `invalid_input`, `unauthorised`, `conflict`.
    pub code: String,
    /// A human-readable explanation without personal data.
    pub message: String,
}

impl ErrorBody {
    /// An error body.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
        }
    }
}
