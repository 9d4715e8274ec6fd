//! End to end: the real server on loopback, real devices on real encrypted files.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use chrono::{Duration, Utc};
use donghanh_core::domain::{
    Assignment, Episode, EpisodeKind, FollowUpTask, Person, PriorRehab, Role, Sex, Visit,
};
use donghanh_core::{Error, search};
use donghanh_e2e::{TestServer, reopen};

fn person(name: &str) -> Person {
    let mut p = Person::new(
        name,
        chrono::NaiveDate::from_ymd_opt(1989, 4, 5).unwrap(),
        Sex::Male,
    );
    p.phone = Some("0987654321".into());
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

#[test]
fn a_case_goes_from_supervisor_to_volunteer_and_away_again() {
    let server = TestServer::start();
    let _ = server.add_user("gs.minh", Role::Supervisor);
    let hoa_id = server.add_user("tnv.hoa", Role::Volunteer);
    let lan_id = server.add_user("tnv.lan", Role::Volunteer);
    let phones = tempfile::tempdir().unwrap();
    let (sup_dir, hoa_dir, lan_dir) = (
        phones.path().join("sup"),
        phones.path().join("hoa"),
        phones.path().join("lan"),
    );
    let sup = server.enroll(&sup_dir, "gs.minh");
    let hoa = server.enroll(&hoa_dir, "tnv.hoa");
    let lan = server.enroll(&lan_dir, "tnv.lan");

    // The supervisor opens a case on the phone, offline, and assigns it to Hoa.
    let today = donghanh_core::domain::vn_date(Utc::now());
    let p = person("Lê Văn Được Giữ Kín");
    sup.add_person(&p).unwrap();
    let episode = Episode::new(p.id, EpisodeKind::PostRehab, today - Duration::days(20))
        .with_after(PriorRehab::Voluntary);
    sup.add_episode(&episode).unwrap();
    let mut assignment = Assignment::new(p.id, episode.id, hoa_id, today);
    sup.add_record(&assignment).unwrap();
    let mut task = FollowUpTask::new(p.id, today + Duration::days(2), "Thăm gia đình");
    task.assignee = Some(hoa_id);
    sup.add_task(&task).unwrap();
    let r = sup.sync().unwrap();
    assert_eq!((r.pushed, r.rejected), (4, 0), "{r:?}");
    assert_eq!(sup.pending_changes().unwrap(), 0);

    // Hoa's phone receives the case, the task, and nothing else; Lan's receives nothing.
    let r = hoa.sync().unwrap();
    assert!(r.pulled >= 4, "{r:?}");
    assert_eq!(hoa.person(p.id).unwrap(), p);
    assert_eq!(hoa.find_people("duoc giu").unwrap().len(), 1);
    assert_eq!(hoa.open_tasks().unwrap().len(), 1);
    lan.sync().unwrap();
    assert!(lan.people().unwrap().is_empty());

    // Hoa records a visit offline; after both sync, the supervisor sees it.
    let visit = Visit::new(
        p.id,
        Utc::now() - Duration::hours(1),
        "Ghi chú riêng tư: gia đình hợp tác",
    );
    hoa.add_visit(&visit).unwrap();
    let r = hoa.sync().unwrap();
    assert_eq!(r.pushed, 1);
    sup.sync().unwrap();
    let seen = sup.visits(p.id).unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].observations, "Ghi chú riêng tư: gia đình hợp tác");

    // A sync with nothing new moves nothing and repeats nothing.
    let r = hoa.sync().unwrap();
    assert_eq!((r.pushed, r.rejected, r.purged), (0, 0, 0));
    assert_eq!(sup.visits(p.id).unwrap().len(), 1);

    // Reassigned to Lan: Hoa's next sync removes the case from her phone, and no marker of it
    // is left in any file; Lan receives it whole (bootstrap of a scope granted late).
    assignment.helper = Some(lan_id);
    sup.update_record(&assignment).unwrap();
    sup.sync().unwrap();
    let r = hoa.sync().unwrap();
    assert_eq!(r.purged, 1, "{r:?}");
    assert!(matches!(hoa.person(p.id), Err(Error::NotFound { .. })));
    assert!(hoa.find_people("duoc").unwrap().is_empty());
    drop(hoa);
    assert_no_marker(
        &hoa_dir,
        &["Lê Văn Được Giữ Kín", "0987654321", "gia đình hợp tác"],
    );
    let hoa = reopen(&hoa_dir).unwrap();
    assert!(hoa.people().unwrap().is_empty());

    lan.sync().unwrap();
    assert_eq!(lan.person(p.id).unwrap(), p);
    assert_eq!(
        lan.episodes(p.id).unwrap().len(),
        1,
        "the episode arrived by bootstrap"
    );
    assert_eq!(lan.visits(p.id).unwrap().len(), 1);

    // Hoa's phone is lost: the admin revokes it; at its next contact it is refused and wiped.
    let (hoa_device, _) = hoa.enrollment().unwrap().unwrap();
    server.revoke(hoa_device);
    assert!(matches!(hoa.sync(), Err(Error::DeviceRevoked)));
    drop(hoa);
    assert!(matches!(reopen(&hoa_dir), Err(Error::Wiped)));
    assert_no_marker(&hoa_dir, &["Lê Văn Được Giữ Kín"]);
}

#[test]
fn a_new_phone_receives_each_record_once() {
    let server = TestServer::start();
    let _ = server.add_user("gs.minh", Role::Supervisor);
    let phones = tempfile::tempdir().unwrap();
    let old = server.enroll(&phones.path().join("old"), "gs.minh");
    let today = donghanh_core::domain::vn_date(Utc::now());
    let mut people = Vec::new();
    for name in ["Mạc Văn Một", "Mạc Thị Hai", "Mạc Văn Ba"] {
        let p = person(name);
        old.add_person(&p).unwrap();
        let episode = Episode::new(p.id, EpisodeKind::PostRehab, today - Duration::days(30))
            .with_after(PriorRehab::Voluntary);
        old.add_episode(&episode).unwrap();
        for h in [3, 2] {
            let v = Visit::new(p.id, Utc::now() - Duration::hours(h), "thăm định kỳ");
            old.add_visit(&v).unwrap();
        }
        people.push(p);
    }
    assert_eq!(old.sync().unwrap().pushed, 12);

    // The supervisor's new phone: every case was granted before its first pull, so the pull
    // brings each record once and no scope is downloaded again from a snapshot.
    let new = server.enroll(&phones.path().join("new"), "gs.minh");
    let r = new.sync().unwrap();
    assert_eq!(r.pulled, 12, "{r:?}");
    for p in &people {
        assert_eq!(new.person(p.id).unwrap(), *p);
        assert_eq!(new.episodes(p.id).unwrap().len(), 1);
        assert_eq!(new.visits(p.id).unwrap().len(), 2);
    }
    assert_eq!(new.sync().unwrap().pulled, 0);
}

#[test]
fn a_pull_of_many_pages_brings_every_record_once() {
    // Pages of at most 100 changes: the new phone applies a dozen, each while the next one
    // is already on its way.
    let server = TestServer::start_with(donghanh_server::Config {
        pull_page: (100, 1024 * 1024),
        ..donghanh_server::Config::default()
    });
    let _ = server.add_user("gs.minh", Role::Supervisor);
    let phones = tempfile::tempdir().unwrap();
    let old = server.enroll(&phones.path().join("old"), "gs.minh");
    let p = person("Mạc Văn Nhiều Trang");
    old.add_person(&p).unwrap();
    let n = 1_150;
    for i in 0..n {
        let v = Visit::new(
            p.id,
            Utc::now() - Duration::minutes(i),
            format!("lần thăm thứ {i}"),
        );
        old.add_visit(&v).unwrap();
    }
    assert_eq!(old.sync().unwrap().pushed, n as usize + 1);
    let new = server.enroll(&phones.path().join("new"), "gs.minh");
    let r = new.sync().unwrap();
    assert_eq!(r.pulled, n as usize + 1, "{r:?}");
    let mut seen: Vec<String> = new
        .visits(p.id)
        .unwrap()
        .into_iter()
        .map(|v| v.observations)
        .collect();
    seen.sort();
    let mut expected: Vec<String> = (0..n).map(|i| format!("lần thăm thứ {i}")).collect();
    expected.sort();
    assert_eq!(seen, expected);
    assert_eq!(new.sync().unwrap().pulled, 0);
}

#[test]
fn concurrent_edits_of_one_field_keep_the_later_and_record_a_conflict() {
    let server = TestServer::start();
    let _ = server.add_user("gs.minh", Role::Supervisor);
    let hoa_id = server.add_user("tnv.hoa", Role::Volunteer);
    let phones = tempfile::tempdir().unwrap();
    let sup = server.enroll(&phones.path().join("sup"), "gs.minh");
    let hoa = server.enroll(&phones.path().join("hoa"), "tnv.hoa");
    let today = donghanh_core::domain::vn_date(Utc::now());
    let p = person("Trần Văn Hai Máy");
    sup.add_person(&p).unwrap();
    let episode =
        Episode::new(p.id, EpisodeKind::PostRehab, today).with_after(PriorRehab::Voluntary);
    sup.add_episode(&episode).unwrap();
    sup.add_record(&Assignment::new(p.id, episode.id, hoa_id, today))
        .unwrap();
    sup.sync().unwrap();
    hoa.sync().unwrap();

    // Both change the phone number offline, from the same version.
    let mut on_sup = sup.person(p.id).unwrap();
    on_sup.phone = Some("0911111111".into());
    sup.update_record(&on_sup).unwrap();
    let mut on_hoa = hoa.person(p.id).unwrap();
    on_hoa.phone = Some("0922222222".into());
    hoa.update_record(&on_hoa).unwrap();
    sup.sync().unwrap();
    let r = hoa.sync().unwrap();
    assert_eq!((r.pushed, r.rejected), (1, 0));
    // The later commit (Hoa's) is the value everyone ends with.
    sup.sync().unwrap();
    assert_eq!(
        sup.person(p.id).unwrap().phone.as_deref(),
        Some("0922222222")
    );
    assert_eq!(
        hoa.person(p.id).unwrap().phone.as_deref(),
        Some("0922222222")
    );
    // And the supervisor has a conflict to look at, through her phone: the value kept, the
    // one that lost, and whose device lost it.
    let [c] = sup.conflicts().unwrap().try_into().unwrap();
    assert_eq!(
        (c.kind.as_str(), c.field.as_str(), c.record_id, c.person),
        ("person", "phone", p.id, Some(p.id))
    );
    assert_eq!(
        (c.kept_text().as_deref(), c.lost_text().as_deref()),
        (Some("0922222222"), Some("0911111111"))
    );
    assert_eq!(c.lost_by_device, sup.enrollment().unwrap().unwrap().0);
    // Its values never reach `Debug` (what a log line would print).
    let debug = format!("{c:?}");
    assert!(
        !debug.contains("0911111111") && !debug.contains("0922222222"),
        "{debug}"
    );

    // A volunteer is refused, clearly, and can resolve nothing.
    assert!(matches!(hoa.conflicts(), Err(Error::SupervisorOnly)));
    assert!(matches!(
        hoa.resolve_conflict(c.id, true),
        Err(Error::SupervisorOnly)
    ));
    // An unknown conflict is not found.
    assert!(matches!(
        sup.resolve_conflict(uuid::Uuid::new_v4(), false),
        Err(Error::NotFound { kind: "conflict" })
    ));

    // The supervisor restores the losing value: it reaches both phones at their next sync.
    sup.resolve_conflict(c.id, true).unwrap();
    assert!(sup.conflicts().unwrap().is_empty());
    assert!(matches!(
        sup.resolve_conflict(c.id, true),
        Err(Error::NotFound { kind: "conflict" })
    ));
    sup.sync().unwrap();
    hoa.sync().unwrap();
    for phone in [&sup, &hoa] {
        assert_eq!(
            phone.person(p.id).unwrap().phone.as_deref(),
            Some("0911111111")
        );
    }
}

#[test]
fn a_conflict_kept_as_it_is_changes_nothing_and_online_calls_may_run_side_by_side() {
    let server = TestServer::start();
    let _ = server.add_user("gs.minh", Role::Supervisor);
    let hoa_id = server.add_user("tnv.hoa", Role::Volunteer);
    let phones = tempfile::tempdir().unwrap();
    let sup = server.enroll(&phones.path().join("sup"), "gs.minh");
    let hoa = server.enroll(&phones.path().join("hoa"), "tnv.hoa");
    let today = donghanh_core::domain::vn_date(Utc::now());
    let p = person("Trần Thị Giữ Nguyên");
    sup.add_person(&p).unwrap();
    let episode =
        Episode::new(p.id, EpisodeKind::PostRehab, today).with_after(PriorRehab::Voluntary);
    sup.add_episode(&episode).unwrap();
    sup.add_record(&Assignment::new(p.id, episode.id, hoa_id, today))
        .unwrap();
    sup.sync().unwrap();
    hoa.sync().unwrap();
    let mut on_sup = sup.person(p.id).unwrap();
    on_sup.address = Some("Thôn Một".into());
    sup.update_record(&on_sup).unwrap();
    let mut on_hoa = hoa.person(p.id).unwrap();
    on_hoa.address = Some("Thôn Hai".into());
    hoa.update_record(&on_hoa).unwrap();
    sup.sync().unwrap();
    hoa.sync().unwrap();

    // Sync rounds and conflict calls on one device from several threads: each trades the
    // refresh token in turn, so none is refused for using one another already traded.
    std::thread::scope(|s| {
        let calls: Vec<_> = (0..3)
            .map(|i| {
                let sup = &sup;
                s.spawn(move || {
                    if i % 2 == 0 {
                        sup.conflicts().map(|c| c.len())
                    } else {
                        sup.sync().map(|_| 1)
                    }
                })
            })
            .collect();
        for call in calls {
            assert_eq!(call.join().unwrap().unwrap(), 1);
        }
    });

    let [c] = sup.conflicts().unwrap().try_into().unwrap();
    assert_eq!(c.field, "address");
    sup.resolve_conflict(c.id, false).unwrap();
    assert!(sup.conflicts().unwrap().is_empty());
    assert_eq!(sup.sync().unwrap().pulled, 0);
    assert_eq!(
        sup.person(p.id).unwrap().address.as_deref(),
        Some("Thôn Hai")
    );
    // The device still syncs afterwards: no refresh token was lost.
    sup.sync().unwrap();
}

#[test]
fn a_volunteer_cannot_enroll_with_a_wrong_password_and_nothing_is_left_behind() {
    let server = TestServer::start();
    let _ = server.add_user("tnv.hoa", Role::Volunteer);
    let dir = tempfile::tempdir().unwrap();
    let phone = dir.path().join("phone");
    std::fs::create_dir_all(&phone).unwrap();
    let keystore = donghanh_core::FileKeyStore::create(phone.join("device.key")).unwrap();
    let r = donghanh_core::Device::enroll(
        &phone,
        &keystore,
        donghanh_e2e::PIN,
        &server.url,
        "tnv.hoa",
        "sai",
        "x",
    );
    match r {
        Err(Error::Server { code, message }) => {
            assert_eq!(code, "unauthorised");
            assert!(!message.contains("sai"));
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(!donghanh_core::Device::store_path(&phone).exists());
    let r = donghanh_core::Device::enroll(
        &phone,
        &keystore,
        donghanh_e2e::PIN,
        "http://127.0.0.1:9",
        "tnv.hoa",
        "x",
        "x",
    );
    assert!(matches!(r, Err(Error::Network(_))), "{r:?}");
}

#[test]
fn a_server_speaking_another_protocol_version_is_refused_before_its_answer_is_used() {
    use std::io::{Read, Write};
    // Something listening that answers 200 with a plausible body but another version.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let answer = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut buf = [0u8; 4096];
        let _ = stream.read(&mut buf).unwrap();
        let body = r#"{"device_id":"11111111-1111-4111-8111-111111111111","user_id":"22222222-2222-4222-8222-222222222222","role":"volunteer","tokens":{"access_token":"a","access_expires_in":900,"refresh_token":"r"},"key_lease_seconds":100}"#;
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-donghanh-protocol: 2\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(response.as_bytes()).unwrap();
    });
    let dir = tempfile::tempdir().unwrap();
    let phone = dir.path().join("phone");
    std::fs::create_dir_all(&phone).unwrap();
    let keystore = donghanh_core::FileKeyStore::create(phone.join("device.key")).unwrap();
    let r = donghanh_core::Device::enroll(
        &phone,
        &keystore,
        donghanh_e2e::PIN,
        &url,
        "tnv.hoa",
        "x",
        "x",
    );
    answer.join().unwrap();
    match r {
        Err(Error::Network(m)) => assert!(m.contains("protocol version 1"), "{m}"),
        other => panic!("expected a protocol refusal, got {other:?}"),
    }
    assert!(!donghanh_core::Device::store_path(&phone).exists());
}
