//! Identifiers and scopes.
//!
//! Every record id is a random UUID (v4): it says nothing about the person, the time or the
//! device, which is why ids may stay in clear columns on the device (DESIGN.md §4).
//! A scope names the unit that sync grants and revokes and that owns one data key.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A random record id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Id(Uuid);

impl Id {
    /// A fresh random id.
    #[must_use]
    pub fn new() -> Self {
        Self(Uuid::new_v4())
    }

    /// The id as its 16 raw bytes (used in associated data and index keys).
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; 16] {
        self.0.as_bytes()
    }

    /// Rebuilds an id from 16 raw bytes.
    #[must_use]
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(Uuid::from_bytes(bytes))
    }

    /// The underlying UUID.
    #[must_use]
    pub fn uuid(&self) -> Uuid {
        self.0
    }
}

impl Default for Id {
    fn default() -> Self {
        Self::new()
    }
}

impl From<Uuid> for Id {
    fn from(u: Uuid) -> Self {
        Self(u)
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Id({})", self.0.hyphenated())
    }
}

/// The text given was not a record id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid id (expected a UUID such as 3f2c…-…)")]
pub struct InvalidId;

impl FromStr for Id {
    type Err = InvalidId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::try_parse(s.trim()).map(Self).map_err(|_| InvalidId)
    }
}

/// The unit of sync and of encryption: every record belongs to exactly one scope.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub enum Scope {
    /// A case and everything about it.
    Person(Id),
    /// Sessions and attendance of a community point.
    Point(Id),
    /// Tasks and supervision notes of a team.
    Team(Id),
    /// A user's own settings.
    User(Id),
}

impl Scope {
    /// The scope's prefix (`person`, `point`, `team`, `user`).
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Scope::Person(_) => "person",
            Scope::Point(_) => "point",
            Scope::Team(_) => "team",
            Scope::User(_) => "user",
        }
    }

    /// The id inside the scope.
    #[must_use]
    pub fn id(&self) -> Id {
        match self {
            Scope::Person(id) | Scope::Point(id) | Scope::Team(id) | Scope::User(id) => *id,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind(), self.id())
    }
}

/// The text given was not a scope such as `person:<uuid>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid scope (expected person:, point:, team: or user: followed by an id)")]
pub struct InvalidScope;

impl FromStr for Scope {
    type Err = InvalidScope;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (kind, id) = s.split_once(':').ok_or(InvalidScope)?;
        let id: Id = id.parse().map_err(|_| InvalidScope)?;
        match kind {
            "person" => Ok(Scope::Person(id)),
            "point" => Ok(Scope::Point(id)),
            "team" => Ok(Scope::Team(id)),
            "user" => Ok(Scope::User(id)),
            _ => Err(InvalidScope),
        }
    }
}

impl Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_round_trips_through_text() {
        let id = Id::new();
        for scope in [
            Scope::Person(id),
            Scope::Point(id),
            Scope::Team(id),
            Scope::User(id),
        ] {
            assert_eq!(scope.to_string().parse::<Scope>(), Ok(scope));
        }
        assert_eq!("case:x".parse::<Scope>(), Err(InvalidScope));
        assert_eq!("person:not-an-id".parse::<Scope>(), Err(InvalidScope));
        assert_eq!("nope".parse::<Id>(), Err(InvalidId));
    }
}
