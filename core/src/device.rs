//! [`Device`]: the one entry point of the core (STYLE.md point 1).
//!
//! A device is a data directory holding the encrypted store (`device.db`). Opening it unlocks
//! the store with the platform key store and the PIN; dropping it locks it (keys are zeroised).
//! Every operation validates its input with the domain rules before anything is written, and
//! writes the change and its outbox mutation in one transaction.

#[cfg(feature = "sync")]
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chrono::{Duration, NaiveDate, Utc};

use crate::domain::{
    Assignment, Attendance, AttendanceStatus, Attendee, DomainError, DrugTest, Episode,
    EpisodeStatus, FollowUpTask, Id, Person, Record, RecordKind, Referral, ReferralStatus,
    RelapseEvent, Session, SupervisionNote, SupportBenefit, TerminationReason, ValidationContext,
    Visit, vn_date,
};
use crate::keystore::KeyStore;
use crate::store::{CaseloadEntry, CreateOptions, Store};
use crate::{Error, Result};

/// The `state` code of an active episode (clear column).
const ACTIVE_EPISODE: &str = "active";

/// File name of the store inside a device's data directory.
pub const STORE_FILE: &str = "device.db";

/// An unlocked field device.
#[derive(Debug)]
pub struct Device {
    dir: PathBuf,
    store: Store,
}

impl Device {
    /// The store's path inside a data directory.
    #[must_use]
    pub fn store_path(dir: &Path) -> PathBuf {
        dir.join(STORE_FILE)
    }

    /// Creates a new device store in `dir` (created if missing).
    pub fn init(dir: &Path, keystore: &dyn KeyStore, pin: &str) -> Result<Device> {
        Self::init_with(dir, keystore, pin, CreateOptions::default())
    }

    /// [`Device::init`] with explicit store options.
    pub fn init_with(
        dir: &Path,
        keystore: &dyn KeyStore,
        pin: &str,
        options: CreateOptions,
    ) -> Result<Device> {
        std::fs::create_dir_all(dir)?;
        let store = Store::create(&Self::store_path(dir), keystore, pin, options)?;
        Ok(Device {
            dir: dir.to_owned(),
            store,
        })
    }

    /// Opens and unlocks the device store in `dir`. An enrolled device whose key lease has
    /// run out (no successful sync for longer than the server allows) is wiped here and
    /// answers [`Error::LeaseExpired`]: a phone lost while offline loses its data on its own.
    pub fn open(dir: &Path, keystore: &dyn KeyStore, pin: &str) -> Result<Device> {
        let store = Store::open(&Self::store_path(dir), keystore, pin)?;
        let now = Utc::now().timestamp().max(0).unsigned_abs();
        if store
            .read(|r| r.lease_until())?
            .is_some_and(|until| now > until)
        {
            store.write(|w| w.wipe())?;
            store.checkpoint()?;
            return Err(Error::LeaseExpired);
        }
        Ok(Device {
            dir: dir.to_owned(),
            store,
        })
    }

    /// The data directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The underlying store (for sync and tests).
    #[must_use]
    pub fn store(&self) -> &Store {
        &self.store
    }

    fn insert<R: Record>(&self, record: &R) -> Result<Id> {
        let ctx = ValidationContext::now();
        self.store.write(|w| w.insert(record, &ctx))?;
        Ok(record.id())
    }

    /// Records a new person. Returns their id.
    pub fn add_person(&self, person: &Person) -> Result<Id> {
        self.insert(person)
    }

    /// A person by id.
    pub fn person(&self, id: Id) -> Result<Person> {
        self.store.read(|r| r.require(id))
    }

    /// Everyone this device holds, by folded name.
    pub fn people(&self) -> Result<Vec<Person>> {
        let mut people: Vec<Person> = self.store.read(|r| r.all())?;
        people.sort_by_cached_key(|p| crate::search::fold(&p.full_name));
        Ok(people)
    }

    /// People whose name matches `query`, ignoring case and Vietnamese diacritics.
    pub fn find_people(&self, query: &str) -> Result<Vec<Person>> {
        self.store.read(|r| r.search_people(query))
    }

    /// Opens an episode (management file) for a person who exists on this device.
    pub fn add_episode(&self, episode: &Episode) -> Result<Id> {
        let ctx = ValidationContext::now();
        self.store.write(|w| {
            w.reader()
                .require_exists(RecordKind::Person, episode.person)?;
            w.insert(episode, &ctx)
        })?;
        Ok(episode.id)
    }

    /// A person's episodes, oldest first.
    pub fn episodes(&self, person: Id) -> Result<Vec<Episode>> {
        self.store.read(|r| r.by_subject(person))
    }

    /// Records a visit to a person held on this device. If the visit names no episode, it is
    /// attached to the person's active episode when there is one.
    pub fn add_visit(&self, visit: &Visit) -> Result<Id> {
        let ctx = ValidationContext::now();
        let mut visit = visit.clone();
        self.store.write(|w| {
            w.reader()
                .require_exists(RecordKind::Person, visit.person)?;
            if visit.episode.is_none() {
                let active: Vec<Episode> =
                    w.reader().by_subject_state(visit.person, ACTIVE_EPISODE)?;
                visit.episode = active.iter().rev().find(|e| e.is_active()).map(|e| e.id);
            }
            w.insert(&visit, &ctx)
        })?;
        Ok(visit.id)
    }

    /// Moves a stored record through a status change: read, change, validate and write back
    /// (with its outbox mutation) in one transaction. A refused change writes nothing.
    fn change<R: Record>(
        &self,
        id: Id,
        f: impl FnOnce(&mut R, &ValidationContext) -> std::result::Result<(), DomainError>,
    ) -> Result<R> {
        let ctx = ValidationContext::now();
        self.store.write(|w| {
            let mut record: R = w.reader().require(id)?;
            f(&mut record, &ctx)?;
            w.update(&record, &ctx)?;
            Ok(record)
        })
    }

    /// Proposes a draft episode: its file was opened and proposed to the chairman on `on`.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown episode; [`DomainError::InvalidTransition`] unless it
    /// is a draft; the episode's validation (a post-rehab episode must say what rehab came
    /// before; `on` not in the future nor before a completion report).
    pub fn propose_episode(&self, id: Id, on: NaiveDate) -> Result<Episode> {
        self.change(id, |e: &mut Episode, _| {
            e.transition(EpisodeStatus::Proposed)?;
            e.file_opened_on = Some(on);
            Ok(())
        })
    }

    /// Activates a proposed episode: the chairman's decision of `on` puts the person under
    /// management.
    ///
    /// # Errors
    /// As [`Device::propose_episode`], unless it is proposed; `on` not before the file opened.
    pub fn activate_episode(&self, id: Id, on: NaiveDate) -> Result<Episode> {
        self.change(id, |e: &mut Episode, _| {
            e.transition(EpisodeStatus::Active)?;
            e.decision_date = Some(on);
            Ok(())
        })
    }

    /// Completes an active episode on `on` (the term was served).
    ///
    /// # Errors
    /// [`Error::NotFound`]; [`DomainError::InvalidTransition`] unless active;
    /// [`DomainError::DateOrder`] before its start; [`DomainError::InFuture`].
    pub fn complete_episode(&self, id: Id, on: NaiveDate) -> Result<Episode> {
        self.change(id, |e: &mut Episode, _| e.complete(on))
    }

    /// Ends an active episode early on `on` for `reason` (Decree 116/2021 Art. 81). A relapse
    /// is a legal determination: it goes through [`Device::record_relapse`].
    ///
    /// # Errors
    /// As [`Device::complete_episode`]; [`DomainError::RelapseWithoutAuthority`] for
    /// [`TerminationReason::Relapse`].
    pub fn terminate_episode(
        &self,
        id: Id,
        reason: TerminationReason,
        on: NaiveDate,
    ) -> Result<Episode> {
        self.change(id, |e: &mut Episode, _| e.terminate(reason, on))
    }

    /// Records a relapse determined during an active episode and ends the episode on the
    /// determination day, both in one transaction. `relapse.person` is taken from the episode.
    /// Returns the relapse record's id.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown episode; [`DomainError::MismatchedReference`] if the
    /// relapse names another episode; the relapse's validation (an authority, dates in order
    /// and not in the future); as [`Device::complete_episode`].
    pub fn record_relapse(&self, relapse: &RelapseEvent) -> Result<Id> {
        let ctx = ValidationContext::now();
        self.store.write(|w| {
            let mut episode: Episode = w.reader().require(relapse.episode)?;
            let mut relapse = relapse.clone();
            relapse.person = episode.person;
            relapse.validate(&ctx)?;
            episode.terminate_for_relapse(&relapse)?;
            w.insert(&relapse, &ctx)?;
            w.update(&episode, &ctx)?;
            Ok(relapse.id)
        })
    }

    /// A person's visits, oldest first.
    pub fn visits(&self, person: Id) -> Result<Vec<Visit>> {
        self.store.read(|r| {
            r.require_exists(RecordKind::Person, person)?;
            let mut visits: Vec<Visit> = r.by_subject(person)?;
            visits.sort_by_key(|v| v.at);
            Ok(visits)
        })
    }

    /// A person's drug tests, oldest first.
    pub fn drug_tests(&self, person: Id) -> Result<Vec<DrugTest>> {
        let mut tests: Vec<DrugTest> = self.by_person(person)?;
        tests.sort_by_key(|t| (t.at, t.id));
        Ok(tests)
    }

    /// Support given to a person, oldest first.
    pub fn support_benefits(&self, person: Id) -> Result<Vec<SupportBenefit>> {
        let mut rows: Vec<SupportBenefit> = self.by_person(person)?;
        rows.sort_by_key(|b| (b.on, b.id));
        Ok(rows)
    }

    /// A person's referrals, oldest first.
    pub fn referrals(&self, person: Id) -> Result<Vec<Referral>> {
        let mut rows: Vec<Referral> = self.by_person(person)?;
        rows.sort_by_key(|r| (r.sent_on, r.id));
        Ok(rows)
    }

    /// Records of a kind about a person held on this device ([`Error::NotFound`] otherwise).
    fn by_person<R: Record>(&self, person: Id) -> Result<Vec<R>> {
        self.store.read(|r| {
            r.require_exists(RecordKind::Person, person)?;
            r.by_subject(person)
        })
    }

    /// Moves a referral to `to` on `on` (`sent → accepted | declined`, `accepted → completed |
    /// declined`).
    ///
    /// # Errors
    /// [`Error::NotFound`]; [`DomainError::InvalidTransition`] for another change;
    /// [`DomainError::DateOrder`] before the day it was sent; [`DomainError::InFuture`].
    pub fn update_referral(&self, id: Id, to: ReferralStatus, on: NaiveDate) -> Result<Referral> {
        self.change(id, |r: &mut Referral, _| r.transition(to, on))
    }

    /// Adds a follow-up task about a person held on this device.
    pub fn add_task(&self, task: &FollowUpTask) -> Result<Id> {
        let ctx = ValidationContext::now();
        self.store.write(|w| {
            w.reader().require_exists(RecordKind::Person, task.person)?;
            w.insert(task, &ctx)
        })?;
        Ok(task.id)
    }

    /// Open tasks, earliest due first.
    pub fn open_tasks(&self) -> Result<Vec<FollowUpTask>> {
        self.store.read(|r| r.by_state("open"))
    }

    /// Marks a task done.
    pub fn complete_task(&self, id: Id) -> Result<()> {
        let ctx = ValidationContext::now();
        self.store.write(|w| {
            let mut task: FollowUpTask = w.reader().require(id)?;
            task.complete()?;
            w.update(&task, &ctx)
        })?;
        Ok(())
    }

    /// The caseload: everyone held, each with the next due task and the last visit, ordered by
    /// next due date (people without a task last), then by name.
    pub fn caseload(&self) -> Result<Vec<CaseloadEntry>> {
        let rows = self.store.read(|r| r.caseload())?;
        let mut entries: Vec<(String, CaseloadEntry)> = rows
            .into_iter()
            .map(|e| (crate::search::fold(&e.person.full_name), e))
            .collect();
        entries.sort_by(|(an, a), (bn, b)| {
            (a.next_due.is_none(), a.next_due, an).cmp(&(b.next_due.is_none(), b.next_due, bn))
        });
        Ok(entries.into_iter().map(|(_, e)| e).collect())
    }

    /// Number of local changes not yet pushed.
    pub fn pending_changes(&self) -> Result<usize> {
        Ok(self.store.read(|r| r.outbox())?.len())
    }

    /// Adds a record of any kind (validated, sealed, queued for sync).
    pub fn add_record<R: Record>(&self, record: &R) -> Result<Id> {
        self.insert(record)
    }

    /// Replaces a record (validated; only the changed fields are queued for sync).
    pub fn update_record<R: Record>(&self, record: &R) -> Result<()> {
        let ctx = ValidationContext::now();
        self.store.write(|w| w.update(record, &ctx))?;
        Ok(())
    }

    /// A record of any kind by id.
    pub fn record<R: Record>(&self, id: Id) -> Result<R> {
        self.store.read(|r| r.require(id))
    }

    /// Open tasks assigned to `user`, earliest due first.
    pub fn tasks_for(&self, user: Id) -> Result<Vec<FollowUpTask>> {
        let mut tasks: Vec<FollowUpTask> = self
            .open_tasks()?
            .into_iter()
            .filter(|t| t.assignee == Some(user))
            .collect();
        tasks.sort_by_key(|t| (t.due, t.id));
        Ok(tasks)
    }

    /// Plans a session at a community point (the counsellor's). Returns its id.
    pub fn add_session(&self, session: &Session) -> Result<Id> {
        self.insert(session)
    }

    /// Sessions held on this device, most recent first.
    pub fn sessions(&self) -> Result<Vec<Session>> {
        let mut sessions: Vec<Session> = self.store.read(|r| r.all())?;
        sessions.sort_by_key(|s| std::cmp::Reverse(s.at));
        Ok(sessions)
    }

    /// Marks a planned session held (it must have started).
    ///
    /// # Errors
    /// [`Error::NotFound`]; [`DomainError::SessionNotHeld`] before its start;
    /// [`DomainError::InvalidTransition`] unless planned.
    pub fn hold_session(&self, id: Id) -> Result<Session> {
        self.change(id, |s: &mut Session, ctx| s.hold(ctx))
    }

    /// Cancels a planned session (no attendance can be marked on it afterwards).
    ///
    /// # Errors
    /// [`Error::NotFound`]; [`DomainError::InvalidTransition`] unless planned.
    pub fn cancel_session(&self, id: Id) -> Result<Session> {
        self.change(id, |s: &mut Session, _| s.cancel())
    }

    /// Attendance rows of a session.
    pub fn attendance(&self, session: Id) -> Result<Vec<Attendance>> {
        let rows: Vec<Attendance> = self.store.read(|r| {
            r.require_exists(RecordKind::Session, session)?;
            r.all()
        })?;
        Ok(rows.into_iter().filter(|a| a.session == session).collect())
    }

    /// Marks who attended a session held on this device: a person (once per session) or a
    /// count of walk-ins. Returns the attendance row's id.
    pub fn mark_attendance(
        &self,
        session: Id,
        attendee: Attendee,
        status: AttendanceStatus,
    ) -> Result<Id> {
        let ctx = ValidationContext::now();
        let id = self.store.write(|w| {
            let held: Session = w.reader().require(session)?;
            let row = match attendee {
                Attendee::Person(person) => Attendance::for_person(&held, person, status),
                Attendee::WalkIns(count) => Attendance::walk_ins(&held, count),
            };
            row.check_session(&held)?;
            if let Attendee::Person(person) = attendee {
                let marked: Vec<Attendance> = w.reader().by_subject(person)?;
                if marked.iter().any(|a| a.session == session) {
                    return Err(Error::AlreadyExists {
                        kind: RecordKind::Attendance.code(),
                    });
                }
            }
            w.insert(&row, &ctx)?;
            Ok(row.id)
        })?;
        Ok(id)
    }

    /// Records a supervision note (a supervisor's review of a volunteer). Returns its id.
    pub fn add_supervision_note(&self, note: &SupervisionNote) -> Result<Id> {
        self.insert(note)
    }

    /// Assigns a person held on this device to `helper` from today, by `by`: the active
    /// assignment of the person's current episode (the active one, else the newest not yet
    /// ended) ends yesterday (or, if it began today, simply
    /// changes helper) and a new one begins. The server then moves the case's scope from the
    /// old helper's devices to the new one's. Returns the id of the assignment now active.
    pub fn assign_case(&self, person: Id, helper: Id, by: Id) -> Result<Id> {
        let ctx = ValidationContext::now();
        let today = vn_date(Utc::now());
        self.store.write(|w| {
            w.reader().require_exists(RecordKind::Person, person)?;
            // The episode under management, or else the newest one still being prepared.
            let mut episodes: Vec<Episode> = w.reader().by_subject(person)?;
            episodes.retain(|e| !e.is_final());
            episodes.sort_by_key(|e| (e.is_active(), e.start));
            let episode = episodes.last().ok_or(Error::NotFound {
                kind: RecordKind::Episode.code(),
            })?;
            let assignments: Vec<Assignment> = w.reader().by_subject(person)?;
            let current: Vec<&Assignment> = assignments
                .iter()
                .filter(|a| a.episode == episode.id && a.is_active_on(today))
                .collect();
            if current.iter().any(|a| a.helper == Some(helper)) && current.len() == 1 {
                return Ok(current[0].id);
            }
            for old in &current {
                let mut old = (*old).clone();
                if old.from < today {
                    old.to = Some(today - Duration::days(1));
                } else {
                    // Began today: the same assignment changes hands.
                    old.helper = Some(helper);
                    old.assigned_by = Some(by);
                    w.update(&old, &ctx)?;
                    return Ok(old.id);
                }
                w.update(&old, &ctx)?;
            }
            let mut new = Assignment::new(person, episode.id, helper, today);
            new.assigned_by = Some(by);
            w.insert(&new, &ctx)?;
            Ok(new.id)
        })
    }
}

#[cfg(feature = "sync")]
impl Device {
    /// Creates a device store in `dir` and enrols it with a server: the user's login gives the
    /// device its own id and tokens. If the server refuses, no store is left behind.
    pub fn enroll(
        dir: &Path,
        keystore: &dyn KeyStore,
        pin: &str,
        server: &str,
        username: &str,
        password: &str,
        label: &str,
    ) -> Result<Device> {
        let login = crate::sync::client::Login {
            server,
            username,
            password,
            label,
        };
        let net = crate::sync::client::Http::new()?;
        Self::enroll_via(dir, keystore, pin, CreateOptions::default(), &net, &login)
    }

    /// [`Device::enroll`] with explicit store options, over the given transport (the
    /// simulation's in-process server, for one).
    pub fn enroll_via(
        dir: &Path,
        keystore: &dyn KeyStore,
        pin: &str,
        options: CreateOptions,
        net: &dyn crate::sync::client::Transport,
        login: &crate::sync::client::Login<'_>,
    ) -> Result<Device> {
        if Self::store_path(dir).exists() {
            return Err(crate::Error::AlreadyInitialised(Self::store_path(dir)));
        }
        let creds = crate::sync::client::enroll(
            net,
            login.server,
            login.username,
            login.password,
            login.label,
        )?;
        let device = Self::init_with(dir, keystore, pin, options)?;
        crate::sync::client::keep_credentials(&device.store, &creds)?;
        Ok(device)
    }

    /// This device's id and its user's id, once enrolled.
    pub fn enrollment(&self) -> Result<Option<(uuid::Uuid, uuid::Uuid)>> {
        let Some(raw) = self.store.read(|r| r.credentials())? else {
            return Ok(None);
        };
        let creds: crate::sync::client::Credentials =
            serde_json::from_slice(&raw).map_err(|_| crate::Error::CorruptKeys)?;
        Ok(Some((creds.device_id, creds.user_id)))
    }

    /// One sync round: push the outbox, pull what changed, bootstrap granted scopes, purge
    /// revoked ones. A revoked device is wiped and answers [`crate::Error::DeviceRevoked`].
    pub fn sync(&self) -> Result<crate::sync::client::SyncReport> {
        self.sync_with(&crate::sync::client::NoListener)
    }

    /// [`Device::sync`], telling `listener` how it goes.
    pub fn sync_with(
        &self,
        listener: &dyn crate::sync::client::SyncListener,
    ) -> Result<crate::sync::client::SyncReport> {
        let net = crate::sync::client::Http::new()?;
        crate::sync::client::sync(&self.store, &net, listener)
    }

    /// [`Device::sync_with`] over the given transport.
    pub fn sync_via(
        &self,
        net: &dyn crate::sync::client::Transport,
        listener: &dyn crate::sync::client::SyncListener,
    ) -> Result<crate::sync::client::SyncReport> {
        crate::sync::client::sync(&self.store, net, listener)
    }

    /// The enrolled user's role, once enrolled (`None` also for a stored role this build does
    /// not know).
    pub fn role(&self) -> Result<Option<donghanh_protocol::Role>> {
        let Some(raw) = self.store.read(|r| r.credentials())? else {
            return Ok(None);
        };
        let creds: crate::sync::client::Credentials =
            serde_json::from_slice(&raw).map_err(|_| crate::Error::CorruptKeys)?;
        Ok(serde_json::from_value(serde_json::Value::String(creds.role)).ok())
    }

    /// The enrolled user's id.
    pub fn user_id(&self) -> Result<Id> {
        self.enrollment()?
            .map(|(_, user)| Id::from(user))
            .ok_or(Error::NotEnrolled)
    }

    /// The open conflicts in this supervisor's cases, oldest first: fields changed on two
    /// sides, with the value kept and the one that lost. Online (asks the server); the values
    /// are shown to the supervisor and never logged. A user of another role gets
    /// [`Error::SupervisorOnly`].
    pub fn conflicts(&self) -> Result<Vec<crate::sync::client::Conflict>> {
        let net = crate::sync::client::Http::new()?;
        crate::sync::client::conflicts(&self.store, &net)
    }

    /// Resolves an open conflict: `restore` puts the losing value back (a new change on the
    /// server that devices receive at their next sync), otherwise the current value stays.
    /// Online. [`Error::NotFound`] (kind `conflict`) for a conflict that is not open in this
    /// supervisor's cases; [`Error::SupervisorOnly`] for another role.
    pub fn resolve_conflict(&self, id: uuid::Uuid, restore: bool) -> Result<()> {
        let net = crate::sync::client::Http::new()?;
        crate::sync::client::resolve_conflict(&self.store, &net, id, restore)
    }

    /// [`Device::conflicts`] over the given transport.
    pub fn conflicts_via(
        &self,
        net: &dyn crate::sync::client::Transport,
    ) -> Result<Vec<crate::sync::client::Conflict>> {
        crate::sync::client::conflicts(&self.store, net)
    }

    /// [`Device::resolve_conflict`] over the given transport.
    pub fn resolve_conflict_via(
        &self,
        net: &dyn crate::sync::client::Transport,
        id: uuid::Uuid,
        restore: bool,
    ) -> Result<()> {
        crate::sync::client::resolve_conflict(&self.store, net, id, restore)
    }

    /// The staff directory last downloaded by a sync, by username: a supervisor's colleagues;
    /// for a counsellor, their own entry (with their community point).
    pub fn directory(&self) -> Result<Vec<donghanh_protocol::DirectoryEntry>> {
        let Some(raw) = self.store.read(|r| r.directory())? else {
            return Ok(Vec::new());
        };
        serde_json::from_slice(&raw).map_err(|_| Error::CorruptKeys)
    }

    /// A colleague by username, from the directory ([`Error::UnknownUser`] if unknown: sync
    /// first, or the user is not in this supervisor's commune).
    pub fn colleague(&self, username: &str) -> Result<donghanh_protocol::DirectoryEntry> {
        self.directory()?
            .into_iter()
            .find(|e| e.username == username)
            .ok_or(Error::UnknownUser)
    }

    /// The report facts of every record this device holds (the same projection the server
    /// keeps), and the commune of each community point (the supervisor's own).
    fn report_facts(&self) -> Result<crate::report::FactSet> {
        use crate::domain::{
            AnyRecord, Attendance, Calendar, DrugTest, Episode, LegalParams, Referral,
            RelapseEvent, Session, SupportBenefit, Transfer,
        };
        let (calendar, params) = (Calendar::embedded(), LegalParams::embedded());
        let records: Vec<AnyRecord> = self.store.read(|r| {
            let mut out: Vec<AnyRecord> = Vec::new();
            out.extend(r.all::<Person>()?.into_iter().map(AnyRecord::Person));
            out.extend(r.all::<Episode>()?.into_iter().map(AnyRecord::Episode));
            out.extend(r.all::<Visit>()?.into_iter().map(AnyRecord::Visit));
            out.extend(r.all::<DrugTest>()?.into_iter().map(AnyRecord::DrugTest));
            out.extend(
                r.all::<SupportBenefit>()?
                    .into_iter()
                    .map(AnyRecord::SupportBenefit),
            );
            out.extend(r.all::<Referral>()?.into_iter().map(AnyRecord::Referral));
            out.extend(
                r.all::<RelapseEvent>()?
                    .into_iter()
                    .map(AnyRecord::RelapseEvent),
            );
            out.extend(r.all::<Session>()?.into_iter().map(AnyRecord::Session));
            out.extend(
                r.all::<Attendance>()?
                    .into_iter()
                    .map(AnyRecord::Attendance),
            );
            out.extend(r.all::<Transfer>()?.into_iter().map(AnyRecord::Transfer));
            Ok(out)
        })?;
        let facts: Vec<crate::report::Fact> = records
            .iter()
            .flat_map(|r| crate::report::Fact::of(r, calendar, params))
            .collect();
        // Every point a supervisor's device holds is of the supervisor's commune.
        let user = self.user_id()?;
        let commune = self
            .directory()?
            .into_iter()
            .find(|e| Id::from(e.id) == user)
            .map(|e| Id::from(e.org_unit));
        let point_communes = commune
            .map(|c| {
                facts
                    .iter()
                    .filter_map(crate::report::Fact::point)
                    .map(|p| (p, c))
                    .collect()
            })
            .unwrap_or_default();
        Ok(crate::report::FactSet::new(facts, point_communes))
    }

    /// Computes a report template (`01-BCN` for the commune's month) for `period` from what
    /// this device holds, offline: the same definitions and code as the server's, so the same
    /// records give the same numbers. Only an enrolled supervisor's device computes it (a
    /// volunteer's phone holds a few cases, not the commune).
    ///
    /// # Errors
    /// [`Error::Report`] for an unknown template, a period of the wrong kind, or a device that
    /// is not a supervisor's; [`Error::NotEnrolled`]; storage errors.
    pub fn report(
        &self,
        template: &str,
        period: crate::report::Period,
    ) -> Result<crate::report::Report> {
        self.require_supervisor()?;
        let defs = crate::report::Definitions::embedded()?;
        Ok(self.report_facts()?.report(&defs, template, period)?)
    }

    /// The records behind one indicator's number for `period` (ids of records this device
    /// holds; for a ratio, its numerator's).
    ///
    /// # Errors
    /// As [`Device::report`], and [`crate::report::ReportError::UnknownIndicator`].
    pub fn report_records(
        &self,
        indicator: &str,
        period: crate::report::Period,
    ) -> Result<Vec<Id>> {
        self.require_supervisor()?;
        let defs = crate::report::Definitions::embedded()?;
        Ok(self.report_facts()?.explain(&defs, indicator, period)?)
    }

    /// The lines of a commune record book (Sổ 04-SCN or 05-SCN) as of `as_of`, from what this
    /// device holds. Books name people, so only a supervisor's device builds them, `purpose`
    /// (why the book is printed or exported: a note, required) is asked for, and every person
    /// listed gets an access-log entry (action `export`) that syncs to the server with the
    /// device's other changes, so a data-subject request shows who exported their file. The
    /// entries and the book come from the same read: nobody is listed without being logged.
    ///
    /// # Errors
    /// As [`Device::report`]; [`Error::Invalid`] for an empty or too long purpose.
    pub fn book(
        &self,
        kind: crate::report::books::BookKind,
        as_of: NaiveDate,
        purpose: &str,
    ) -> Result<Vec<crate::report::books::BookLine>> {
        use crate::domain::{AbsenceReport, AccessAction, AccessLog, Scope};
        self.require_supervisor()?;
        let user = self.user_id()?;
        let device = self.enrollment()?.map(|(d, _)| Id::from(d));
        let users: HashMap<Id, String> = self
            .directory()?
            .into_iter()
            .map(|e| (Id::from(e.id), e.display_name))
            .collect();
        let ctx = ValidationContext::now();
        let purpose = purpose.trim();
        if purpose.is_empty() {
            return Err(DomainError::Required { field: "purpose" }.into());
        }
        self.store.write(|w| {
            let (persons, episodes, assignments, absences, relapses) = {
                let r = w.reader();
                (
                    r.all::<Person>()?,
                    r.all::<Episode>()?,
                    r.all::<Assignment>()?,
                    r.all::<AbsenceReport>()?,
                    r.all::<RelapseEvent>()?,
                )
            };
            let src = crate::report::books::BookSource {
                persons: &persons,
                episodes: &episodes,
                assignments: &assignments,
                absences: &absences,
                relapses: &relapses,
                users,
            };
            let lines = crate::report::books::lines(kind, &src, as_of);
            let mut logged = std::collections::HashSet::new();
            for l in &lines {
                if logged.insert(l.person) {
                    let mut log = AccessLog::new(
                        user,
                        Scope::Person(l.person),
                        AccessAction::Export,
                        ctx.now,
                    );
                    log.record = Some(l.episode);
                    log.record_kind = Some(crate::domain::RecordKind::Episode);
                    log.device = device;
                    log.purpose = Some(purpose.to_owned());
                    w.insert(&log, &ctx)?;
                }
            }
            Ok(lines)
        })
    }

    fn require_supervisor(&self) -> Result<()> {
        let raw = self
            .store
            .read(|r| r.credentials())?
            .ok_or(Error::NotEnrolled)?;
        let creds: crate::sync::client::Credentials =
            serde_json::from_slice(&raw).map_err(|_| Error::CorruptKeys)?;
        if creds.role == "supervisor" {
            Ok(())
        } else {
            Err(crate::report::ReportError::NotSupervisor.into())
        }
    }
}
