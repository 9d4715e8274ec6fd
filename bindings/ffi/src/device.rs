//! [`Device`]: the core's entry point as one foreign object.
//!
//! A thin wrapper: parse the arguments (ids, days, times), call `donghanh_core::Device`, mirror
//! the answer. Every call blocks (the app runs it on a worker thread, never the main thread);
//! the object is shared across threads (`Arc`), and calls from several threads are safe: the
//! core store has one writer connection behind its own lock. `lock()` returns at once (it may
//! be called from a `SyncListener` callback, on the syncing thread): later calls answer
//! `Locked`, and the keys are zeroised when the calls already running finish.

use std::sync::{Arc, Mutex, PoisonError};

use donghanh_core::Device as CoreDevice;
use donghanh_core::domain::{
    self as d, Attendee, Episode as CoreEpisode, FollowUpTask, Id, SupervisionNote, vn_date,
};
use donghanh_core::sync::client::NoListener;

use crate::callbacks::{ForeignKeyStore, ForeignListener, KeyStore, SyncListener};
use crate::error::{DonghanhError, Result};
use crate::types::{
    Attendance, AttendanceStatus, BenefitKind, CaseloadEntry, Colleague, Conflict, DrugTest,
    Enrollment, Episode, EpisodeKind, NewDrugTest, NewPerson, NewVisit, Person, PriorRehab,
    Referral, ReferralStatus, ReferralTarget, RejectedChange, Report, Session, SessionKind,
    SupportBenefit, SyncReport, Task, TerminationReason, Visit, parse_day, parse_dir, parse_id,
    parse_instant,
};

/// Whether `dir` holds a device store (to choose between `Device.open` and create/enrol).
#[uniffi::export]
pub fn store_exists(dir: String) -> bool {
    parse_dir(&dir).is_ok_and(|dir| CoreDevice::store_path(&dir).exists())
}

/// An unlocked field device: the encrypted store in a data directory of the app.
#[derive(Debug, uniffi::Object)]
pub struct Device {
    /// `None` once locked. Each call holds its own `Arc` for its duration, so the mutex is
    /// held only to clone or clear it, never across a call or a callback.
    inner: Mutex<Option<Arc<CoreDevice>>>,
}

impl Device {
    fn wrap(device: CoreDevice) -> Arc<Self> {
        Arc::new(Device {
            inner: Mutex::new(Some(Arc::new(device))),
        })
    }

    /// Runs `f` on the unlocked core device.
    fn with<T>(&self, f: impl FnOnce(&CoreDevice) -> Result<T>) -> Result<T> {
        let device = self
            .inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or(DonghanhError::Locked)?;
        f(&device)
    }

    fn person_id(device: &CoreDevice, arg: &str, id: &str) -> Result<Id> {
        let id = parse_id(arg, id)?;
        device.person(id)?;
        Ok(id)
    }
}

fn text(s: &str) -> String {
    s.to_owned()
}

#[uniffi::export]
impl Device {
    /// Creates a new, unenrolled device store in `dir` (created if missing). `keystore` wraps
    /// its device secret; `pin` unlocks it from now on.
    #[uniffi::constructor]
    pub fn create(dir: String, keystore: Arc<dyn KeyStore>, pin: String) -> Result<Arc<Self>> {
        let dir = parse_dir(&dir)?;
        let ks = ForeignKeyStore(keystore);
        Ok(Self::wrap(CoreDevice::init(&dir, &ks, &pin)?))
    }

    /// Opens and unlocks the store in `dir`. A device whose key lease ran out is wiped here
    /// (`LeaseExpired`); a damaged file is moved aside, never deleted (`Corrupt`).
    #[uniffi::constructor]
    pub fn open(dir: String, keystore: Arc<dyn KeyStore>, pin: String) -> Result<Arc<Self>> {
        let dir = parse_dir(&dir)?;
        if !CoreDevice::store_path(&dir).exists() {
            return Err(DonghanhError::NoStore);
        }
        let ks = ForeignKeyStore(keystore);
        Ok(Self::wrap(CoreDevice::open(&dir, &ks, &pin)?))
    }

    /// Creates a store in `dir` and enrols it with `server` by the user's login. Nothing is
    /// left behind if the server refuses. `label` names the device for admins (no names).
    #[uniffi::constructor]
    pub fn enroll(
        dir: String,
        keystore: Arc<dyn KeyStore>,
        pin: String,
        server: String,
        username: String,
        password: String,
        label: String,
    ) -> Result<Arc<Self>> {
        let dir = parse_dir(&dir)?;
        let ks = ForeignKeyStore(keystore);
        Ok(Self::wrap(CoreDevice::enroll(
            &dir, &ks, &pin, &server, &username, &password, &label,
        )?))
    }

    /// Locks the device: every later call answers `Locked` (open it again with the PIN); the
    /// keys are zeroised as soon as the calls already running finish.
    pub fn lock(&self) {
        let device = self
            .inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        // Dropped here, outside the mutex: the last running call drops it otherwise.
        drop(device);
    }

    /// Whether `lock()` was called.
    pub fn is_locked(&self) -> bool {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_none()
    }

    // People and cases.

    /// Records a person; returns their id.
    pub fn add_person(&self, person: NewPerson) -> Result<String> {
        self.with(|dev| Ok(dev.add_person(&person.to_core()?)?.to_string()))
    }

    /// A person by id.
    pub fn person(&self, id: String) -> Result<Person> {
        self.with(|dev| Ok(dev.person(parse_id("id", &id)?)?.into()))
    }

    /// Everyone this device holds, by name.
    pub fn people(&self) -> Result<Vec<Person>> {
        self.with(|dev| Ok(dev.people()?.into_iter().map(Into::into).collect()))
    }

    /// People whose name matches `query`, ignoring case and Vietnamese diacritics.
    pub fn find_people(&self, query: String) -> Result<Vec<Person>> {
        self.with(|dev| {
            Ok(dev
                .find_people(&query)?
                .into_iter()
                .map(Into::into)
                .collect())
        })
    }

    /// Opens a management episode for a person from `start` (a day); `after` says what came
    /// before a post-rehab episode. Returns its id.
    pub fn add_episode(
        &self,
        person: String,
        kind: EpisodeKind,
        start: String,
        after: Option<PriorRehab>,
    ) -> Result<String> {
        self.with(|dev| {
            let mut episode = CoreEpisode::new(
                parse_id("person", &person)?,
                kind.into(),
                parse_day("start", &start)?,
            );
            if let Some(after) = after {
                episode = episode.with_after(after.into());
            }
            Ok(dev.add_episode(&episode)?.to_string())
        })
    }

    /// A person's episodes, oldest first, each with its planned end.
    pub fn episodes(&self, person: String) -> Result<Vec<Episode>> {
        self.with(|dev| {
            let id = Self::person_id(dev, "person", &person)?;
            let absences: Vec<d::AbsenceReport> = dev.store().read(|r| r.by_subject(id))?;
            Ok(dev
                .episodes(id)?
                .into_iter()
                .map(|e| Episode::with_absences(e, &absences))
                .collect())
        })
    }

    /// Proposes a draft episode: its file was opened and proposed on `on` (a day).
    /// `InvalidTransition` unless it is a draft; a post-rehab episode must say what came
    /// before (`after`).
    pub fn propose_episode(&self, id: String, on: String) -> Result<Episode> {
        self.with(|dev| {
            Ok(dev
                .propose_episode(parse_id("id", &id)?, parse_day("on", &on)?)?
                .into())
        })
    }

    /// Activates a proposed episode from the decision of `on` (a day): the person is under
    /// management. `InvalidTransition` unless it is proposed.
    pub fn activate_episode(&self, id: String, on: String) -> Result<Episode> {
        self.with(|dev| {
            Ok(dev
                .activate_episode(parse_id("id", &id)?, parse_day("on", &on)?)?
                .into())
        })
    }

    /// Completes an active episode on `on` (a day, not before its start nor in the future).
    /// `InvalidTransition` unless it is active.
    pub fn complete_episode(&self, id: String, on: String) -> Result<Episode> {
        self.with(|dev| {
            Ok(dev
                .complete_episode(parse_id("id", &id)?, parse_day("on", &on)?)?
                .into())
        })
    }

    /// Ends an active episode early on `on` (a day) for `reason`. `Relapse` is refused with
    /// `InvalidInput`: a relapse is recorded with `record_relapse`, which names the authority.
    pub fn terminate_episode(
        &self,
        id: String,
        reason: TerminationReason,
        on: String,
    ) -> Result<Episode> {
        self.with(|dev| {
            Ok(dev
                .terminate_episode(parse_id("id", &id)?, reason.into(), parse_day("on", &on)?)?
                .into())
        })
    }

    /// Records a relapse determined during an active episode (drug use detected on
    /// `detected_on`, addiction determined by `determined_by` on `determined_on`) and ends the
    /// episode on `determined_on`, in one step. Returns the relapse record's id.
    pub fn record_relapse(
        &self,
        episode: String,
        detected_on: String,
        determined_by: String,
        determined_on: String,
        note: Option<String>,
    ) -> Result<String> {
        self.with(|dev| {
            let episode = parse_id("episode", &episode)?;
            let detected_on = parse_day("detected_on", &detected_on)?;
            let determined_on = parse_day("determined_on", &determined_on)?;
            // The person is taken from the episode by the core.
            let mut relapse =
                d::RelapseEvent::new(episode, episode, detected_on, determined_by, determined_on);
            relapse.note = note;
            Ok(dev.record_relapse(&relapse)?.to_string())
        })
    }

    /// Everyone held with their next due task and last visit, most urgent first.
    pub fn caseload(&self) -> Result<Vec<CaseloadEntry>> {
        self.with(|dev| Ok(dev.caseload()?.into_iter().map(Into::into).collect()))
    }

    /// Assigns a person's case to a colleague (username from the directory) from today, as
    /// the enrolled supervisor; returns the assignment id.
    pub fn assign_case(&self, person: String, to_username: String) -> Result<String> {
        self.with(|dev| {
            let person = parse_id("person", &person)?;
            let me = dev.user_id()?;
            let helper = dev.colleague(&to_username)?;
            Ok(dev
                .assign_case(person, Id::from(helper.id), me)?
                .to_string())
        })
    }

    // Visits, drug tests, support, referrals.

    /// Records a visit; returns its id. It joins the person's active episode, if any.
    pub fn add_visit(&self, visit: NewVisit) -> Result<String> {
        self.with(|dev| {
            let mut v = d::Visit::new(
                parse_id("person", &visit.person)?,
                parse_instant("at", visit.at.as_deref())?,
                visit.notes.clone(),
            );
            v.mode = visit.mode.into();
            v.risk_signs = visit.risk_signs.iter().map(|&r| r.into()).collect();
            v.relapse_suspected = visit.relapse_suspected;
            v.services = visit.services.iter().map(|&s| s.into()).collect();
            v.next_visit_due = visit
                .next_visit_due
                .as_deref()
                .map(|due| parse_day("next_visit_due", due))
                .transpose()?;
            v.worker = dev.enrollment()?.map(|(_, user)| Id::from(user));
            Ok(dev.add_visit(&v)?.to_string())
        })
    }

    /// A person's visits, oldest first.
    pub fn visits(&self, person: String) -> Result<Vec<Visit>> {
        self.with(|dev| {
            let id = parse_id("person", &person)?;
            Ok(dev.visits(id)?.into_iter().map(Into::into).collect())
        })
    }

    /// Records a drug test; returns its id.
    pub fn add_drug_test(&self, test: NewDrugTest) -> Result<String> {
        self.with(|dev| {
            let person = Self::person_id(dev, "person", &test.person)?;
            let mut t = d::DrugTest::new(
                person,
                parse_instant("at", test.at.as_deref())?,
                test.kind.into(),
                test.method.into(),
                test.result.into(),
            );
            t.note.clone_from(&test.note);
            t.performed_by = dev.enrollment()?.map(|(_, user)| Id::from(user));
            Ok(dev.add_record(&t)?.to_string())
        })
    }

    /// A person's drug tests, oldest first.
    pub fn drug_tests(&self, person: String) -> Result<Vec<DrugTest>> {
        self.with(|dev| {
            let id = parse_id("person", &person)?;
            Ok(dev.drug_tests(id)?.into_iter().map(Into::into).collect())
        })
    }

    /// Records support given to a person (`amount_vnd` 0 for support in kind; `on` a day);
    /// returns its id.
    pub fn add_support_benefit(
        &self,
        person: String,
        kind: BenefitKind,
        amount_vnd: i64,
        on: String,
        note: Option<String>,
    ) -> Result<String> {
        self.with(|dev| {
            let person = Self::person_id(dev, "person", &person)?;
            let mut b =
                d::SupportBenefit::new(person, kind.into(), amount_vnd, parse_day("on", &on)?);
            b.note = note;
            Ok(dev.add_record(&b)?.to_string())
        })
    }

    /// Support given to a person, oldest first.
    pub fn support_benefits(&self, person: String) -> Result<Vec<SupportBenefit>> {
        self.with(|dev| {
            let id = parse_id("person", &person)?;
            Ok(dev
                .support_benefits(id)?
                .into_iter()
                .map(Into::into)
                .collect())
        })
    }

    /// Proposes a referral of a person to a service, sent on `sent_on` (a day); returns its id.
    pub fn add_referral(
        &self,
        person: String,
        to: ReferralTarget,
        sent_on: String,
        note: Option<String>,
    ) -> Result<String> {
        self.with(|dev| {
            let person = Self::person_id(dev, "person", &person)?;
            let mut r = d::Referral::new(person, to.into(), parse_day("sent_on", &sent_on)?);
            r.note = note;
            Ok(dev.add_record(&r)?.to_string())
        })
    }

    /// A person's referrals, oldest first.
    pub fn referrals(&self, person: String) -> Result<Vec<Referral>> {
        self.with(|dev| {
            let id = parse_id("person", &person)?;
            Ok(dev.referrals(id)?.into_iter().map(Into::into).collect())
        })
    }

    /// Moves a referral to `status` on `on` (a day): `Sent → Accepted | Declined`,
    /// `Accepted → Completed | Declined`; any other change is `InvalidTransition`.
    pub fn update_referral(
        &self,
        id: String,
        status: ReferralStatus,
        on: String,
    ) -> Result<Referral> {
        self.with(|dev| {
            Ok(dev
                .update_referral(parse_id("id", &id)?, status.into(), parse_day("on", &on)?)?
                .into())
        })
    }

    // Tasks.

    /// Adds a follow-up task about a person, due on a day, optionally for a colleague (a
    /// username from the directory); returns its id.
    pub fn add_task(
        &self,
        person: String,
        due: String,
        reason: String,
        assignee_username: Option<String>,
    ) -> Result<String> {
        self.with(|dev| {
            let mut t = FollowUpTask::new(
                parse_id("person", &person)?,
                parse_day("due", &due)?,
                text(&reason),
            );
            if let Some(username) = assignee_username {
                t.assignee = Some(Id::from(dev.colleague(&username)?.id));
            }
            t.created_by = dev.enrollment()?.map(|(_, user)| Id::from(user));
            Ok(dev.add_task(&t)?.to_string())
        })
    }

    /// Open tasks for the enrolled user, earliest due first (an unenrolled device: all).
    pub fn my_tasks(&self) -> Result<Vec<Task>> {
        self.with(|dev| {
            let tasks = match dev.enrollment()? {
                Some((_, user)) => dev.tasks_for(Id::from(user))?,
                None => dev.open_tasks()?,
            };
            Ok(tasks.into_iter().map(Into::into).collect())
        })
    }

    /// Every open task this device holds, earliest due first.
    pub fn open_tasks(&self) -> Result<Vec<Task>> {
        self.with(|dev| Ok(dev.open_tasks()?.into_iter().map(Into::into).collect()))
    }

    /// Marks a task done.
    pub fn complete_task(&self, id: String) -> Result<()> {
        self.with(|dev| Ok(dev.complete_task(parse_id("id", &id)?)?))
    }

    // Sessions and attendance (counsellors).

    /// Plans a session at a community point (`at` RFC 3339, none is now); returns its id.
    pub fn add_session(
        &self,
        point: String,
        kind: SessionKind,
        topic: String,
        at: Option<String>,
    ) -> Result<String> {
        self.with(|dev| {
            let mut s = d::Session::new(
                parse_id("point", &point)?,
                kind.into(),
                text(&topic),
                parse_instant("at", at.as_deref())?,
            );
            if let Some((_, me)) = dev.enrollment()? {
                s.facilitators.push(Id::from(me));
            }
            Ok(dev.add_session(&s)?.to_string())
        })
    }

    /// Sessions this device holds, most recent first.
    pub fn sessions(&self) -> Result<Vec<Session>> {
        self.with(|dev| Ok(dev.sessions()?.into_iter().map(Into::into).collect()))
    }

    /// Marks a planned session held (once it has started). `InvalidTransition` unless planned.
    pub fn hold_session(&self, id: String) -> Result<Session> {
        self.with(|dev| Ok(dev.hold_session(parse_id("id", &id)?)?.into()))
    }

    /// Cancels a planned session (attendance can no longer be marked on it).
    /// `InvalidTransition` unless planned.
    pub fn cancel_session(&self, id: String) -> Result<Session> {
        self.with(|dev| Ok(dev.cancel_session(parse_id("id", &id)?)?.into()))
    }

    /// Marks a person present at a session (once per session); returns the row's id.
    pub fn mark_attendance(
        &self,
        session: String,
        person: String,
        status: AttendanceStatus,
    ) -> Result<String> {
        self.with(|dev| {
            let session = parse_id("session", &session)?;
            let person = parse_id("person", &person)?;
            Ok(dev
                .mark_attendance(session, Attendee::Person(person), status.into())?
                .to_string())
        })
    }

    /// Counts anonymous walk-ins at a session (1 to 1,000); returns the row's id.
    pub fn mark_walk_ins(&self, session: String, count: u32) -> Result<String> {
        self.with(|dev| {
            let session = parse_id("session", &session)?;
            Ok(dev
                .mark_attendance(
                    session,
                    Attendee::WalkIns(count),
                    d::AttendanceStatus::Present,
                )?
                .to_string())
        })
    }

    /// Who attended a session.
    pub fn attendance(&self, session: String) -> Result<Vec<Attendance>> {
        self.with(|dev| {
            let session = parse_id("session", &session)?;
            Ok(dev
                .attendance(session)?
                .into_iter()
                .map(Into::into)
                .collect())
        })
    }

    // Supervision.

    /// Writes a supervision note on a volunteer (a username from the directory) as the
    /// enrolled supervisor; returns its id.
    pub fn add_supervision_note(
        &self,
        volunteer_username: String,
        notes: String,
    ) -> Result<String> {
        self.with(|dev| {
            let me = dev.user_id()?;
            let v = dev.colleague(&volunteer_username)?;
            let mut note = SupervisionNote::new(
                Id::from(v.org_unit),
                me,
                Id::from(v.id),
                vn_date(chrono::Utc::now()),
            );
            note.concerns = notes;
            Ok(dev.add_supervision_note(&note)?.to_string())
        })
    }

    /// The open conflicts in the supervisor's cases, oldest first: fields changed on two
    /// sides, the value kept and the one that lost. Online (asks the server); `Forbidden` for
    /// any role but a supervisor. The values may identify a person: show, never log.
    pub fn conflicts(&self) -> Result<Vec<Conflict>> {
        self.with(|dev| Ok(dev.conflicts()?.into_iter().map(Into::into).collect()))
    }

    /// Resolves an open conflict: `restore` puts the losing value back (it reaches the phones
    /// at their next sync), otherwise the current value stays. Online; `NotFound` (kind
    /// `conflict`) for a conflict that is not open in the supervisor's cases.
    pub fn resolve_conflict(&self, id: String, restore: bool) -> Result<()> {
        self.with(|dev| Ok(dev.resolve_conflict(parse_id("id", &id)?.uuid(), restore)?))
    }

    /// The staff directory the last sync brought (a supervisor's colleagues).
    pub fn directory(&self) -> Result<Vec<Colleague>> {
        self.with(|dev| Ok(dev.directory()?.into_iter().map(Into::into).collect()))
    }

    // Sync.

    /// This device's enrolment, if enrolled.
    pub fn enrollment(&self) -> Result<Option<Enrollment>> {
        self.with(|dev| {
            let Some((device, user)) = dev.enrollment()? else {
                return Ok(None);
            };
            let lease = dev.store().read(|r| r.lease_until())?;
            Ok(Some(Enrollment {
                device_id: device.to_string(),
                user_id: user.to_string(),
                role: dev.role()?.map(Into::into),
                key_lease_until: lease
                    .and_then(|secs| i64::try_from(secs).ok())
                    .and_then(|secs| chrono::DateTime::from_timestamp(secs, 0))
                    .map(|t| t.to_rfc3339()),
            }))
        })
    }

    /// One sync round: push local changes, pull the server's, download granted scopes, purge
    /// revoked ones. `listener` (optional) hears progress, refusals and purges. A revoked
    /// device is wiped and answers `Revoked`.
    pub fn sync(&self, listener: Option<Arc<dyn SyncListener>>) -> Result<SyncReport> {
        self.with(|dev| {
            let report = match listener {
                Some(l) => dev.sync_with(&ForeignListener(l))?,
                None => dev.sync_with(&NoListener)?,
            };
            Ok((&report).into())
        })
    }

    /// The commune's report for `period` (`2026-10` → form 01-BCN; `2026-H2`, `2026`: the
    /// province templates), computed offline from what this supervisor's phone holds: the same
    /// definitions and numbers as the server's. `template` empty: the period's default.
    /// `InvalidInput` for a bad period or template, or on a device that is not a supervisor's.
    pub fn report(&self, template: String, period: String) -> Result<Report> {
        let period = donghanh_core::report::Period::parse(&period)
            .map_err(|e| DonghanhError::invalid(e.to_string()))?;
        let template = if template.is_empty() {
            period
                .kind()
                .default_template()
                .ok_or_else(|| DonghanhError::invalid("name a template for a quarter"))?
                .to_owned()
        } else {
            template
        };
        self.with(|dev| Ok((&dev.report(&template, period)?).into()))
    }

    /// Ids of the records behind one indicator's number for `period` (records this phone
    /// holds; for a ratio, its numerator's), for a supervisor.
    pub fn report_records(&self, indicator: String, period: String) -> Result<Vec<String>> {
        let period = donghanh_core::report::Period::parse(&period)
            .map_err(|e| DonghanhError::invalid(e.to_string()))?;
        self.with(|dev| {
            Ok(dev
                .report_records(&indicator, period)?
                .into_iter()
                .map(|id| id.to_string())
                .collect())
        })
    }

    /// The report (as [`Device::report`]) as a file to share or print: `format` `xlsx` (laid out
    /// as the paper form) or `csv`; `unit_name` is printed at the top of the form.
    pub fn report_export(
        &self,
        template: String,
        period: String,
        format: String,
        unit_name: String,
    ) -> Result<Vec<u8>> {
        let xlsx = export_format(&format)?;
        let period = donghanh_core::report::Period::parse(&period)
            .map_err(|e| DonghanhError::invalid(e.to_string()))?;
        let template = if template.is_empty() {
            period
                .kind()
                .default_template()
                .ok_or_else(|| DonghanhError::invalid("name a template for a quarter"))?
                .to_owned()
        } else {
            template
        };
        let labels = donghanh_core::report::export::Labels {
            org_name: unit_name,
            ..Default::default()
        };
        self.with(|dev| {
            let report = dev.report(&template, period)?;
            let bytes = if xlsx {
                donghanh_core::report::export::to_xlsx(&report, &labels)
            } else {
                donghanh_core::report::export::to_csv(&report, &labels)
            };
            Ok(bytes.map_err(donghanh_core::Error::from)?)
        })
    }

    /// A commune record book (`04-SCN`: people under post-rehab management; `05-SCN`: people
    /// who completed rehab) as of `as_of` (`YYYY-MM-DD`), as an `xlsx` or `csv` file. Books name
    /// people: only a supervisor's phone makes them, `purpose` is required, and each person
    /// listed gets an access-log entry that syncs to the server. The bytes are the caller's to
    /// protect: share them, never keep them in the app's files.
    pub fn book_export(
        &self,
        book: String,
        as_of: String,
        purpose: String,
        format: String,
        unit_name: String,
    ) -> Result<Vec<u8>> {
        use donghanh_core::report::books;
        let xlsx = export_format(&format)?;
        let kind =
            books::BookKind::parse(&book).map_err(|e| DonghanhError::invalid(e.to_string()))?;
        let as_of = crate::types::parse_day("as_of", &as_of)?;
        let labels = donghanh_core::report::export::Labels {
            org_name: unit_name,
            ..Default::default()
        };
        self.with(|dev| {
            let lines = dev.book(kind, as_of, &purpose)?;
            let bytes = if xlsx {
                books::to_xlsx(kind, &lines, &labels, as_of)
            } else {
                books::to_csv(kind, &lines)
            };
            Ok(bytes.map_err(donghanh_core::Error::from)?)
        })
    }

    /// Local changes waiting to be pushed.
    pub fn pending_changes(&self) -> Result<u64> {
        self.with(|dev| Ok(u64::try_from(dev.pending_changes()?).unwrap_or(u64::MAX)))
    }

    /// Local changes the server refused, oldest first (shown until dismissed).
    pub fn rejected(&self) -> Result<Vec<RejectedChange>> {
        self.with(|dev| {
            let rows = dev.store().read(|r| r.rejected())?;
            Ok(rows
                .into_iter()
                .map(|r| RejectedChange {
                    client_seq: r.client_seq,
                    kind: r.kind,
                    record_id: r.record_id.to_string(),
                    code: r.code,
                    message: r.message,
                })
                .collect())
        })
    }

    /// Forgets a refused change once the user has seen it; returns whether it existed.
    pub fn dismiss_rejected(&self, client_seq: u64) -> Result<bool> {
        self.with(|dev| {
            // The store numbers changes within i64: a larger number names none.
            if i64::try_from(client_seq).is_err() {
                return Ok(false);
            }
            Ok(dev.store().write(|w| w.dismiss_rejected(client_seq))?)
        })
    }
}

/// `xlsx` → true, `csv` → false.
fn export_format(format: &str) -> Result<bool> {
    match format {
        "xlsx" => Ok(true),
        "csv" => Ok(false),
        _ => Err(DonghanhError::invalid("format: expected xlsx or csv")),
    }
}
