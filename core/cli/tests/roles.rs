//! The `donghanh` command line of every role against a real server: the contract commands of
//! enrolment, sync, assignment, tasks, sessions, attendance and supervision, as a script runs
//! them. The real binary on real files; the real server on loopback.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

use donghanh_core::domain::Role;
use donghanh_e2e::{PASSWORD, PIN, TestServer};

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_donghanh"))
        .arg("--data")
        .arg(dir)
        .args(args)
        .env("DONGHANH_PIN", PIN)
        .env_remove("DONGHANH_PASSWORD")
        .output()
        .unwrap()
}

fn out(o: &Output) -> String {
    assert!(
        o.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn id(o: &Output) -> String {
    let text = out(o);
    assert_eq!(text.lines().count(), 1, "{text:?}");
    let line = text.trim().to_owned();
    assert_eq!(line.len(), 36, "{line:?}");
    line
}

/// Fails with one line, Vietnamese then English, containing `needle`.
fn fails(o: &Output, needle: &str) {
    assert!(
        !o.status.success(),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let err = String::from_utf8(o.stderr.clone()).unwrap();
    assert_eq!(err.lines().count(), 1, "{err:?}");
    assert!(
        err.starts_with("lỗi: ") && err.contains("| error: "),
        "{err:?}"
    );
    assert!(err.contains(needle), "{err:?} should say {needle:?}");
}

fn enroll(server: &TestServer, dir: &Path, username: &str) {
    let o = Command::new(env!("CARGO_BIN_EXE_donghanh"))
        .arg("--data")
        .arg(dir)
        .args(["enroll", "--server", &server.url, "--username", username])
        .env("DONGHANH_PIN", PIN)
        .env("DONGHANH_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    out(&o);
}

#[test]
fn a_commune_works_a_day_through_the_command_line() {
    let server = TestServer::start();
    let _ = server.add_user("gs.minh", Role::Supervisor);
    let _ = server.add_user_at("tnv.hoa", Role::Volunteer, server.team, None);
    let _ = server.add_user_at("tnv.lan", Role::Volunteer, server.team, None);
    let _ = server.add_user_at(
        "tv.thu",
        Role::Counsellor,
        server.commune,
        Some(server.point),
    );
    let phones = tempfile::tempdir().unwrap();
    let (sup, hoa, lan, thu) = (
        phones.path().join("sup"),
        phones.path().join("hoa"),
        phones.path().join("lan"),
        phones.path().join("thu"),
    );
    for (dir, user) in [
        (&sup, "gs.minh"),
        (&hoa, "tnv.hoa"),
        (&lan, "tnv.lan"),
        (&thu, "tv.thu"),
    ] {
        enroll(&server, dir, user);
    }

    // The supervisor opens a case, assigns it and a follow-up to Hoa.
    assert_eq!(
        out(&run(&sup, &["sync"])).trim(),
        "pushed 0 rejected 0 pulled 0 purged 0"
    );
    let person = id(&run(
        &sup,
        &[
            "person",
            "add",
            "--name",
            "Trịnh Văn Dòng Lệnh",
            "--birth",
            "1987-03-04",
            "--sex",
            "male",
        ],
    ));
    let _ = id(&run(
        &sup,
        &[
            "episode",
            "add",
            "--person",
            &person,
            "--kind",
            "post-rehab",
            "--start",
            "2026-10-01",
        ],
    ));
    fails(
        &run(
            &sup,
            &[
                "case",
                "assign",
                "--person",
                &person,
                "--to",
                "tnv.khong-co",
            ],
        ),
        "user",
    );
    let _ = id(&run(
        &sup,
        &["case", "assign", "--person", &person, "--to", "tnv.hoa"],
    ));
    let task = id(&run(
        &sup,
        &[
            "task",
            "add",
            "--person",
            &person,
            "--assignee",
            "tnv.hoa",
            "--due",
            "2026-12-01",
            "--reason",
            "Hỗ trợ làm lại CCCD",
        ],
    ));
    let synced = out(&run(&sup, &["sync"]));
    assert!(synced.starts_with("pushed 4 rejected 0 "), "{synced}");

    // Hoa's phone: her person, her task; she completes it.
    let synced = out(&run(&hoa, &["sync"]));
    assert!(synced.contains("rejected 0"), "{synced}");
    let people = out(&run(&hoa, &["person", "list"]));
    assert_eq!(people.lines().count(), 1);
    assert!(
        people.starts_with(&format!("{person}\tTrịnh Văn Dòng Lệnh")),
        "{people}"
    );
    let tasks = out(&run(&hoa, &["task", "list"]));
    assert_eq!(tasks.lines().count(), 1, "{tasks}");
    assert!(tasks.starts_with(&format!(
        "{task}\t2026-12-01\t{person}\tHỗ trợ làm lại CCCD"
    )));
    out(&run(&hoa, &["task", "done", &task]));
    assert!(out(&run(&hoa, &["task", "list"])).is_empty());
    assert!(out(&run(&hoa, &["sync"])).starts_with("pushed 1 rejected 0"));
    // Lan holds nothing and is assigned nothing.
    out(&run(&lan, &["sync"]));
    assert!(out(&run(&lan, &["person", "list"])).is_empty());
    assert!(out(&run(&lan, &["task", "list"])).is_empty());

    // The counsellor plans a group session at her point and takes attendance offline.
    let point = server.point.to_string();
    let session = id(&run(
        &thu,
        &[
            "session",
            "add",
            "--point",
            &point,
            "--kind",
            "group",
            "--topic",
            "Phòng chống tái nghiện",
            "--at",
            "2026-11-20T09:00:00+07:00",
        ],
    ));
    let _ = id(&run(
        &thu,
        &[
            "attendance",
            "mark",
            "--session",
            &session,
            "--person",
            &person,
        ],
    ));
    let _ = id(&run(
        &thu,
        &[
            "attendance",
            "mark",
            "--session",
            &session,
            "--walk-ins",
            "2",
        ],
    ));
    fails(
        &run(
            &thu,
            &[
                "attendance",
                "mark",
                "--session",
                &session,
                "--person",
                &person,
                "--status",
                "late",
            ],
        ),
        "attendance",
    );
    fails(
        &run(
            &thu,
            &[
                "attendance",
                "mark",
                "--session",
                &task,
                "--person",
                &person,
            ],
        ),
        "session",
    );
    assert!(out(&run(&thu, &["sync"])).starts_with("pushed 3 rejected 0"));

    // The supervisor sees the session and who came, and writes a note on Hoa.
    out(&run(&sup, &["sync"]));
    let sessions = out(&run(&sup, &["session", "list"]));
    assert!(
        sessions.starts_with(&format!("{session}\t{point}\t")),
        "{sessions}"
    );
    assert!(sessions.contains("Phòng chống tái nghiện"));
    let rows = out(&run(&sup, &["attendance", "list", "--session", &session]));
    assert_eq!(rows.lines().count(), 2, "{rows}");
    assert!(rows.contains(&format!("\t{person}\tpresent")), "{rows}");
    assert!(rows.contains("\twalk-ins=2\tpresent"), "{rows}");
    let note = id(&run(
        &sup,
        &[
            "supervision",
            "add",
            "--volunteer",
            "tnv.hoa",
            "--notes",
            "Cần thăm đều hơn",
        ],
    ));
    assert!(out(&run(&sup, &["sync"])).starts_with("pushed 1 rejected 0"));
    // No volunteer receives it.
    for phone in [&hoa, &lan] {
        out(&run(phone, &["sync"]));
        assert!(out(&run(phone, &["rejected"])).is_empty());
    }
    assert!(!note.is_empty());

    // A volunteer cannot assign: she has no directory.
    fails(
        &run(
            &hoa,
            &["case", "assign", "--person", &person, "--to", "tnv.lan"],
        ),
        "user",
    );
}

#[test]
fn a_supervisor_lists_and_restores_a_conflict_and_a_volunteer_is_refused() {
    let server = TestServer::start();
    let _ = server.add_user("gs.minh", Role::Supervisor);
    let _ = server.add_user_at("tnv.hoa", Role::Volunteer, server.team, None);
    let phones = tempfile::tempdir().unwrap();
    let (sup, hoa) = (phones.path().join("sup"), phones.path().join("hoa"));
    enroll(&server, &sup, "gs.minh");
    enroll(&server, &hoa, "tnv.hoa");
    out(&run(&sup, &["sync"]));
    let today = donghanh_core::domain::vn_date(chrono::Utc::now());
    let (start, today) = (
        (today - chrono::Duration::days(400)).to_string(),
        today.to_string(),
    );
    let person = id(&run(
        &sup,
        &[
            "person",
            "add",
            "--name",
            "Phan Văn Hai Ý",
            "--birth",
            "1980-01-01",
            "--sex",
            "male",
        ],
    ));
    let episode = id(&run(
        &sup,
        &[
            "episode",
            "add",
            "--person",
            &person,
            "--kind",
            "post-rehab",
            "--start",
            &start,
            "--after",
            "voluntary",
        ],
    ));
    out(&run(
        &sup,
        &["episode", "propose", "--id", &episode, "--on", &start],
    ));
    out(&run(
        &sup,
        &["episode", "activate", "--id", &episode, "--on", &start],
    ));
    let _ = id(&run(
        &sup,
        &["case", "assign", "--person", &person, "--to", "tnv.hoa"],
    ));
    out(&run(&sup, &["sync"]));
    out(&run(&hoa, &["sync"]));

    // Offline, the supervisor records the term served; the volunteer that the person moved.
    out(&run(
        &sup,
        &["episode", "complete", "--id", &episode, "--on", &today],
    ));
    out(&run(
        &hoa,
        &[
            "episode",
            "terminate",
            "--id",
            &episode,
            "--on",
            &today,
            "--reason",
            "moved",
        ],
    ));
    assert!(out(&run(&sup, &["sync"])).starts_with("pushed 1 rejected 0"));
    assert!(out(&run(&hoa, &["sync"])).starts_with("pushed 1 rejected 0"));

    // The volunteer may not look at conflicts.
    fails(&run(&hoa, &["conflict", "list"]), "only a supervisor");
    let list = out(&run(&sup, &["conflict", "list"]));
    assert_eq!(list.lines().count(), 1, "{list}");
    let fields: Vec<&str> = list.trim_end().split('\t').collect();
    assert_eq!(
        fields[1..6],
        [
            episode.as_str(),
            "episode",
            "status",
            r#"{"terminated":"moved"}"#,
            "completed"
        ],
        "{list}"
    );
    let conflict = fields[0].to_owned();
    fails(
        &run(
            &hoa,
            &["conflict", "resolve", "--id", &conflict, "--restore"],
        ),
        "only a supervisor",
    );
    assert!(
        out(&run(
            &sup,
            &["conflict", "resolve", "--id", &conflict, "--restore"]
        ))
        .is_empty()
    );
    fails(
        &run(&sup, &["conflict", "resolve", "--id", &conflict]),
        "no conflict with this id",
    );
    assert!(out(&run(&sup, &["conflict", "list"])).is_empty());
    // The restored value reaches the volunteer's phone.
    out(&run(&hoa, &["sync"]));
    let episodes = out(&run(&hoa, &["episode", "list", "--person", &person]));
    assert!(
        episodes.contains(&format!("{episode}\tpost_rehab\t{start}\tcompleted")),
        "{episodes}"
    );
}
