//! Organisation, people who use the system, and their devices (DOMAIN.md "OrgUnit", "User, Role,
//! Device"; DESIGN.md §2).
//!
//! Decisions:
//! - **The org tree has any depth.** An [`OrgUnit`] names only its parent; nothing counts levels.
//!   The 2025 reform removed the district level, and a later one may add or remove another, so
//!   [`OrgTree`] answers every question (ancestors, subtree, "which commune") by walking parent
//!   links. [`OrgUnitKind::Other`] stands for any grouping that is none of the named kinds (a
//!   provincial police division, a future intermediate level) and may sit anywhere.
//! - **Placement rules compare kinds, never depths.** Provinces, communes, and teams or
//!   community points form a partial order: a unit may lie within `other` units freely, but
//!   within a named kind only if that kind is strictly broader (a commune may lie within a
//!   province, never within a commune, team or point). Teams and community points belong to a
//!   commune (DOMAIN.md), so they must have a parent (checked on the unit alone) and a commune
//!   among their ancestors (checked by the tree, which is the only place ancestors are known).
//!   A province or commune may be a root: a deployment may start with one commune.
//! - **The tree is built whole and checked whole.** [`OrgTree::new`] validates every unit and
//!   refuses duplicate ids, parents it does not hold ([`DomainError::UnknownReference`]), cycles
//!   ([`DomainError::OrgCycle`], including a unit that is its own parent) and misplaced kinds
//!   ([`DomainError::OrgPlacement`]). Once built, every walk terminates and nothing panics.
//!   Queries about an id the tree does not hold answer "nothing" (empty lists, `false`, `None`)
//!   rather than an error: the server asks them on every request and an unknown id must never
//!   grant anything.
//! - **Roles follow DESIGN.md §2.** [`Role::sees_case_content`] is the one-line summary the
//!   server and the client can both use; the finer scoping (which cases, which points) is the
//!   server's, from its own records, never from a scope a device claims.
//! - **Usernames are never normalised.** 3 to 64 characters from `a-z`, `0-9`, `.`, `_`, `-`.
//!   Anything else (upper case, spaces, diacritics) is refused with `InvalidFormat` instead of
//!   being lowered or trimmed, so that two spellings can never silently name the same account
//!   and what the admin typed is what the user types. The display name is personal (it is often
//!   the worker's full name): it is redacted from `Debug`, and so is a device's label, which
//!   people fill with things like "Hoa's phone". Org unit names are public (names of provinces,
//!   communes, teams) and print in `Debug`.
//! - **A community point only for counsellors.** DESIGN.md §2 gives counsellors the sessions of
//!   *their* community point; no other role has one, so [`User::point`] is `NotApplicable`
//!   otherwise. A counsellor without a point is allowed (their own clients only).
//! - **Devices are revoked once.** Revocation is the end of a device's life: revoking again is
//!   an `InvalidTransition` from `revoked`, and a revocation before the enrolment is a
//!   `DateOrder` error. Re-enrolling the same phone makes a new [`Device`] with a new id.
//! - **No [`Record`](super::Record) impl, on purpose.** These are server-side administrative
//!   records. A record's scope decides which devices receive it and which key seals it
//!   (`person:`, `point:`, `team:`, `user:`), and none fits: an org unit, a user or a device is
//!   not case data of a person, point or team, and although `user:<id>` exists it holds "a
//!   user's own settings" that the user edits, whereas a `User` is written by an admin and
//!   *decides* authority, which the server must take from its own records and never from a copy
//!   synced through a device (DESIGN.md §2). Implementing `Record` would also need new
//!   `RecordKind` variants, whose codes are bound into stored envelopes and would then be
//!   frozen; that is a decision for when a device really needs to store one of these (for
//!   example a read-only copy of its own profile), not a side effect of modelling them. Each
//!   type has a plain `validate(&self)` instead, and the server stores them in its own tables.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::rules::{NAME_MAX, Redacted, coded_enum, required_line};
use super::{DomainError, Id};

coded_enum! {
    /// What an org unit is. Says nothing about depth: the tree may hold any number of levels.
    pub enum OrgUnitKind {
        /// Tỉnh / thành phố trực thuộc trung ương.
        Province => "province",
        /// Xã / phường / đặc khu: where management files are decided and reports made.
        Commune => "commune",
        /// A volunteer social-work team (Đội công tác xã hội tình nguyện); belongs to a commune.
        Team => "team",
        /// A community point for counselling and treatment support; belongs to a commune.
        CommunityPoint => "community_point",
        /// Any other grouping (a police division, a future intermediate level); no placement
        /// rule applies to it.
        Other => "other",
    }
}

impl OrgUnitKind {
    /// How broad a named kind is, for placement: a unit may lie within a named kind only if
    /// that kind is strictly broader. `None` for `Other`, which is unranked.
    fn breadth(self) -> Option<u8> {
        match self {
            OrgUnitKind::Province => Some(3),
            OrgUnitKind::Commune => Some(2),
            OrgUnitKind::Team | OrgUnitKind::CommunityPoint => Some(1),
            OrgUnitKind::Other => None,
        }
    }

    /// Whether a unit of this kind must have a parent (it belongs to a commune).
    #[must_use]
    pub fn needs_parent(self) -> bool {
        matches!(self, OrgUnitKind::Team | OrgUnitKind::CommunityPoint)
    }
}

/// One node of the organisation tree.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct OrgUnit {
    /// Unit id.
    pub id: Id,
    /// Official name (public: "Xã Tân Phú", "Đội CTXH tình nguyện xã Tân Phú").
    pub name: String,
    /// What the unit is.
    pub kind: OrgUnitKind,
    /// The unit it belongs to; `None` for a root.
    #[serde(default)]
    pub parent: Option<Id>,
}

impl OrgUnit {
    /// A unit with a fresh id.
    #[must_use]
    pub fn new(name: impl Into<String>, kind: OrgUnitKind, parent: Option<Id>) -> Self {
        Self {
            id: Id::new(),
            name: name.into(),
            kind,
            parent,
        }
    }

    /// Checks the unit on its own (the tree checks what needs the other units).
    ///
    /// # Errors
    /// `Required`, `TooLong` or `InvalidFormat` for `name`; `Required` for `parent` of a team or
    /// community point; `OrgCycle` if the unit is its own parent.
    pub fn validate(&self) -> Result<(), DomainError> {
        required_line("name", &self.name, NAME_MAX)?;
        match self.parent {
            None if self.kind.needs_parent() => Err(DomainError::Required { field: "parent" }),
            Some(parent) if parent == self.id => Err(DomainError::OrgCycle),
            _ => Ok(()),
        }
    }
}

/// A checked organisation tree (a forest: several roots are allowed), built from a list of
/// units. Pure: it answers questions about the units it was built from and nothing else.
#[derive(Clone, Debug)]
pub struct OrgTree {
    units: BTreeMap<Id, OrgUnit>,
    children: BTreeMap<Id, Vec<Id>>,
}

impl OrgTree {
    /// Builds and checks the tree.
    ///
    /// # Errors
    /// The first problem found: a unit's own `validate` error; `Duplicate` (`id`) if two units
    /// share an id; `UnknownReference` (`parent`) if a parent is not in the list; `OrgCycle` if
    /// following parents ever comes back to a unit; `OrgPlacement` if a unit lies within a kind
    /// that is not broader than its own, or a team or community point has no commune above it.
    pub fn new(units: impl IntoIterator<Item = OrgUnit>) -> Result<Self, DomainError> {
        let mut map = BTreeMap::new();
        for unit in units {
            unit.validate()?;
            if map.insert(unit.id, unit).is_some() {
                return Err(DomainError::Duplicate { field: "id" });
            }
        }
        let mut children: BTreeMap<Id, Vec<Id>> = BTreeMap::new();
        for unit in map.values() {
            if let Some(parent) = unit.parent {
                if !map.contains_key(&parent) {
                    return Err(DomainError::UnknownReference { field: "parent" });
                }
                children.entry(parent).or_default().push(unit.id);
            }
        }
        check_acyclic(&map)?;
        let tree = Self {
            units: map,
            children,
        };
        tree.check_placement()?;
        Ok(tree)
    }

    /// Every kind above a unit must be unranked or strictly broader; teams and community points
    /// need a commune above them. Runs on an acyclic tree only.
    fn check_placement(&self) -> Result<(), DomainError> {
        for unit in self.units.values() {
            let mut has_commune = false;
            for ancestor in self.ancestor_units(unit.id) {
                has_commune |= ancestor.kind == OrgUnitKind::Commune;
                if let (Some(own), Some(above)) = (unit.kind.breadth(), ancestor.kind.breadth())
                    && above <= own
                {
                    return Err(DomainError::OrgPlacement {
                        kind: unit.kind.code(),
                    });
                }
            }
            if unit.kind.needs_parent() && !has_commune {
                return Err(DomainError::OrgPlacement {
                    kind: unit.kind.code(),
                });
            }
        }
        Ok(())
    }

    /// The unit with this id.
    #[must_use]
    pub fn get(&self, id: Id) -> Option<&OrgUnit> {
        self.units.get(&id)
    }

    /// Whether the tree holds this id.
    #[must_use]
    pub fn contains(&self, id: Id) -> bool {
        self.units.contains_key(&id)
    }

    /// Number of units.
    #[must_use]
    pub fn len(&self) -> usize {
        self.units.len()
    }

    /// Whether the tree has no units.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.units.is_empty()
    }

    /// Every unit, in id order.
    pub fn units(&self) -> impl Iterator<Item = &OrgUnit> {
        self.units.values()
    }

    /// The units without a parent, in id order.
    #[must_use]
    pub fn roots(&self) -> Vec<Id> {
        self.units
            .values()
            .filter(|u| u.parent.is_none())
            .map(|u| u.id)
            .collect()
    }

    /// The direct children of a unit, in id order (empty for a leaf or an unknown id).
    #[must_use]
    pub fn children(&self, id: Id) -> &[Id] {
        self.children.get(&id).map_or(&[], Vec::as_slice)
    }

    /// The strict ancestors of a unit, nearest first (its parent, then that unit's parent…).
    /// Empty for a root or an unknown id.
    fn ancestor_units(&self, id: Id) -> impl Iterator<Item = &OrgUnit> {
        // The tree is acyclic, so the walk ends; the bound is a second guard that costs nothing.
        let mut next = self.units.get(&id).and_then(|u| u.parent);
        std::iter::from_fn(move || {
            let unit = self.units.get(&next?)?;
            next = unit.parent;
            Some(unit)
        })
        .take(self.units.len())
    }

    /// The ids of a unit's strict ancestors, nearest first. Empty for a root or an unknown id.
    #[must_use]
    pub fn ancestors(&self, id: Id) -> Vec<Id> {
        self.ancestor_units(id).map(|u| u.id).collect()
    }

    /// Whether `id` is `ancestor` or lies below it. `false` if either id is unknown.
    #[must_use]
    pub fn is_within(&self, id: Id, ancestor: Id) -> bool {
        if !self.contains(id) || !self.contains(ancestor) {
            return false;
        }
        id == ancestor || self.ancestor_units(id).any(|u| u.id == ancestor)
    }

    /// A unit and everything below it, the unit first, then depth-first with children in id
    /// order. Empty for an unknown id.
    #[must_use]
    pub fn subtree(&self, id: Id) -> Vec<Id> {
        if !self.contains(id) {
            return Vec::new();
        }
        let mut out = Vec::new();
        let mut stack = vec![id];
        while let Some(next) = stack.pop() {
            out.push(next);
            stack.extend(self.children(next).iter().rev());
        }
        out
    }

    /// The commune a unit belongs to: the nearest of itself and its ancestors that is a
    /// commune. `None` for a unit above or beside communes, or an unknown id.
    #[must_use]
    pub fn commune_of(&self, id: Id) -> Option<Id> {
        let unit = self.units.get(&id)?;
        std::iter::once(unit)
            .chain(self.ancestor_units(id))
            .find(|u| u.kind == OrgUnitKind::Commune)
            .map(|u| u.id)
    }
}

/// Refuses a cycle of parent links. Every parent is known to be in `units`. Marks each unit
/// once: a walk that meets a unit of the current walk has found a cycle; one that meets a unit
/// finished by an earlier walk stops. Linear in the number of units.
fn check_acyclic(units: &BTreeMap<Id, OrgUnit>) -> Result<(), DomainError> {
    let mut finished: BTreeSet<Id> = BTreeSet::new();
    for start in units.keys() {
        let mut path: BTreeSet<Id> = BTreeSet::new();
        let mut current = Some(*start);
        while let Some(id) = current {
            if finished.contains(&id) {
                break;
            }
            if !path.insert(id) {
                return Err(DomainError::OrgCycle);
            }
            current = units.get(&id).and_then(|u| u.parent);
        }
        finished.extend(path);
    }
    Ok(())
}

coded_enum! {
    /// What a user may see and do (DESIGN.md §2). The server decides the actual scope of every
    /// request from its own records (assignments, roles, org tree).
    pub enum Role {
        /// Tình nguyện viên / đồng đẳng viên. Sees the people actively assigned to them and their
        /// own tasks; logs visits, drug-test results, support given, and proposes referrals.
        Volunteer => "volunteer",
        /// Tư vấn viên at a community point. Sees the sessions of their community point, the
        /// minimal identity of the attendees and their own clients; plans and holds sessions,
        /// records attendance and writes individual counselling notes.
        Counsellor => "counsellor",
        /// Team leader or commune officer. Sees every case in their commune; assigns and
        /// reassigns cases, creates follow-up tasks, reviews volunteers (supervision notes),
        /// resolves sync conflicts and sees the commune report.
        Supervisor => "supervisor",
        /// Provincial officer. Sees aggregates (reports) for their subtree only; a named case
        /// only through break-the-glass with a written reason, time-limited and audited.
        Officer => "officer",
        /// Administrator. Sees no case content; manages org units, users, devices and
        /// revocation.
        Admin => "admin",
    }
}

impl Role {
    /// Whether the role sees case content (names, visits, notes) in its ordinary work: `false`
    /// for admins (never) and officers (aggregates only; break-the-glass is an audited
    /// exception, not ordinary access).
    #[must_use]
    pub fn sees_case_content(self) -> bool {
        match self {
            Role::Volunteer | Role::Counsellor | Role::Supervisor => true,
            Role::Officer | Role::Admin => false,
        }
    }
}

/// Shortest accepted username, in characters.
pub const USERNAME_MIN: usize = 3;
/// Longest accepted username, in characters.
pub const USERNAME_MAX: usize = 64;

/// Checks a username: 3 to 64 characters from `a-z`, `0-9`, `.`, `_`, `-`; never normalised.
fn check_username(value: &str) -> Result<(), DomainError> {
    if value.trim().is_empty() {
        return Err(DomainError::Required { field: "username" });
    }
    let allowed = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b);
    // All allowed characters are ASCII, so bytes are characters once the set is checked.
    if value.bytes().all(allowed) && (USERNAME_MIN..=USERNAME_MAX).contains(&value.len()) {
        Ok(())
    } else {
        Err(DomainError::InvalidFormat {
            field: "username",
            expected: "3 to 64 lowercase letters a-z, digits, dots, underscores or hyphens",
        })
    }
}

/// Someone who signs in.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// User id.
    pub id: Id,
    /// Sign-in name, exactly as typed (see [`USERNAME_MIN`], [`USERNAME_MAX`]).
    pub username: String,
    /// Name shown to colleagues (personal: redacted from `Debug`).
    pub display_name: String,
    /// What the user may see and do.
    pub role: Role,
    /// The org unit the user works in (a commune for a supervisor, a province for an officer…).
    pub org_unit: Id,
    /// A counsellor's community point.
    #[serde(default)]
    pub point: Option<Id>,
    /// When the user was last trained for post-rehab work (the "staff trained" indicator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trained_on: Option<chrono::NaiveDate>,
}

impl User {
    /// A user with a fresh id and no community point.
    #[must_use]
    pub fn new(
        username: impl Into<String>,
        display_name: impl Into<String>,
        role: Role,
        org_unit: Id,
    ) -> Self {
        Self {
            id: Id::new(),
            username: username.into(),
            display_name: display_name.into(),
            role,
            org_unit,
            point: None,
            trained_on: None,
        }
    }

    /// Checks the user on its own.
    ///
    /// # Errors
    /// `Required` or `InvalidFormat` for `username`; `Required`, `TooLong` or `InvalidFormat`
    /// for `display_name`; `NotApplicable` for `point` unless the role is counsellor.
    pub fn validate(&self) -> Result<(), DomainError> {
        check_username(&self.username)?;
        required_line("display_name", &self.display_name, NAME_MAX)?;
        if self.point.is_some() && self.role != Role::Counsellor {
            return Err(DomainError::NotApplicable { field: "point" });
        }
        Ok(())
    }

    /// Checks the user's references against the org tree.
    ///
    /// # Errors
    /// `UnknownReference` if `org_unit` or `point` is not in the tree; `WrongKind` if `point` is
    /// not a community point.
    pub fn check_against(&self, tree: &OrgTree) -> Result<(), DomainError> {
        if !tree.contains(self.org_unit) {
            return Err(DomainError::UnknownReference { field: "org_unit" });
        }
        if let Some(point) = self.point {
            let unit = tree
                .get(point)
                .ok_or(DomainError::UnknownReference { field: "point" })?;
            if unit.kind != OrgUnitKind::CommunityPoint {
                return Err(DomainError::WrongKind {
                    field: "point",
                    expected: "a community point",
                });
            }
        }
        Ok(())
    }
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("display_name", &Redacted)
            .field("role", &self.role)
            .field("org_unit", &self.org_unit)
            .field("point", &self.point)
            .finish()
    }
}

/// A phone or tablet enrolled for a user; revocable (its keys stop working and the server stops
/// serving it).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// Device id.
    pub id: Id,
    /// The user it is enrolled for.
    pub user: Id,
    /// What people call it ("Hoa's phone"; redacted from `Debug`).
    pub label: String,
    /// When it was enrolled.
    pub enrolled_at: DateTime<Utc>,
    /// When it was revoked, if it was.
    #[serde(default)]
    pub revoked_at: Option<DateTime<Utc>>,
}

impl Device {
    /// A device enrolled at `enrolled_at`, with a fresh id.
    #[must_use]
    pub fn new(user: Id, label: impl Into<String>, enrolled_at: DateTime<Utc>) -> Self {
        Self {
            id: Id::new(),
            user,
            label: label.into(),
            enrolled_at,
            revoked_at: None,
        }
    }

    /// Whether the device has been revoked.
    #[must_use]
    pub fn is_revoked(&self) -> bool {
        self.revoked_at.is_some()
    }

    /// `active` or `revoked`.
    #[must_use]
    pub fn state(&self) -> &'static str {
        if self.is_revoked() {
            "revoked"
        } else {
            "active"
        }
    }

    /// Revokes the device at `at`. Nothing changes on error.
    ///
    /// # Errors
    /// `InvalidTransition` if already revoked; `DateOrder` if `at` is before the enrolment.
    pub fn revoke(&mut self, at: DateTime<Utc>) -> Result<(), DomainError> {
        if self.is_revoked() {
            return Err(DomainError::InvalidTransition {
                from: "revoked",
                to: "revoked",
            });
        }
        if at < self.enrolled_at {
            return Err(DomainError::DateOrder {
                earlier: "enrolled_at",
                later: "revoked_at",
            });
        }
        self.revoked_at = Some(at);
        Ok(())
    }

    /// Checks the device on its own.
    ///
    /// # Errors
    /// `Required`, `TooLong` or `InvalidFormat` for `label`; `DateOrder` if it was revoked
    /// before it was enrolled.
    pub fn validate(&self) -> Result<(), DomainError> {
        required_line("label", &self.label, NAME_MAX)?;
        match self.revoked_at {
            Some(at) if at < self.enrolled_at => Err(DomainError::DateOrder {
                earlier: "enrolled_at",
                later: "revoked_at",
            }),
            _ => Ok(()),
        }
    }
}

impl fmt::Debug for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Device")
            .field("id", &self.id)
            .field("user", &self.user)
            .field("label", &Redacted)
            .field("enrolled_at", &self.enrolled_at)
            .field("revoked_at", &self.revoked_at)
            .finish()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use proptest::prelude::*;
    use uuid::Uuid;

    use super::*;
    use crate::domain::testutil::{round_trip, t};

    fn unit(kind: OrgUnitKind, parent: Option<&OrgUnit>) -> OrgUnit {
        OrgUnit::new(format!("Đơn vị {kind}"), kind, parent.map(|p| p.id))
    }

    /// province → other (police division) → commune → {team, point}; a second province.
    struct Sample {
        province: OrgUnit,
        division: OrgUnit,
        commune: OrgUnit,
        team: OrgUnit,
        point: OrgUnit,
        other_province: OrgUnit,
    }

    fn sample() -> Sample {
        let province = unit(OrgUnitKind::Province, None);
        let division = unit(OrgUnitKind::Other, Some(&province));
        let commune = unit(OrgUnitKind::Commune, Some(&division));
        let team = unit(OrgUnitKind::Team, Some(&commune));
        let point = unit(OrgUnitKind::CommunityPoint, Some(&commune));
        let other_province = unit(OrgUnitKind::Province, None);
        Sample {
            province,
            division,
            commune,
            team,
            point,
            other_province,
        }
    }

    impl Sample {
        fn units(&self) -> Vec<OrgUnit> {
            vec![
                self.point.clone(),
                self.team.clone(),
                self.commune.clone(),
                self.division.clone(),
                self.province.clone(),
                self.other_province.clone(),
            ]
        }

        fn tree(&self) -> OrgTree {
            OrgTree::new(self.units()).unwrap()
        }
    }

    // ---- OrgUnit ----

    #[test]
    fn kinds_have_stable_codes() {
        let codes: Vec<&str> = OrgUnitKind::ALL.iter().map(|k| k.code()).collect();
        assert_eq!(
            codes,
            ["province", "commune", "team", "community_point", "other"]
        );
        for kind in OrgUnitKind::ALL {
            assert_eq!(OrgUnitKind::from_code(kind.code()), Some(*kind));
            round_trip(kind);
        }
        assert_eq!(OrgUnitKind::from_code("district"), None);
        assert_eq!(OrgUnitKind::CommunityPoint.to_string(), "community_point");
    }

    #[test]
    fn unit_name_is_required_bounded_and_single_line() {
        let mut u = OrgUnit::new("Tỉnh Lâm Đồng", OrgUnitKind::Province, None);
        assert_eq!(u.validate(), Ok(()));
        u.name = "  ".into();
        assert_eq!(u.validate(), Err(DomainError::Required { field: "name" }));
        u.name = "ễ".repeat(NAME_MAX);
        assert_eq!(u.validate(), Ok(()));
        u.name.push('a');
        assert_eq!(
            u.validate(),
            Err(DomainError::TooLong {
                field: "name",
                max: NAME_MAX
            })
        );
        u.name = "Xã\nTân Phú".into();
        assert!(matches!(
            u.validate(),
            Err(DomainError::InvalidFormat { field: "name", .. })
        ));
    }

    #[test]
    fn teams_and_points_need_a_parent_others_may_be_roots() {
        for kind in OrgUnitKind::ALL {
            let u = OrgUnit::new("X", *kind, None);
            let expected = if kind.needs_parent() {
                Err(DomainError::Required { field: "parent" })
            } else {
                Ok(())
            };
            assert_eq!(u.validate(), expected, "{kind}");
            assert_eq!(OrgUnit::new("X", *kind, Some(Id::new())).validate(), Ok(()));
        }
        assert!(OrgUnitKind::Team.needs_parent());
        assert!(OrgUnitKind::CommunityPoint.needs_parent());
    }

    #[test]
    fn a_unit_cannot_be_its_own_parent() {
        let mut u = OrgUnit::new("X", OrgUnitKind::Other, None);
        u.parent = Some(u.id);
        assert_eq!(u.validate(), Err(DomainError::OrgCycle));
        assert_eq!(OrgTree::new([u]).err(), Some(DomainError::OrgCycle));
    }

    #[test]
    fn unit_round_trips_and_parent_defaults_to_none() {
        let s = sample();
        round_trip(&s.team);
        round_trip(&s.province);
        let json = format!(
            r#"{{"id":"{}","name":"Tỉnh A","kind":"province"}}"#,
            s.province.id
        );
        let back: OrgUnit = serde_json::from_str(&json).unwrap();
        assert_eq!(back.parent, None);
        assert_eq!(back.kind, OrgUnitKind::Province);
        assert!(serde_json::from_str::<OrgUnit>(&json.replace("province", "district")).is_err());
    }

    // ---- OrgTree ----

    #[test]
    fn tree_answers_ancestors_subtree_and_commune() {
        let s = sample();
        let tree = s.tree();
        assert_eq!(tree.len(), 6);
        assert!(!tree.is_empty());
        assert_eq!(tree.get(s.team.id), Some(&s.team));
        assert_eq!(
            tree.ancestors(s.team.id),
            vec![s.commune.id, s.division.id, s.province.id]
        );
        assert_eq!(tree.ancestors(s.province.id), Vec::<Id>::new());
        assert!(tree.is_within(s.team.id, s.province.id));
        assert!(tree.is_within(s.team.id, s.team.id));
        assert!(!tree.is_within(s.province.id, s.team.id));
        assert!(!tree.is_within(s.team.id, s.point.id));
        assert!(!tree.is_within(s.team.id, s.other_province.id));

        let sub: BTreeSet<Id> = tree.subtree(s.commune.id).into_iter().collect();
        assert_eq!(sub, BTreeSet::from([s.commune.id, s.team.id, s.point.id]));
        assert_eq!(tree.subtree(s.commune.id)[0], s.commune.id);
        assert_eq!(tree.subtree(s.province.id).len(), 5);
        assert_eq!(tree.subtree(s.other_province.id), vec![s.other_province.id]);

        assert_eq!(tree.commune_of(s.team.id), Some(s.commune.id));
        assert_eq!(tree.commune_of(s.point.id), Some(s.commune.id));
        assert_eq!(tree.commune_of(s.commune.id), Some(s.commune.id));
        assert_eq!(tree.commune_of(s.division.id), None);
        assert_eq!(tree.commune_of(s.province.id), None);

        let roots: BTreeSet<Id> = tree.roots().into_iter().collect();
        assert_eq!(roots, BTreeSet::from([s.province.id, s.other_province.id]));
        let mut kids = vec![s.team.id, s.point.id];
        kids.sort();
        assert_eq!(tree.children(s.commune.id), kids.as_slice());
        assert!(tree.children(s.team.id).is_empty());
        assert_eq!(tree.units().count(), 6);
    }

    #[test]
    fn unknown_ids_get_nothing() {
        let s = sample();
        let tree = s.tree();
        let stranger = Id::new();
        assert!(!tree.contains(stranger));
        assert_eq!(tree.get(stranger), None);
        assert!(tree.ancestors(stranger).is_empty());
        assert!(tree.subtree(stranger).is_empty());
        assert!(tree.children(stranger).is_empty());
        assert_eq!(tree.commune_of(stranger), None);
        assert!(!tree.is_within(stranger, stranger));
        assert!(!tree.is_within(stranger, s.province.id));
        assert!(!tree.is_within(s.team.id, stranger));
    }

    #[test]
    fn empty_tree_is_fine() {
        let tree = OrgTree::new(Vec::new()).unwrap();
        assert!(tree.is_empty());
        assert!(tree.roots().is_empty());
    }

    #[test]
    fn tree_of_any_depth_and_without_a_district_level() {
        // Province directly above commune (post-2025), and a deep chain of `other` levels.
        let province = unit(OrgUnitKind::Province, None);
        let commune = unit(OrgUnitKind::Commune, Some(&province));
        let mut units = vec![province.clone(), commune];
        let mut above = province.clone();
        for _ in 0..50 {
            let next = unit(OrgUnitKind::Other, Some(&above));
            units.push(next.clone());
            above = next;
        }
        let deep_commune = unit(OrgUnitKind::Commune, Some(&above));
        let team = unit(OrgUnitKind::Team, Some(&deep_commune));
        units.extend([deep_commune.clone(), team.clone()]);
        let tree = OrgTree::new(units).unwrap();
        assert_eq!(tree.ancestors(team.id).len(), 52);
        assert_eq!(tree.commune_of(team.id), Some(deep_commune.id));
        assert!(tree.is_within(team.id, province.id));
    }

    #[test]
    fn tree_refuses_unknown_parents() {
        let s = sample();
        let mut units = s.units();
        units.retain(|u| u.id != s.division.id);
        assert_eq!(
            OrgTree::new(units).err(),
            Some(DomainError::UnknownReference { field: "parent" })
        );
    }

    #[test]
    fn tree_refuses_cycles() {
        let mut a = unit(OrgUnitKind::Other, None);
        let b = unit(OrgUnitKind::Other, Some(&a));
        let c = unit(OrgUnitKind::Other, Some(&b));
        a.parent = Some(c.id);
        assert_eq!(OrgTree::new([a, b, c]).err(), Some(DomainError::OrgCycle));
    }

    #[test]
    fn tree_refuses_duplicate_ids_and_invalid_units() {
        let s = sample();
        let mut units = s.units();
        units.push(s.team.clone());
        assert_eq!(
            OrgTree::new(units).err(),
            Some(DomainError::Duplicate { field: "id" })
        );
        let mut units = s.units();
        units[0].name = String::new();
        assert_eq!(
            OrgTree::new(units).err(),
            Some(DomainError::Required { field: "name" })
        );
    }

    #[test]
    fn tree_refuses_misplaced_kinds() {
        let province = unit(OrgUnitKind::Province, None);
        let commune = unit(OrgUnitKind::Commune, Some(&province));
        let other = unit(OrgUnitKind::Other, Some(&commune));
        let placed = |kind, parent: &OrgUnit| {
            let u = unit(kind, Some(parent));
            OrgTree::new([province.clone(), commune.clone(), other.clone(), u]).err()
        };
        let misplaced = |kind: OrgUnitKind| Some(DomainError::OrgPlacement { kind: kind.code() });
        // Fine: a team or point below a commune, even through an `other` unit.
        assert_eq!(placed(OrgUnitKind::Team, &other), None);
        assert_eq!(placed(OrgUnitKind::CommunityPoint, &commune), None);
        assert_eq!(placed(OrgUnitKind::Other, &commune), None);
        // A team or point with no commune above it.
        assert_eq!(
            placed(OrgUnitKind::Team, &province),
            misplaced(OrgUnitKind::Team)
        );
        // Nested same or broader kinds.
        assert_eq!(
            placed(OrgUnitKind::Commune, &other),
            misplaced(OrgUnitKind::Commune)
        );
        assert_eq!(
            placed(OrgUnitKind::Province, &province),
            misplaced(OrgUnitKind::Province)
        );
        let team = unit(OrgUnitKind::Team, Some(&commune));
        let under_team = unit(OrgUnitKind::CommunityPoint, Some(&team));
        assert_eq!(
            OrgTree::new([province.clone(), commune.clone(), team, under_team]).err(),
            misplaced(OrgUnitKind::CommunityPoint)
        );
        // A root commune with its team is a valid (single-commune) deployment.
        let lone = unit(OrgUnitKind::Commune, None);
        let lone_team = unit(OrgUnitKind::Team, Some(&lone));
        assert!(OrgTree::new([lone, lone_team]).is_ok());
    }

    // ---- Role ----

    #[test]
    fn roles_have_stable_codes_and_case_visibility() {
        let codes: Vec<&str> = Role::ALL.iter().map(|r| r.code()).collect();
        assert_eq!(
            codes,
            ["volunteer", "counsellor", "supervisor", "officer", "admin"]
        );
        for role in Role::ALL {
            assert_eq!(Role::from_code(role.code()), Some(*role));
            round_trip(role);
        }
        assert!(Role::Volunteer.sees_case_content());
        assert!(Role::Counsellor.sees_case_content());
        assert!(Role::Supervisor.sees_case_content());
        assert!(!Role::Officer.sees_case_content());
        assert!(!Role::Admin.sees_case_content());
        assert_eq!(
            serde_json::to_string(&Role::Counsellor).unwrap(),
            "\"counsellor\""
        );
    }

    // ---- User ----

    fn user(role: Role) -> User {
        User::new("hoa.le", "Lê Thị Hoa", role, Id::new())
    }

    #[test]
    fn usernames_accept_the_documented_set() {
        for name in ["abc", "hoa.le", "tnv_01", "a-b", "0.9", &"a".repeat(64)] {
            let mut u = user(Role::Volunteer);
            u.username = name.to_owned();
            assert_eq!(u.validate(), Ok(()), "{name}");
        }
    }

    #[test]
    fn usernames_are_refused_never_normalised() {
        let mut u = user(Role::Volunteer);
        u.username = String::new();
        assert_eq!(
            u.validate(),
            Err(DomainError::Required { field: "username" })
        );
        u.username = "   ".into();
        assert_eq!(
            u.validate(),
            Err(DomainError::Required { field: "username" })
        );
        for name in [
            "ab",
            &"a".repeat(65),
            "Hoa.le",
            " hoa",
            "hoa ",
            "hoa le",
            "hòa",
            "hoa@x",
            "hoa+1",
            "hoa\n",
            "ÀBC",
            "ｈｏａ",
        ] {
            u.username = name.to_owned();
            assert!(
                matches!(
                    u.validate(),
                    Err(DomainError::InvalidFormat {
                        field: "username",
                        ..
                    })
                ),
                "{name:?}"
            );
            assert_eq!(u.username, name, "nothing is rewritten");
        }
    }

    #[test]
    fn display_name_is_required_and_redacted() {
        let mut u = user(Role::Supervisor);
        let debug = format!("{u:?}");
        assert!(!debug.contains("Hoa") && !debug.contains("Lê"), "{debug}");
        assert!(debug.contains("hoa.le") && debug.contains("Supervisor"));
        u.display_name = " ".into();
        assert_eq!(
            u.validate(),
            Err(DomainError::Required {
                field: "display_name"
            })
        );
        u.display_name = "a".repeat(NAME_MAX + 1);
        assert_eq!(
            u.validate(),
            Err(DomainError::TooLong {
                field: "display_name",
                max: NAME_MAX
            })
        );
        u.display_name = "Lê\tHoa".into();
        assert!(matches!(
            u.validate(),
            Err(DomainError::InvalidFormat {
                field: "display_name",
                ..
            })
        ));
    }

    #[test]
    fn only_counsellors_have_a_point() {
        for role in Role::ALL {
            let mut u = user(*role);
            assert_eq!(u.validate(), Ok(()), "{role} without a point");
            u.point = Some(Id::new());
            let expected = if *role == Role::Counsellor {
                Ok(())
            } else {
                Err(DomainError::NotApplicable { field: "point" })
            };
            assert_eq!(u.validate(), expected, "{role}");
        }
    }

    #[test]
    fn user_references_are_checked_against_the_tree() {
        let s = sample();
        let tree = s.tree();
        let mut u = User::new("tvv.01", "Nguyễn Văn A", Role::Counsellor, s.commune.id);
        assert_eq!(u.check_against(&tree), Ok(()));
        u.point = Some(s.point.id);
        assert_eq!(u.check_against(&tree), Ok(()));
        u.point = Some(s.team.id);
        assert_eq!(
            u.check_against(&tree),
            Err(DomainError::WrongKind {
                field: "point",
                expected: "a community point"
            })
        );
        u.point = Some(Id::new());
        assert_eq!(
            u.check_against(&tree),
            Err(DomainError::UnknownReference { field: "point" })
        );
        u.point = None;
        u.org_unit = Id::new();
        assert_eq!(
            u.check_against(&tree),
            Err(DomainError::UnknownReference { field: "org_unit" })
        );
    }

    #[test]
    fn user_round_trips_and_point_defaults_to_none() {
        let mut u = user(Role::Counsellor);
        round_trip(&u);
        u.point = Some(Id::new());
        round_trip(&u);
        let json = format!(
            r#"{{"id":"{}","username":"abc","display_name":"A","role":"officer","org_unit":"{}"}}"#,
            u.id, u.org_unit
        );
        let back: User = serde_json::from_str(&json).unwrap();
        assert_eq!(back.point, None);
        assert_eq!(back.role, Role::Officer);
    }

    // ---- Device ----

    #[test]
    fn device_is_revoked_once_and_not_before_enrolment() {
        let enrolled = t("2026-03-01T02:00:00Z");
        let mut dev = Device::new(Id::new(), "Điện thoại của chị Hoa", enrolled);
        assert_eq!(dev.validate(), Ok(()));
        assert!(!dev.is_revoked());
        assert_eq!(dev.state(), "active");
        assert_eq!(
            dev.revoke(t("2026-02-28T23:59:59Z")),
            Err(DomainError::DateOrder {
                earlier: "enrolled_at",
                later: "revoked_at"
            })
        );
        assert!(!dev.is_revoked(), "nothing changes on error");
        dev.revoke(enrolled).unwrap();
        assert!(dev.is_revoked());
        assert_eq!(dev.state(), "revoked");
        assert_eq!(dev.validate(), Ok(()));
        assert_eq!(
            dev.revoke(t("2026-03-05T00:00:00Z")),
            Err(DomainError::InvalidTransition {
                from: "revoked",
                to: "revoked"
            })
        );
        assert_eq!(dev.revoked_at, Some(enrolled), "the first revocation stays");
        round_trip(&dev);
    }

    #[test]
    fn device_validation() {
        let enrolled = t("2026-03-01T02:00:00Z");
        let mut dev = Device::new(Id::new(), " ", enrolled);
        assert_eq!(
            dev.validate(),
            Err(DomainError::Required { field: "label" })
        );
        dev.label = "a".repeat(NAME_MAX + 1);
        assert_eq!(
            dev.validate(),
            Err(DomainError::TooLong {
                field: "label",
                max: NAME_MAX
            })
        );
        dev.label = "Máy\u{7}".into();
        assert!(matches!(
            dev.validate(),
            Err(DomainError::InvalidFormat { field: "label", .. })
        ));
        dev.label = "Máy của Hoa".into();
        dev.revoked_at = Some(t("2026-02-01T00:00:00Z"));
        assert_eq!(
            dev.validate(),
            Err(DomainError::DateOrder {
                earlier: "enrolled_at",
                later: "revoked_at"
            })
        );
        let debug = format!("{dev:?}");
        assert!(!debug.contains("Hoa"), "{debug}");
        assert!(debug.contains("revoked_at"));
    }

    #[test]
    fn device_round_trips_and_revoked_at_defaults_to_none() {
        let dev = Device::new(Id::new(), "Máy 1", t("2026-03-01T02:00:00Z"));
        round_trip(&dev);
        let json = format!(
            r#"{{"id":"{}","user":"{}","label":"x","enrolled_at":"2026-03-01T02:00:00Z"}}"#,
            dev.id, dev.user
        );
        let back: Device = serde_json::from_str(&json).unwrap();
        assert!(!back.is_revoked());
    }

    // ---- errors ----

    #[test]
    fn new_errors_name_no_values_and_read_in_vietnamese() {
        assert_eq!(
            DomainError::OrgCycle.to_string(),
            "the org unit tree has a cycle"
        );
        assert_eq!(
            DomainError::UnknownReference { field: "parent" }.to_string(),
            "parent refers to a record that is not known"
        );
        assert_eq!(
            DomainError::UnknownReference { field: "parent" }.message_vi(),
            "đơn vị cấp trên trỏ tới một bản ghi không tồn tại"
        );
        assert_eq!(
            DomainError::Required { field: "username" }.message_vi(),
            "cần nhập tên đăng nhập"
        );
        assert!(
            DomainError::OrgPlacement { kind: "team" }
                .to_string()
                .contains("team")
        );
        assert!(!DomainError::OrgCycle.message_vi().is_empty());
        assert!(
            DomainError::WrongKind {
                field: "point",
                expected: "a community point"
            }
            .message_vi()
            .starts_with("điểm tư vấn cộng đồng")
        );
        let mut u = user(Role::Volunteer);
        u.username = "Lê Hoa".into();
        let message = u.validate().unwrap_err().to_string();
        assert!(message.contains("username") && !message.contains("Hoa"));
    }

    // ---- properties ----

    fn id_of(i: usize) -> Id {
        Id::from(Uuid::from_u128(u128::try_from(i).unwrap() + 1))
    }

    /// A random forest of `other` units: unit `i`'s parent is one of `0..i` or none, given in a
    /// shuffled order so the tree cannot rely on parents coming first.
    fn forest() -> impl Strategy<Value = (Vec<Option<usize>>, Vec<OrgUnit>)> {
        (1usize..40)
            .prop_flat_map(|n| {
                (0..n)
                    .map(|i| {
                        if i == 0 {
                            Just(None).boxed()
                        } else {
                            prop::option::weighted(0.85, 0..i).boxed()
                        }
                    })
                    .collect::<Vec<_>>()
            })
            .prop_flat_map(|parents| {
                let units: Vec<OrgUnit> = parents
                    .iter()
                    .enumerate()
                    .map(|(i, p)| OrgUnit {
                        id: id_of(i),
                        name: format!("u{i}"),
                        kind: OrgUnitKind::Other,
                        parent: p.map(id_of),
                    })
                    .collect();
                (Just(parents), Just(units).prop_shuffle())
            })
    }

    /// Ancestors-or-self by brute force on the parent array.
    fn ancestors_or_self(parents: &[Option<usize>], mut i: usize) -> BTreeSet<usize> {
        let mut out = BTreeSet::from([i]);
        while let Some(p) = parents[i] {
            out.insert(p);
            i = p;
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn is_within_and_subtree_match_ancestors((parents, units) in forest()) {
            let tree = OrgTree::new(units).unwrap();
            let n = parents.len();
            for a in 0..n {
                let model = ancestors_or_self(&parents, a);
                let mut from_tree: BTreeSet<Id> = tree.ancestors(id_of(a)).into_iter().collect();
                prop_assert!(!from_tree.contains(&id_of(a)));
                from_tree.insert(id_of(a));
                let model_ids: BTreeSet<Id> = model.iter().map(|&i| id_of(i)).collect();
                prop_assert_eq!(&from_tree, &model_ids);
                for b in 0..n {
                    prop_assert_eq!(tree.is_within(id_of(a), id_of(b)), model.contains(&b));
                }
            }
            for b in 0..n {
                let sub = tree.subtree(id_of(b));
                let set: BTreeSet<Id> = sub.iter().copied().collect();
                prop_assert_eq!(set.len(), sub.len(), "no repeats");
                let expected: BTreeSet<Id> = (0..n)
                    .filter(|&a| ancestors_or_self(&parents, a).contains(&b))
                    .map(id_of)
                    .collect();
                prop_assert_eq!(&set, &expected);
                prop_assert_eq!(sub.first().copied(), Some(id_of(b)));
            }
        }

        #[test]
        fn any_parent_function_is_accepted_iff_acyclic(
            parents in (1usize..12).prop_flat_map(|n| {
                prop::collection::vec(prop::option::of(0..n), n)
            })
        ) {
            let units: Vec<OrgUnit> = parents
                .iter()
                .enumerate()
                .map(|(i, p)| OrgUnit {
                    id: id_of(i),
                    name: format!("u{i}"),
                    kind: OrgUnitKind::Other,
                    parent: p.map(id_of),
                })
                .collect();
            // Brute force: a walk of more than n steps must revisit a unit.
            let acyclic = (0..parents.len()).all(|start| {
                let mut current = Some(start);
                let mut steps = 0;
                while let Some(i) = current {
                    steps += 1;
                    if steps > parents.len() {
                        return false;
                    }
                    current = parents[i];
                }
                true
            });
            let built = OrgTree::new(units);
            if acyclic {
                prop_assert!(built.is_ok());
            } else {
                prop_assert_eq!(built.err(), Some(DomainError::OrgCycle));
            }
        }
    }
}
