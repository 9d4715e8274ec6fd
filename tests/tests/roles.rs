//! End to end, by role: counsellors' sessions, supervisors' notes and assignments, what a
//! volunteer can never read, the key lease and the tombstone horizon. The real server on
//! loopback, real devices on real encrypted files.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use chrono::{Duration, Utc};
use donghanh_core::domain::{
    AttendanceStatus, Attendee, Episode, EpisodeKind, FollowUpTask, Id, Person, PriorRehab, Role,
    Scope, Session, SessionKind, Sex, SupervisionNote, Visit, vn_date,
};
use donghanh_core::sync::client::{SyncListener, SyncPhase, SyncReport};
use donghanh_core::{Device, Error, search};
use donghanh_e2e::{RawDevice, TestServer, reopen};
use serde_json::{Value, json};

fn person(server: &TestServer, name: &str) -> Person {
    let mut p = Person::new(
        name,
        chrono::NaiveDate::from_ymd_opt(1990, 6, 7).unwrap(),
        Sex::Male,
    );
    p.phone = Some("0912345678".into());
    p.commune = Some(server.commune);
    p
}

/// Every file under `dir`, checked for `markers` (raw and diacritic-folded).
fn assert_no_marker(dir: &Path, markers: &[&str]) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        for m in markers {
            for needle in [m.to_string(), search::fold(m)] {
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                    "{needle:?} in {}",
                    path.display()
                );
            }
        }
    }
}

/// A supervisor's phone opens a case of the commune (person and active episode), synced.
fn open_case(sup: &Device, p: &Person) -> Episode {
    let today = vn_date(Utc::now());
    sup.add_person(p).unwrap();
    let episode = Episode::new(p.id, EpisodeKind::PostRehab, today - Duration::days(30))
        .with_after(PriorRehab::Voluntary);
    sup.add_episode(&episode).unwrap();
    episode
}

#[test]
fn a_counsellor_records_a_group_session_offline_and_the_supervisor_sees_who_came() {
    let server = TestServer::start();
    let _ = server.add_user("gs.minh", Role::Supervisor);
    let _ = server.add_user_at(
        "tv.thu",
        Role::Counsellor,
        server.commune,
        Some(server.point),
    );
    let _ = server.add_user_at("tnv.hoa", Role::Volunteer, server.team, None);
    let phones = tempfile::tempdir().unwrap();
    let sup = server.enroll(&phones.path().join("sup"), "gs.minh");
    let thu = server.enroll(&phones.path().join("thu"), "tv.thu");
    let hoa_dir = phones.path().join("hoa");
    let hoa = server.enroll(&hoa_dir, "tnv.hoa");
    let p = person(&server, "Đặng Văn Tham Dự");
    open_case(&sup, &p);
    sup.sync().unwrap();
    thu.sync().unwrap();
    // A counsellor's directory is her own entry, with the point her sessions are planned at.
    let me = thu.directory().unwrap();
    assert_eq!(me.len(), 1);
    assert_eq!(me[0].point.map(Id::from), Some(server.point));

    // Offline at the point: a group session, one registered attendee and three walk-ins.
    let mut session = Session::new(
        server.point,
        SessionKind::Group,
        "Kỹ năng phòng tái nghiện (bí mật)",
        Utc::now() - Duration::hours(2),
    );
    session.facilitators.push(thu.user_id().unwrap());
    thu.add_session(&session).unwrap();
    thu.mark_attendance(
        session.id,
        Attendee::Person(p.id),
        AttendanceStatus::Present,
    )
    .unwrap();
    thu.mark_attendance(session.id, Attendee::WalkIns(3), AttendanceStatus::Present)
        .unwrap();
    // The same person twice is refused, and nothing is written.
    assert!(matches!(
        thu.mark_attendance(session.id, Attendee::Person(p.id), AttendanceStatus::Late),
        Err(Error::AlreadyExists { .. })
    ));
    assert_eq!(thu.pending_changes().unwrap(), 3);
    let r = thu.sync().unwrap();
    assert_eq!((r.pushed, r.rejected), (3, 0), "{r:?}");

    // The supervisor sees the session and who attended.
    sup.sync().unwrap();
    let sessions = sup.sessions().unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].topic, "Kỹ năng phòng tái nghiện (bí mật)");
    let rows = sup.attendance(session.id).unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().any(|a| a.attendee == Attendee::Person(p.id)));
    assert_eq!(rows.iter().map(|a| a.count()).sum::<u32>(), 4);

    // A volunteer holds nothing of the point.
    hoa.sync().unwrap();
    assert!(hoa.sessions().unwrap().is_empty());
    drop(hoa);
    assert_no_marker(&hoa_dir, &["phòng tái nghiện (bí mật)", "Đặng Văn Tham Dự"]);
    // Nor does the server keep any of it in clear (database, WAL, key file).
    assert_no_marker(
        server.dir.path(),
        &[
            "phòng tái nghiện (bí mật)",
            "Đặng Văn Tham Dự",
            "0912345678",
            "tv.thu",
        ],
    );
}

#[test]
fn a_supervision_note_reaches_the_supervisors_and_no_volunteer() {
    let server = TestServer::start();
    let _ = server.add_user("gs.minh", Role::Supervisor);
    let _ = server.add_user_at("gs.lan", Role::Supervisor, server.team, None);
    let _ = server.add_user_at("tnv.hoa", Role::Volunteer, server.team, None);
    let _ = server.add_user_at("tnv.binh", Role::Volunteer, server.team, None);
    let phones = tempfile::tempdir().unwrap();
    let sup = server.enroll(&phones.path().join("sup"), "gs.minh");
    let sup2 = server.enroll(&phones.path().join("sup2"), "gs.lan");
    let (hoa_dir, binh_dir) = (phones.path().join("hoa"), phones.path().join("binh"));
    let hoa = server.enroll(&hoa_dir, "tnv.hoa");
    let binh = server.enroll(&binh_dir, "tnv.binh");
    // The directory a sync brings lists the commune's staff for the supervisor only.
    sup.sync().unwrap();
    let names: Vec<String> = sup
        .directory()
        .unwrap()
        .into_iter()
        .map(|e| e.username)
        .collect();
    assert_eq!(names, ["gs.lan", "gs.minh", "tnv.binh", "tnv.hoa"]);
    hoa.sync().unwrap();
    assert!(hoa.directory().unwrap().is_empty());

    let target = sup.colleague("tnv.hoa").unwrap();
    let mut note = SupervisionNote::new(
        Id::from(target.org_unit),
        sup.user_id().unwrap(),
        Id::from(target.id),
        vn_date(Utc::now()),
    );
    note.concerns = "Chưa thăm đủ số lần; cần hỗ trợ thêm (nhận xét mật)".into();
    sup.add_supervision_note(&note).unwrap();
    let r = sup.sync().unwrap();
    assert_eq!((r.pushed, r.rejected), (1, 0), "{r:?}");

    sup2.sync().unwrap();
    assert_eq!(
        sup2.record::<SupervisionNote>(note.id).unwrap().concerns,
        note.concerns
    );
    for (phone, dir) in [(hoa, &hoa_dir), (binh, &binh_dir)] {
        phone.sync().unwrap();
        assert!(matches!(
            phone.record::<SupervisionNote>(note.id),
            Err(Error::NotFound { .. })
        ));
        drop(phone);
        assert_no_marker(dir, &["nhận xét mật"]);
    }
    // A volunteer's phone cannot write one either: the server refuses it.
    let hoa = reopen(&hoa_dir).unwrap();
    let mut forged = SupervisionNote::new(
        server.team,
        hoa.user_id().unwrap(),
        hoa.user_id().unwrap(),
        vn_date(Utc::now()),
    );
    forged.concerns = "tự nhận xét".into();
    hoa.add_supervision_note(&forged).unwrap();
    let r = hoa.sync().unwrap();
    assert_eq!((r.pushed, r.rejected), (0, 1), "{r:?}");
    let rejected = hoa.store().read(|r| r.rejected()).unwrap();
    assert_eq!(rejected[0].code, "forbidden");
    assert_no_marker(
        server.dir.path(),
        &["nhận xét mật", "tự nhận xét", "gs.lan"],
    );
}

/// Counts what the listener hears.
#[derive(Default)]
struct Heard {
    phases: std::sync::Mutex<Vec<SyncPhase>>,
    removed: std::sync::Mutex<Vec<String>>,
}

impl SyncListener for Heard {
    fn progress(&self, phase: SyncPhase, _report: &SyncReport) {
        self.phases.lock().unwrap().push(phase);
    }
    fn scope_removed(&self, scope_kind: &str) {
        self.removed.lock().unwrap().push(scope_kind.to_owned());
    }
}

#[test]
fn a_supervisor_assigns_and_reassigns_a_case_and_follow_ups_reach_the_right_phone() {
    let server = TestServer::start();
    let _ = server.add_user("gs.minh", Role::Supervisor);
    let _ = server.add_user_at("tnv.hoa", Role::Volunteer, server.team, None);
    let _ = server.add_user_at("tnv.lan", Role::Volunteer, server.team, None);
    let phones = tempfile::tempdir().unwrap();
    let sup = server.enroll(&phones.path().join("sup"), "gs.minh");
    let hoa_dir = phones.path().join("hoa");
    let hoa = server.enroll(&hoa_dir, "tnv.hoa");
    let lan = server.enroll(&phones.path().join("lan"), "tnv.lan");
    sup.sync().unwrap();
    let me = sup.user_id().unwrap();
    let (hoa_id, lan_id) = (
        Id::from(sup.colleague("tnv.hoa").unwrap().id),
        Id::from(sup.colleague("tnv.lan").unwrap().id),
    );
    let p = person(&server, "Hồ Văn Phân Công");
    open_case(&sup, &p);
    sup.assign_case(p.id, hoa_id, me).unwrap();
    let mut task = FollowUpTask::new(
        p.id,
        vn_date(Utc::now()) + Duration::days(3),
        "Đưa đi làm CCCD",
    );
    task.assignee = Some(hoa_id);
    task.created_by = Some(me);
    sup.add_task(&task).unwrap();
    let r = sup.sync().unwrap();
    assert_eq!((r.pushed, r.rejected), (4, 0), "{r:?}");

    // Hoa's task list has it; Lan has nothing.
    hoa.sync().unwrap();
    let mine = hoa.tasks_for(hoa_id).unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].reason, "Đưa đi làm CCCD");
    lan.sync().unwrap();
    assert!(lan.people().unwrap().is_empty());

    // Reassigned to Lan (same day: the assignment changes hands): Hoa's phone lets go and
    // says so; Lan's receives the case, with no task of hers yet.
    sup.assign_case(p.id, lan_id, me).unwrap();
    sup.sync().unwrap();
    let heard = Heard::default();
    let r = hoa.sync_with(&heard).unwrap();
    assert_eq!(r.purged, 1, "{r:?}");
    assert_eq!(*heard.removed.lock().unwrap(), ["person"]);
    let phases = heard.phases.lock().unwrap().clone();
    assert!(phases.contains(&SyncPhase::Purging) && phases.last() == Some(&SyncPhase::Done));
    assert!(hoa.tasks_for(hoa_id).unwrap().is_empty());
    drop(hoa);
    assert_no_marker(
        &hoa_dir,
        &["Hồ Văn Phân Công", "Đưa đi làm CCCD", "0912345678"],
    );
    lan.sync().unwrap();
    assert_eq!(lan.person(p.id).unwrap(), p);
    assert!(lan.tasks_for(lan_id).unwrap().is_empty());
    assert_no_marker(
        server.dir.path(),
        &["Hồ Văn Phân Công", "Đưa đi làm CCCD", "0912345678"],
    );
    // An unknown username is a clear error, not a guess.
    assert!(matches!(
        sup.colleague("tnv.khong-co"),
        Err(Error::UnknownUser)
    ));
}

#[test]
fn a_volunteer_can_never_read_a_case_not_assigned_to_them_through_any_endpoint() {
    let server = TestServer::start();
    let _ = server.add_user("gs.minh", Role::Supervisor);
    let hoa_id = server.add_user_at("tnv.hoa", Role::Volunteer, server.team, None);
    let lan_id = server.add_user_at("tnv.lan", Role::Volunteer, server.team, None);
    let phones = tempfile::tempdir().unwrap();
    let sup = server.enroll(&phones.path().join("sup"), "gs.minh");
    sup.sync().unwrap();
    let me = sup.user_id().unwrap();
    let mine = person(&server, "Ngô Văn Của Hoa");
    let theirs = person(&server, "Vũ Thị Không Phải Của Hoa");
    open_case(&sup, &mine);
    let their_episode = open_case(&sup, &theirs);
    sup.assign_case(mine.id, hoa_id, me).unwrap();
    sup.assign_case(theirs.id, lan_id, me).unwrap();
    sup.add_visit(&Visit::new(
        theirs.id,
        Utc::now(),
        "ghi chú không dành cho Hoa",
    ))
    .unwrap();
    let session = Session::new(
        server.point,
        SessionKind::Group,
        "buổi không dành cho Hoa",
        Utc::now(),
    );
    sup.add_session(&session).unwrap();
    let mut note = SupervisionNote::new(server.team, me, lan_id, vn_date(Utc::now()));
    note.concerns = "nhận xét về Lan".into();
    sup.add_supervision_note(&note).unwrap();
    let r = sup.sync().unwrap();
    assert_eq!(r.rejected, 0, "{r:?}");

    let hoa = RawDevice::enroll(&server, "tnv.hoa");
    let forbidden_ids: Vec<uuid::Uuid> = [theirs.id, their_episode.id, session.id, note.id]
        .iter()
        .map(|i| i.uuid())
        .collect();
    // Pull: her case only, nothing else, no scope event of another's.
    let pages = hoa.pull_everything();
    let served: Vec<&donghanh_protocol::Change<Value>> =
        pages.iter().flat_map(|p| p.changes.iter()).collect();
    assert!(served.iter().any(|c| c.record_id == mine.id.uuid()));
    for c in &served {
        assert_eq!(c.scope, Scope::Person(mine.id).to_string(), "{c:?}");
        assert!(!forbidden_ids.contains(&c.record_id));
    }
    for e in pages.iter().flat_map(|p| p.scope_events.iter()) {
        assert_eq!(e.scope, Scope::Person(mine.id).to_string());
    }
    // Snapshots of every other scope: as if they did not exist.
    for scope in [
        Scope::Person(theirs.id),
        Scope::Point(server.point),
        Scope::Team(server.team),
        Scope::User(lan_id),
    ] {
        let (status, body) = hoa.get(&format!("/v1/scopes/{scope}/snapshot"));
        assert_eq!(status, 404, "{scope}: {body}");
        assert_eq!(body["code"], "not_found");
    }
    // Conflicts are a supervisor's: refused.
    let (status, _) = hoa.get("/v1/conflicts");
    assert_eq!(status, 403);
    let (status, _) = hoa.post(
        &format!("/v1/conflicts/{}/resolve", Id::new()),
        &json!({"restore": true}),
    );
    assert_eq!(status, 403);
    // The directory shows only herself.
    let (status, body) = hoa.get("/v1/directory");
    assert_eq!(status, 200);
    assert_eq!(body["users"].as_array().unwrap().len(), 1);
    assert_eq!(body["users"][0]["username"], "tnv.hoa");
    // Writing into another's case is refused receipt by receipt, and changes nothing.
    let (status, body) = hoa.post(
        "/v1/push",
        &json!({"mutations": [
            {"client_seq": 1, "record_id": theirs.id, "kind": "person",
             "scope": Scope::Person(theirs.id).to_string(), "op": "update", "base_version": 1,
             "patch": {"phone": "0900000000"}},
            {"client_seq": 2, "record_id": Id::new(), "kind": "visit",
             "scope": Scope::Person(theirs.id).to_string(), "op": "create", "base_version": 0,
             "patch": serde_json::to_value(Visit::new(theirs.id, Utc::now(), "x")).unwrap()},
        ]}),
    );
    assert_eq!(status, 200, "{body}");
    for r in body["receipts"].as_array().unwrap() {
        assert_eq!(r["outcome"], "rejected", "{r}");
        assert_eq!(r["reason"]["code"], "forbidden");
    }
    // Acknowledging someone else's scope event: not hers.
    let (status, _) = hoa.post(
        "/v1/scopes/ack",
        &json!({"scope": Scope::Person(theirs.id).to_string(), "kind": "grant", "op_id": 1}),
    );
    assert_eq!(status, 404);
    // Admin endpoints are not hers either.
    let (status, _) = hoa.post(
        &format!("/v1/admin/devices/{}/revoke", hoa.device_id),
        &json!({}),
    );
    assert_eq!(status, 403);
    // Nothing of the other case changed.
    sup.sync().unwrap();
    assert_eq!(sup.person(theirs.id).unwrap().phone, theirs.phone);
    assert_eq!(sup.visits(theirs.id).unwrap().len(), 1);
}

#[test]
fn a_phone_not_synced_within_its_key_lease_wipes_itself_on_opening() {
    let lease = 3600;
    let server = TestServer::start_with(donghanh_server::Config {
        key_lease_seconds: lease,
        ..donghanh_server::Config::default()
    });
    let hoa_id = server.add_user_at("tnv.hoa", Role::Volunteer, server.team, None);
    let _ = server.add_user("gs.minh", Role::Supervisor);
    let phones = tempfile::tempdir().unwrap();
    let sup = server.enroll(&phones.path().join("sup"), "gs.minh");
    let hoa_dir = phones.path().join("hoa");
    let hoa = server.enroll(&hoa_dir, "tnv.hoa");
    let p = person(&server, "Lý Văn Hết Hạn");
    open_case(&sup, &p);
    sup.assign_case(p.id, hoa_id, sup.user_id().unwrap())
        .unwrap();
    sup.sync().unwrap();
    hoa.sync().unwrap();
    assert_eq!(hoa.person(p.id).unwrap(), p);
    // The lease runs from the last successful sync, for as long as the server says.
    let now = Utc::now().timestamp().unsigned_abs();
    let until = hoa.store().read(|r| r.lease_until()).unwrap().unwrap();
    assert!(
        until >= now + lease - 60 && until <= now + lease,
        "{until} vs {now}"
    );
    // Within the lease it opens; past it (the clock moved on by writing the end into the
    // past), opening wipes it.
    drop(hoa);
    let hoa = reopen(&hoa_dir).unwrap();
    hoa.store().write(|w| w.put_lease_until(now - 1)).unwrap();
    drop(hoa);
    assert!(matches!(reopen(&hoa_dir), Err(Error::LeaseExpired)));
    assert!(matches!(reopen(&hoa_dir), Err(Error::Wiped)));
    assert_no_marker(&hoa_dir, &["Lý Văn Hết Hạn", "0912345678"]);
}

#[test]
fn a_phone_away_past_the_tombstone_horizon_downloads_again_instead_of_keeping_deletes() {
    let server = TestServer::start();
    let _ = server.add_user("gs.minh", Role::Supervisor);
    let hoa_id = server.add_user_at("tnv.hoa", Role::Volunteer, server.team, None);
    let phones = tempfile::tempdir().unwrap();
    let sup = server.enroll(&phones.path().join("sup"), "gs.minh");
    let hoa = server.enroll(&phones.path().join("hoa"), "tnv.hoa");
    let p = person(&server, "Phan Văn Xóa");
    open_case(&sup, &p);
    sup.assign_case(p.id, hoa_id, sup.user_id().unwrap())
        .unwrap();
    let mut task = FollowUpTask::new(p.id, vn_date(Utc::now()), "việc sẽ bị xóa");
    task.assignee = Some(hoa_id);
    sup.add_task(&task).unwrap();
    sup.sync().unwrap();
    hoa.sync().unwrap();
    assert_eq!(hoa.tasks_for(hoa_id).unwrap().len(), 1);

    // The task is deleted on the server (from the supervisor's other device) while Hoa's
    // phone is away.
    let tablet = RawDevice::enroll(&server, "gs.minh");
    let (status, body) = tablet.post(
        "/v1/push",
        &json!({"mutations": [{"client_seq": 1, "record_id": task.id, "kind": "task",
            "scope": Scope::Person(p.id).to_string(), "op": "delete", "base_version": 1,
            "patch": {}}]}),
    );
    assert_eq!(status, 200);
    assert_eq!(body["receipts"][0]["outcome"], "applied", "{body}");
    // While Hoa's phone is active and behind, the tombstone stays, whatever the time.
    assert_eq!(server.compact(Utc::now(), 14 * 86_400), 0);
    // Once her phone has been silent longer than the lease, it goes.
    assert_eq!(
        server.compact(Utc::now() + Duration::days(20), 14 * 86_400),
        1
    );
    // Her phone comes back: its cursor is too old, it downloads again, and the deleted task
    // is not resurrected; the case is still there.
    let r = hoa.sync().unwrap();
    assert!(r.pulled >= 3, "{r:?}");
    assert!(hoa.tasks_for(hoa_id).unwrap().is_empty());
    assert_eq!(hoa.person(p.id).unwrap(), p);
    // And the next round is an ordinary incremental one.
    let r = hoa.sync().unwrap();
    assert_eq!((r.pushed, r.pulled, r.purged), (0, 0, 0), "{r:?}");
}
