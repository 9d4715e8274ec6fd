//! The device's side of sync (DESIGN.md §3): pushes built from the outbox, receipts, pulled
//! pages, tested on real SQLite files.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use chrono::{Duration, Utc};
use donghanh_core::domain::{
    FollowUpTask, Id, Person, Record, Scope, TaskStatus, ValidationContext, Visit,
};
use donghanh_core::protocol::{
    Change, ChangeOp, ErrorBody, MutationOp, Outcome, PullPage, Receipt, ScopeEvent, ScopeEventKind,
};
use donghanh_core::search::fold;
use donghanh_core::sync::RawJson;
use donghanh_core::{Device, Error, RemoteProblem};
use serde_json::{Value, json};

use common::{Fixture, PIN, assert_no_marker, person};

fn upsert<R: Record>(op_id: u64, record: &R, version: u64) -> Change<Value> {
    Change {
        op_id,
        record_id: record.id().uuid(),
        kind: R::KIND.code().into(),
        scope: record.scope().to_string(),
        version,
        op: ChangeOp::Upsert,
        record: Some(serde_json::to_value(record).unwrap()),
    }
}

fn delete<R: Record>(op_id: u64, record: &R, version: u64) -> Change<Value> {
    Change {
        op: ChangeOp::Delete,
        record: None,
        ..upsert(op_id, record, version)
    }
}

fn page(changes: Vec<Change<Value>>, next_cursor: u64, has_more: bool) -> PullPage<Value> {
    PullPage {
        changes,
        scope_events: Vec::new(),
        next_cursor,
        has_more,
        as_of: next_cursor,
    }
}

fn receipt(client_seq: u64, id: Id, outcome: Outcome, version: Option<u64>) -> Receipt {
    Receipt {
        client_seq,
        record_id: id.uuid(),
        outcome,
        version,
        op_id: version,
        reason: None,
    }
}

fn seqs(device: &Device) -> Vec<u64> {
    device
        .store()
        .read(|r| r.outbox())
        .unwrap()
        .iter()
        .map(|e| e.client_seq)
        .collect()
}

fn update<R: Record>(device: &Device, record: &R) -> u64 {
    let ctx = ValidationContext::now();
    device.store().write(|w| w.update(record, &ctx)).unwrap()
}

fn cursor(device: &Device) -> u64 {
    device.store().read(|r| r.pull_cursor()).unwrap()
}

fn server_version(device: &Device, id: Id) -> Option<u64> {
    device.store().read(|r| r.server_version_of(id)).unwrap()
}

#[test]
fn pending_mutations_carry_their_patches_oldest_first() {
    let (_fx, device) = Fixture::new();
    let p = person("Đỗ Văn Đẩy");
    device.add_person(&p).unwrap();
    let task = FollowUpTask::new(p.id, Utc::now().date_naive(), "Gọi điện hỏi thăm");
    device.add_task(&task).unwrap();
    device.complete_task(task.id).unwrap();

    let all = device.store().read(|r| r.pending_mutations(100)).unwrap();
    assert_eq!(all.len(), 3);
    let ops: Vec<MutationOp> = all.iter().map(|m| m.op).collect();
    assert_eq!(
        ops,
        vec![MutationOp::Create, MutationOp::Create, MutationOp::Update]
    );
    assert_eq!(
        all.iter().map(|m| m.client_seq).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    // A create carries the whole record, an update only what changed.
    assert_eq!(all[0].patch, serde_json::to_value(&p).unwrap());
    assert_eq!(all[0].record_id, p.id.uuid());
    assert_eq!(all[0].kind, "person");
    assert_eq!(all[0].scope, Scope::Person(p.id).to_string());
    // A create not yet pushed carries the record as it is now (here already done: the create
    // reads its record instead of keeping a second sealed copy); the update still carries only
    // its own change, which the server applies without a conflict (same device).
    let now: FollowUpTask = device.store().read(|r| r.require(task.id)).unwrap();
    assert_eq!(all[1].patch, serde_json::to_value(&now).unwrap());
    assert_eq!(all[1].patch["status"], "done");
    assert_eq!(all[2].patch, json!({"status": "done"}));
    assert_eq!(all[2].record_id, task.id.uuid());
    assert!(all.iter().all(|m| m.base_version == 0));
    // The push is bounded, oldest first.
    let first_two = device.store().read(|r| r.pending_mutations(2)).unwrap();
    assert_eq!(first_two, all[..2].to_vec());
    assert!(
        device
            .store()
            .read(|r| r.pending_mutations(0))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn receipts_remove_acknowledged_rows_keep_rejected_ones_and_never_reuse_a_seq() {
    let (fx, device) = Fixture::new();
    let a = person("Ngô Văn Nhận");
    let b = person("Ngô Thị Từ Chối");
    let c = person("Ngô Văn Gộp");
    device.add_person(&a).unwrap(); // 1
    device.add_person(&b).unwrap(); // 2
    device.add_person(&c).unwrap(); // 3
    let mut refused = receipt(2, b.id, Outcome::Rejected, None);
    refused.reason = Some(ErrorBody::new(
        "forbidden",
        "the case is assigned to another team",
    ));
    let receipts = vec![
        receipt(1, a.id, Outcome::Applied, Some(1)),
        refused,
        receipt(3, c.id, Outcome::Merged, Some(4)),
        // Unknown sequence numbers and a receipt naming another record are ignored.
        receipt(99, a.id, Outcome::Applied, Some(9)),
    ];
    let summary = device
        .store()
        .write(|w| w.apply_receipts(&receipts))
        .unwrap();
    assert_eq!(
        (summary.acknowledged, summary.rejected, summary.ignored),
        (2, 1, 1)
    );
    assert!(seqs(&device).is_empty());
    assert_eq!(server_version(&device, a.id), Some(1));
    assert_eq!(server_version(&device, c.id), Some(4));
    assert_eq!(server_version(&device, b.id), Some(0));

    // The refused mutation stays visible, with its reason and its patch.
    let rejected = device.store().read(|r| r.rejected()).unwrap();
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].client_seq, 2);
    assert_eq!(rejected[0].record_id, b.id);
    assert_eq!(rejected[0].op, MutationOp::Create);
    assert_eq!(rejected[0].code, "forbidden");
    assert_eq!(rejected[0].message, "the case is assigned to another team");
    assert_eq!(
        device.store().read(|r| r.rejected_patch(2)).unwrap(),
        serde_json::to_value(&b).unwrap()
    );

    // A replayed response changes nothing.
    let again = device
        .store()
        .write(|w| w.apply_receipts(&receipts))
        .unwrap();
    assert_eq!(
        (again.acknowledged, again.rejected, again.ignored),
        (0, 0, 4)
    );
    assert_eq!(device.store().read(|r| r.rejected()).unwrap().len(), 1);

    // Numbers removed from the outbox never come back, not even after a reopen.
    device
        .add_visit(&Visit::new(a.id, Utc::now(), "thăm"))
        .unwrap();
    assert_eq!(seqs(&device), vec![4]);
    device
        .store()
        .write(|w| w.apply_receipts(&[receipt(4, Id::new(), Outcome::Applied, Some(1))]))
        .unwrap();
    assert_eq!(
        seqs(&device),
        vec![4],
        "a receipt for another record is ignored"
    );
    let visit_id = device.store().read(|r| r.outbox()).unwrap()[0].record_id;
    device
        .store()
        .write(|w| w.apply_receipts(&[receipt(4, visit_id, Outcome::Conflict, Some(2))]))
        .unwrap();
    assert!(seqs(&device).is_empty());
    drop(device);
    let device = fx.open(PIN).unwrap();
    assert_eq!(device.store().read(|r| r.rejected()).unwrap().len(), 1);
    device
        .add_visit(&Visit::new(a.id, Utc::now(), "thăm lại"))
        .unwrap();
    assert_eq!(seqs(&device), vec![5]);

    // Dismissing is explicit, and frees no number either.
    assert!(device.store().write(|w| w.dismiss_rejected(2)).unwrap());
    assert!(!device.store().write(|w| w.dismiss_rejected(2)).unwrap());
    assert!(device.store().read(|r| r.rejected()).unwrap().is_empty());
    let mut b2 = b.clone();
    b2.phone = Some("0911000111".into());
    drop(device);
    let device = fx.open(PIN).unwrap();
    assert_eq!(update(&device, &b2), 6);
}

#[test]
fn base_version_is_the_server_version_the_device_last_saw() {
    let (_fx, device) = Fixture::new();
    let mut p = person("Vương Văn Nền");
    device.add_person(&p).unwrap();
    // Two local writes before any push: both are based on "never confirmed".
    p.phone = Some("0900000001".into());
    update(&device, &p);
    let pending = device.store().read(|r| r.pending_mutations(10)).unwrap();
    assert_eq!(
        pending.iter().map(|m| m.base_version).collect::<Vec<_>>(),
        vec![0, 0]
    );
    assert_eq!(
        device.store().read(|r| r.version_of(p.id)).unwrap(),
        Some(2)
    );

    let receipts = [
        receipt(1, p.id, Outcome::Applied, Some(7)),
        receipt(2, p.id, Outcome::Applied, Some(8)),
    ];
    device
        .store()
        .write(|w| w.apply_receipts(&receipts))
        .unwrap();
    assert_eq!(server_version(&device, p.id), Some(8));
    p.address = Some("Tổ 3".into());
    let seq = update(&device, &p);
    let m = device.store().read(|r| r.pending_mutations(10)).unwrap();
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].client_seq, seq);
    assert_eq!(m[0].op, MutationOp::Update);
    assert_eq!(m[0].base_version, 8);
    assert_eq!(m[0].patch, json!({"address": "Tổ 3"}));
    // The local write counter (bound in the AAD) moved on independently.
    assert_eq!(
        device.store().read(|r| r.version_of(p.id)).unwrap(),
        Some(3)
    );
    // A late receipt with a lower version never lowers the server version.
    device
        .store()
        .write(|w| w.apply_receipts(&[receipt(seq, p.id, Outcome::Applied, Some(5))]))
        .unwrap();
    assert_eq!(server_version(&device, p.id), Some(8));
}

#[test]
fn a_page_and_its_cursor_apply_together_or_not_at_all() {
    let (fx, device) = Fixture::new();
    let local = person("Tạ Văn Tại Chỗ");
    device.add_person(&local).unwrap();
    let a = person("Quách Thị Một");
    let b = person("Quách Văn Hai");
    let visit = Visit::new(a.id, Utc::now() - Duration::days(1), "Ghi chú từ xa");
    let mut bad = person("Quách Văn Ba");
    bad.full_name = "   ".into();
    let failing = page(
        vec![upsert(1, &a, 1), upsert(2, &b, 1), upsert(3, &bad, 1)],
        3,
        false,
    );
    let before = fs_digest(&fx);
    let r = device.store().write(|w| w.apply_page(&failing));
    match r {
        Err(Error::RemoteRecord {
            kind,
            problem: RemoteProblem::Invalid(_),
        }) => assert_eq!(kind, "person"),
        other => panic!("expected RemoteRecord, got {other:?}"),
    }
    assert_eq!(cursor(&device), 0);
    assert!(device.person(a.id).is_err());
    assert!(device.person(b.id).is_err());
    assert_eq!(device.people().unwrap(), vec![local.clone()]);
    assert_eq!(seqs(&device), vec![1]);
    assert_eq!(
        device.store().read(|r| r.scopes()).unwrap(),
        vec![Scope::Person(local.id).to_string()],
        "no data key of a rolled-back page survives"
    );
    drop(device);
    assert_eq!(
        fs_digest(&fx),
        before,
        "a refused page changes no stored row"
    );

    // Undecodable, mismatched and unknown-kind changes are refused the same way.
    let device = fx.open(PIN).unwrap();
    let mut malformed = upsert(1, &a, 1);
    malformed.record = Some(json!({"id": a.id, "full_name": 3}));
    let mut mismatched = upsert(1, &a, 1);
    mismatched.record_id = b.id.uuid();
    let mut unknown = upsert(1, &a, 1);
    unknown.kind = "gossip".into();
    let mut empty = upsert(1, &a, 1);
    empty.record = None;
    for (change, want) in [
        (malformed, RemoteProblem::Malformed),
        (mismatched, RemoteProblem::Mismatch),
        (unknown, RemoteProblem::UnknownKind),
        (empty, RemoteProblem::Missing),
    ] {
        let r = device
            .store()
            .write(|w| w.apply_page(&page(vec![change], 1, false)));
        match r {
            Err(Error::RemoteRecord { problem, kind }) => {
                assert_eq!(problem, want);
                assert!(!kind.is_empty());
            }
            other => panic!("expected RemoteRecord, got {other:?}"),
        }
        assert_eq!(cursor(&device), 0);
    }

    // The good page applies whole, with its cursor, and creates no outbox mutation. A visit
    // dated after this device's clock is the server's to judge, not this phone's.
    let future = Visit::new(a.id, Utc::now() + Duration::days(2), "Lịch hẹn máy chủ");
    let good = page(
        vec![
            upsert(1, &a, 1),
            upsert(2, &b, 1),
            upsert(4, &visit, 1),
            upsert(5, &future, 1),
        ],
        6,
        true,
    );
    let summary = device.store().write(|w| w.apply_page(&good)).unwrap();
    assert_eq!(summary.upserted, 4);
    assert_eq!(summary.cursor, 6);
    assert!(summary.has_more);
    assert_eq!(cursor(&device), 6);
    assert_eq!(device.person(a.id).unwrap(), a);
    assert_eq!(device.visits(a.id).unwrap().len(), 2);
    assert_eq!(server_version(&device, b.id), Some(1));
    assert_eq!(seqs(&device), vec![1]);
    // The same page again is a no-op, and an older cursor never moves it back.
    let again = device.store().write(|w| w.apply_page(&good)).unwrap();
    assert_eq!((again.upserted, again.skipped), (0, 4));
    device
        .store()
        .write(|w| w.apply_page(&page(Vec::new(), 2, false)))
        .unwrap();
    assert_eq!(cursor(&device), 6);
}

/// Digest of the committed rows a page could touch (not the file: SQLite may rewrite headers).
fn fs_digest(fx: &Fixture) -> Vec<String> {
    let raw = fx.raw();
    let mut out = Vec::new();
    for sql in [
        "SELECT hex(id) || kind || version || server_version || hex(envelope) FROM records ORDER BY id",
        "SELECT client_seq || hex(envelope) FROM outbox ORDER BY client_seq",
        "SELECT k || hex(v) FROM meta ORDER BY k",
        "SELECT hex(token) || hex(record_id) FROM blind_index ORDER BY 1",
        "SELECT key_id || scope FROM scope_keys ORDER BY key_id",
    ] {
        let mut stmt = raw.prepare(sql).unwrap();
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).unwrap();
        out.extend(rows.map(Result::unwrap));
    }
    out
}

/// A log of changes touching two people and their visits: creates, edits (a renamed person
/// changes the blind index), deletes, a re-creation, scope events.
struct Log {
    people: Vec<Person>,
    visits: Vec<Visit>,
    changes: Vec<Change<Value>>,
    events: Vec<ScopeEvent>,
}

fn log() -> Log {
    let mut a = person("Lâm Văn Nhật Ký");
    let mut b = person("Lâm Thị Trang Sổ");
    let c = person("Lâm Văn Ba Lần");
    let va = Visit::new(a.id, Utc::now() - Duration::days(3), "thăm lần một");
    let mut vb = Visit::new(b.id, Utc::now() - Duration::days(2), "thăm lần hai");
    let mut changes = vec![upsert(1, &a, 1), upsert(2, &b, 1), upsert(4, &va, 1)];
    changes.push(upsert(5, &vb, 1));
    a.phone = Some("0987000111".into());
    changes.push(upsert(6, &a, 2));
    b.full_name = "Lâm Thị Đổi Tên".into();
    changes.push(upsert(7, &b, 2));
    changes.push(delete(8, &va, 2));
    vb.observations = "thăm lần hai, đã sửa".into();
    changes.push(upsert(10, &vb, 2));
    changes.push(upsert(11, &c, 1));
    a.address = Some("Xóm Chùa".into());
    changes.push(upsert(12, &a, 3));
    changes.push(delete(13, &c, 2));
    let events = vec![
        ScopeEvent {
            op_id: 3,
            scope: Scope::Person(b.id).to_string(),
            kind: ScopeEventKind::Grant,
        },
        ScopeEvent {
            op_id: 9,
            scope: Scope::Person(c.id).to_string(),
            kind: ScopeEventKind::Revoke,
        },
    ];
    Log {
        people: vec![a, b, c],
        visits: vec![va, vb],
        changes,
        events,
    }
}

/// A page of the log: the changes and events with `after < op_id <= upto`.
fn log_page(log: &Log, after: u64, upto: u64, has_more: bool) -> PullPage<Value> {
    PullPage {
        changes: log
            .changes
            .iter()
            .filter(|c| c.op_id > after && c.op_id <= upto)
            .cloned()
            .collect(),
        scope_events: log
            .events
            .iter()
            .filter(|e| e.op_id > after && e.op_id <= upto)
            .cloned()
            .collect(),
        next_cursor: upto,
        has_more,
        as_of: upto,
    }
}

/// Everything a pull can change, read through the store's API.
fn state(device: &Device, log: &Log) -> Vec<String> {
    let mut out = vec![format!("cursor {}", cursor(device))];
    device
        .store()
        .read(|r| {
            for p in &log.people {
                let got: Option<Person> = r.get(p.id)?;
                out.push(format!(
                    "{} {:?} {:?} {:?}",
                    p.id,
                    got.map(|g| serde_json::to_string(&g).unwrap()),
                    r.server_version_of(p.id)?,
                    r.version_of(p.id)?,
                ));
            }
            for v in &log.visits {
                let got: Option<Visit> = r.get(v.id)?;
                out.push(format!(
                    "{} {:?} {:?}",
                    v.id,
                    got.map(|g| serde_json::to_string(&g).unwrap()),
                    r.server_version_of(v.id)?,
                ));
            }
            for q in ["lam", "nhat ky", "trang so", "doi ten", "ba lan"] {
                let ids: Vec<Id> = r.search_people(q)?.iter().map(|p| p.id).collect();
                out.push(format!("{q}: {ids:?}"));
            }
            out.push(format!("outbox {}", r.outbox()?.len()));
            Ok(())
        })
        .unwrap();
    out
}

#[test]
fn resuming_a_pull_at_every_page_boundary_equals_one_full_pull() {
    let log = log();
    let last = 13;
    let (_fx, whole) = Fixture::new();
    let one = whole
        .store()
        .write(|w| w.apply_page(&log_page(&log, 0, last, false)))
        .unwrap();
    let expected = state(&whole, &log);
    assert_eq!(one.grants, vec![log.events[0].clone()]);
    assert_eq!(one.revokes, vec![log.events[1].clone()]);
    assert_eq!(one.deleted, 2);
    assert!(
        expected
            .iter()
            .any(|l| l.starts_with("doi ten") && l.len() > 12)
    );

    // Two pages split at every boundary, the device closed and reopened between them (the
    // resume), and the first page delivered twice (a retried response).
    for boundary in 1..last {
        let (fx, device) = Fixture::new();
        let first = log_page(&log, 0, boundary, true);
        let s1 = device.store().write(|w| w.apply_page(&first)).unwrap();
        drop(device);
        let device = fx.open(PIN).unwrap();
        device.store().write(|w| w.apply_page(&first)).unwrap();
        let s2 = device
            .store()
            .write(|w| w.apply_page(&log_page(&log, boundary, last, false)))
            .unwrap();
        assert_eq!(state(&device, &log), expected, "boundary {boundary}");
        let grants: Vec<_> = s1.grants.iter().chain(&s2.grants).cloned().collect();
        let revokes: Vec<_> = s1.revokes.iter().chain(&s2.revokes).cloned().collect();
        assert_eq!((grants, revokes), (one.grants.clone(), one.revokes.clone()));
    }

    // Every boundary at once: one op per page.
    let (_fx, device) = Fixture::new();
    for op in 1..=last {
        device
            .store()
            .write(|w| w.apply_page(&log_page(&log, op - 1, op, op < last)))
            .unwrap();
    }
    assert_eq!(state(&device, &log), expected);

    // Read as the sync client reads pages (records as raw JSON text), the same pages give
    // the same state.
    let (_fx, device) = Fixture::new();
    for (after, upto) in [(0, 5), (5, 9), (9, last)] {
        let text = serde_json::to_string(&log_page(&log, after, upto, upto < last)).unwrap();
        let raw: PullPage<RawJson> = serde_json::from_str(&text).unwrap();
        device.store().write(|w| w.apply_page(&raw)).unwrap();
    }
    assert_eq!(state(&device, &log), expected);
}

#[test]
fn a_pending_local_edit_wins_over_a_pulled_record_until_its_receipt() {
    let (_fx, device) = Fixture::new();
    let mut p = person("Mai Văn Sửa");
    device.add_person(&p).unwrap();
    device
        .store()
        .write(|w| w.apply_receipts(&[receipt(1, p.id, Outcome::Applied, Some(1))]))
        .unwrap();
    // Locally: a new phone, not yet pushed.
    p.phone = Some("0933444555".into());
    let seq = update(&device, &p);
    // Meanwhile the supervisor changed the address on the server (the phone is still old).
    let mut remote = person("Mai Văn Sửa");
    remote.id = p.id;
    remote.birth_date = p.birth_date;
    remote.address = Some("Thôn Mới".into());
    let s = device
        .store()
        .write(|w| w.apply_page(&page(vec![upsert(1, &remote, 2)], 1, false)))
        .unwrap();
    assert_eq!(s.kept_local, 1);
    let got = device.person(p.id).unwrap();
    assert_eq!(got.phone.as_deref(), Some("0933444555"), "local field kept");
    assert_eq!(
        got.address.as_deref(),
        Some("Thôn Mới"),
        "server field taken"
    );
    assert_eq!(server_version(&device, p.id), Some(2));
    assert_eq!(
        seqs(&device),
        vec![seq],
        "the pending mutation is untouched"
    );
    assert_eq!(
        device.store().read(|r| r.outbox_patch(seq)).unwrap(),
        json!({"phone": "0933444555"})
    );
    // The receipt arrives, then the merged record: from now on the server's record stands.
    device
        .store()
        .write(|w| w.apply_receipts(&[receipt(seq, p.id, Outcome::Merged, Some(3))]))
        .unwrap();
    let mut merged = remote.clone();
    merged.phone = Some("0933444555".into());
    merged.family_contact = Some("Vợ".into());
    device
        .store()
        .write(|w| w.apply_page(&page(vec![upsert(2, &merged, 3)], 2, false)))
        .unwrap();
    assert_eq!(device.person(p.id).unwrap(), merged);

    // A record created here and not yet confirmed keeps its local content too.
    let mine = person("Mai Thị Mới Tạo");
    device.add_person(&mine).unwrap();
    let mut theirs = mine.clone();
    theirs.full_name = "Tên Khác Trên Máy Chủ".into();
    device
        .store()
        .write(|w| w.apply_page(&page(vec![upsert(3, &theirs, 1)], 3, false)))
        .unwrap();
    assert_eq!(device.person(mine.id).unwrap(), mine);
    assert_eq!(device.find_people("moi tao").unwrap().len(), 1);
    assert!(device.find_people("may chu").unwrap().is_empty());
}

#[test]
fn a_remote_delete_removes_the_record_and_its_index_entries() {
    let (fx, device) = Fixture::new();
    let p = person("Đặng Thị Xóa Bỏ");
    let visit = Visit::new(p.id, Utc::now() - Duration::hours(5), "thăm");
    device
        .store()
        .write(|w| {
            w.apply_page(&page(
                vec![upsert(1, &p, 1), upsert(2, &visit, 1)],
                2,
                false,
            ))
        })
        .unwrap();
    assert_eq!(device.find_people("xoa bo").unwrap().len(), 1);
    let index_rows = |fx: &Fixture| -> i64 {
        fx.raw()
            .query_row(
                "SELECT count(*) FROM blind_index WHERE record_id = ?1",
                [p.id.as_bytes()],
                |r| r.get(0),
            )
            .unwrap()
    };
    assert!(index_rows(&fx) > 0);
    let s = device
        .store()
        .write(|w| {
            w.apply_page(&page(
                vec![delete(3, &visit, 2), delete(4, &p, 2)],
                4,
                false,
            ))
        })
        .unwrap();
    assert_eq!(s.deleted, 2);
    assert!(matches!(device.person(p.id), Err(Error::NotFound { .. })));
    assert!(device.find_people("xoa bo").unwrap().is_empty());
    let visits: Vec<Visit> = device.store().read(|r| r.by_subject(p.id)).unwrap();
    assert!(visits.is_empty());
    assert_eq!(index_rows(&fx), 0);
    assert!(seqs(&device).is_empty(), "remote changes queue nothing");
    // A stale upsert of the deleted record does not resurrect it from a replayed page.
    device
        .store()
        .write(|w| w.apply_page(&page(vec![upsert(3, &p, 1)], 4, false)))
        .unwrap();
    assert!(device.person(p.id).is_err());
}

#[test]
fn a_revoked_scope_is_reported_then_purged_with_its_rejected_mutations() {
    let (fx, device) = Fixture::new();
    let p = person("Kiều Văn Thu Hồi");
    device.add_person(&p).unwrap();
    device
        .add_visit(&Visit::new(p.id, Utc::now(), "thăm"))
        .unwrap();
    let mut no = receipt(2, Id::new(), Outcome::Rejected, None);
    no.record_id = device.store().read(|r| r.outbox()).unwrap()[1]
        .record_id
        .uuid();
    device.store().write(|w| w.apply_receipts(&[no])).unwrap();
    let scope = Scope::Person(p.id);
    let revoke: PullPage<Value> = PullPage {
        changes: Vec::new(),
        scope_events: vec![ScopeEvent {
            op_id: 1,
            scope: scope.to_string(),
            kind: ScopeEventKind::Revoke,
        }],
        next_cursor: 1,
        has_more: false,
        as_of: 1,
    };
    let s = device.store().write(|w| w.apply_page(&revoke)).unwrap();
    assert_eq!(s.revokes.len(), 1);
    assert!(s.grants.is_empty());
    // Nothing is deleted until the caller has pushed and purges.
    assert!(device.person(p.id).is_ok());
    let rejected = device.store().read(|r| r.rejected()).unwrap();
    assert_eq!(rejected[0].code, "rejected");
    device.store().write(|w| w.purge_scope(&scope)).unwrap();
    assert!(device.store().read(|r| r.rejected()).unwrap().is_empty());
    let left: i64 = fx
        .raw()
        .query_row(
            "SELECT (SELECT count(*) FROM rejected) + (SELECT count(*) FROM outbox)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(left, 0);
}

#[test]
fn a_scope_revoked_and_granted_again_within_one_page_is_kept() {
    let (_fx, device) = Fixture::new();
    let p = person("Quách Văn Trở Lại");
    let scope = Scope::Person(p.id).to_string();
    let event = |op_id, kind| ScopeEvent {
        op_id,
        scope: scope.clone(),
        kind,
    };
    // Reassigned away and back between two syncs: the page carries both events, and the
    // person's record, served because the scope is held again.
    let back = PullPage {
        changes: vec![upsert(4, &p, 1)],
        scope_events: vec![
            event(2, ScopeEventKind::Grant),
            event(3, ScopeEventKind::Revoke),
            event(5, ScopeEventKind::Grant),
        ],
        next_cursor: 5,
        has_more: false,
        as_of: 5,
    };
    let s = device.store().write(|w| w.apply_page(&back)).unwrap();
    assert_eq!(s.grants, vec![event(5, ScopeEventKind::Grant)]);
    assert!(s.revokes.is_empty(), "the scope is held: nothing to purge");
    assert_eq!(device.person(p.id).unwrap(), p);

    // Granted and taken away again: only the revoke is reported, no bootstrap.
    let away: PullPage<Value> = PullPage {
        changes: Vec::new(),
        scope_events: vec![
            event(7, ScopeEventKind::Revoke),
            event(6, ScopeEventKind::Grant),
        ],
        next_cursor: 7,
        has_more: false,
        as_of: 7,
    };
    let s = device.store().write(|w| w.apply_page(&away)).unwrap();
    assert!(s.grants.is_empty());
    assert_eq!(s.revokes, vec![event(7, ScopeEventKind::Revoke)]);
}

#[test]
fn names_and_notes_pulled_from_the_server_never_reach_a_file_in_clear() {
    let (fx, device) = Fixture::new();
    let mut p = person("Trịnh Thị Từ Xa Đến");
    p.phone = Some("0977123450".into());
    p.address = Some("Ngõ Vắng Số 9, xã Yên Bình".into());
    p.id_number = Some("001099012777".into());
    let note = "MARKER-KÉO-VỀ: gia đình báo tái sử dụng";
    let v = Visit::new(p.id, Utc::now() - Duration::hours(1), note);
    let mut task = FollowUpTask::new(p.id, Utc::now().date_naive(), "MARKER-VIỆC-KÉO-VỀ");
    task.status = TaskStatus::Open;
    device
        .store()
        .write(|w| {
            w.apply_page(&page(
                vec![upsert(1, &p, 1), upsert(2, &v, 1), upsert(3, &task, 1)],
                3,
                false,
            ))
        })
        .unwrap();
    let mut markers = Vec::new();
    for s in [
        p.full_name.as_str(),
        "Từ Xa Đến",
        "0977123450",
        "Ngõ Vắng",
        "001099012777",
        note,
        "MARKER-KÉO",
        "MARKER-VIỆC",
    ] {
        markers.push(s.to_owned());
        markers.push(fold(s));
    }
    assert_no_marker(&fx.dir, &markers);
    assert_eq!(device.find_people("tu xa den").unwrap(), vec![p.clone()]);
    drop(device);
    assert_no_marker(&fx.dir, &markers);
}

#[test]
fn a_create_is_not_sealed_twice_and_a_refused_create_keeps_its_content() {
    let (fx, device) = Fixture::new();
    let p = person("Phan Thị Một Bản");
    device.add_person(&p).unwrap();
    // The outbox row of a create holds no second copy of the record.
    drop(device);
    let raw = rusqlite::Connection::open(donghanh_core::Device::store_path(&fx.dir)).unwrap();
    let len: i64 = raw
        .query_row(
            "SELECT length(envelope) FROM outbox WHERE client_seq = 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(len, 0);
    // An update pointing at its record (no payload) is damage, not a read of the record.
    raw.execute("UPDATE outbox SET op = 'update' WHERE client_seq = 1", [])
        .unwrap();
    drop(raw);
    let device = fx.open(PIN).unwrap();
    assert!(matches!(
        device.store().read(|r| r.pending_mutations(10)),
        Err(Error::Tampered { .. })
    ));
    drop(device);
    let raw = rusqlite::Connection::open(donghanh_core::Device::store_path(&fx.dir)).unwrap();
    raw.execute("UPDATE outbox SET op = 'create' WHERE client_seq = 1", [])
        .unwrap();
    drop(raw);
    let device = fx.open(PIN).unwrap();
    // Refused by the server: the refusal keeps the content it had, sealed in its own row.
    let receipt = Receipt {
        client_seq: 1,
        record_id: p.id.uuid(),
        outcome: Outcome::Rejected,
        version: None,
        op_id: None,
        reason: Some(donghanh_protocol::ErrorBody::new(
            "forbidden",
            "the scope is not held",
        )),
    };
    device
        .store()
        .write(|w| w.apply_receipts(&[receipt]))
        .unwrap();
    let refused = device.store().read(|r| r.rejected()).unwrap();
    assert_eq!(refused.len(), 1);
    let payload = device.store().read(|r| r.rejected_patch(1)).unwrap();
    assert_eq!(payload, serde_json::to_value(&p).unwrap());
}

#[test]
fn a_pull_from_zero_takes_scopes_granted_before_it_from_the_log_and_snapshots_the_rest() {
    use donghanh_core::sync::ScopeTask;
    let (_fx, device) = Fixture::new();
    let grant = |op_id, scope: &str| ScopeEvent {
        op_id,
        scope: scope.to_owned(),
        kind: ScopeEventKind::Grant,
    };
    let page_of = |events: Vec<ScopeEvent>, next_cursor, as_of| PullPage::<Value> {
        changes: Vec::new(),
        scope_events: events,
        next_cursor,
        has_more: true,
        as_of,
    };
    let (a, b, c, d) = (
        Scope::Person(Id::new()).to_string(),
        Scope::Person(Id::new()).to_string(),
        Scope::Person(Id::new()).to_string(),
        Scope::Person(Id::new()).to_string(),
    );
    let kinds = |device: &donghanh_core::Device| -> Vec<(String, &'static str)> {
        device
            .store()
            .read(|r| r.pending_scope_work())
            .unwrap()
            .into_iter()
            .map(|t| match t {
                ScopeTask::Bootstrap { scope, .. } => (scope, "bootstrap"),
                ScopeTask::Purge { scope, .. } => (scope, "purge"),
                ScopeTask::Ack { scope, .. } => (scope, "ack"),
            })
            .collect()
    };
    // First page, from cursor 0, read at op 100: its grant needs no snapshot.
    device
        .store()
        .write(|w| w.apply_page(&page_of(vec![grant(10, &a)], 50, 100)))
        .unwrap();
    // Second page: a grant at or below 100 came whole with the pull.
    device
        .store()
        .write(|w| w.apply_page(&page_of(vec![grant(52, &b)], 60, 140)))
        .unwrap();
    assert_eq!(kinds(&device), vec![(a.clone(), "ack"), (b.clone(), "ack")]);
    // Once a revoke is met the shortcut ends (a scope purged on the way lost what the pull
    // had brought): a grant at or below 100 now takes a snapshot, and one after 100 always.
    let revoke = ScopeEvent {
        op_id: 61,
        scope: a.clone(),
        kind: ScopeEventKind::Revoke,
    };
    device
        .store()
        .write(|w| w.apply_page(&page_of(vec![revoke, grant(70, &d)], 80, 150)))
        .unwrap();
    device
        .store()
        .write(|w| w.apply_page(&page_of(vec![grant(120, &c)], 130, 150)))
        .unwrap();
    let work = kinds(&device);
    assert_eq!(
        work[2..],
        [(a, "purge"), (d, "bootstrap"), (c, "bootstrap")]
    );
}
