//! The `donghanh` command line as scripts use it: the real binary on real files.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

const PIN: &str = "482615";

fn donghanh(args: &[&str]) -> Output {
    donghanh_env(args, &[])
}

fn donghanh_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_donghanh"));
    cmd.args(args).env_remove("DONGHANH_PIN");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

/// Succeeds and prints one line: the new id.
fn ok_id(o: &Output) -> String {
    assert!(o.status.success(), "failed: {}", stderr(o));
    let out = stdout(o);
    let line = out.trim();
    assert_eq!(out.lines().count(), 1, "one line expected: {out:?}");
    assert_eq!(line.len(), 36, "an id expected: {line:?}");
    line.to_owned()
}

/// Fails with exactly one line on stderr that says `needle`, and does not echo `secret`.
fn fails_with(o: &Output, needle: &str, secret: &str) {
    assert!(!o.status.success(), "expected failure, got: {}", stdout(o));
    let err = stderr(o);
    assert_eq!(err.lines().count(), 1, "one line on stderr: {err:?}");
    assert!(err.contains(needle), "{err:?} should contain {needle:?}");
    assert!(err.starts_with("lỗi: "), "Vietnamese first: {err:?}");
    assert!(err.contains("| error: "), "English second: {err:?}");
    if !secret.is_empty() {
        assert!(
            !err.contains(secret),
            "the error echoes user input: {err:?}"
        );
    }
    assert!(stdout(o).is_empty());
}

fn init(dir: &Path) {
    let d = dir.to_str().unwrap();
    let o = donghanh(&["--data", d, "init", "--pin", PIN]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn volunteer_records_people_and_visits_offline() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("phone");
    let d = dir.to_str().unwrap();
    init(&dir);

    let an = ok_id(&donghanh(&[
        "--data",
        d,
        "--pin",
        PIN,
        "person",
        "add",
        "--name",
        "Nguyễn Văn An",
        "--birth",
        "1990-04-12",
        "--sex",
        "male",
        "--phone",
        "0912345678",
        "--address",
        "Thôn Đông",
    ]));
    // Global options after the subcommand, and the PIN from the environment.
    let binh = ok_id(&donghanh_env(
        &[
            "person",
            "add",
            "--name",
            "Trần Thị Bình",
            "--birth",
            "1994-09-30",
            "--sex",
            "female",
            "--data",
            d,
        ],
        &[("DONGHANH_PIN", PIN)],
    ));

    let found = donghanh(&["--data", d, "--pin", PIN, "person", "find", "nguyen an"]);
    assert!(found.status.success());
    let out = stdout(&found);
    assert_eq!(out.lines().count(), 1);
    assert!(
        out.starts_with(&format!("{an}\tNguyễn Văn An\t1990-04-12\tmale")),
        "{out:?}"
    );
    let found = donghanh(&["person", "find", "BINH", "--data", d, "--pin", PIN]);
    assert!(stdout(&found).starts_with(&binh));
    let none = donghanh(&["--data", d, "--pin", PIN, "person", "find", "xyz"]);
    assert!(none.status.success() && stdout(&none).is_empty());

    let v1 = ok_id(&donghanh(&[
        "--data",
        d,
        "--pin",
        PIN,
        "visit",
        "add",
        "--person",
        &an,
        "--notes",
        "Gia đình hợp tác;\nhẹn tuần sau",
        "--at",
        "2026-10-02T09:30:00+07:00",
    ]));
    let v2 = ok_id(&donghanh(&[
        "--data",
        d,
        "--pin",
        PIN,
        "visit",
        "add",
        "--person",
        &an,
        "--notes",
        "Gọi điện hỏi thăm",
        "--mode",
        "phone",
    ]));
    let list = donghanh(&["--data", d, "--pin", PIN, "visit", "list", "--person", &an]);
    assert!(list.status.success());
    let lines: Vec<String> = stdout(&list).lines().map(str::to_owned).collect();
    assert_eq!(
        lines.len(),
        2,
        "one line per visit, even with a newline in the notes"
    );
    assert!(
        lines[0].starts_with(&format!("{v1}\t2026-10-02T02:30:00+00:00")),
        "{lines:?}"
    );
    assert!(lines[0].ends_with("Gia đình hợp tác;\\nhẹn tuần sau"));
    assert!(lines[1].starts_with(&v2) && lines[1].contains("Gọi điện hỏi thăm"));

    let task = ok_id(&donghanh(&[
        "--data",
        d,
        "--pin",
        PIN,
        "task",
        "add",
        "--person",
        &binh,
        "--due",
        "2026-12-01",
        "--reason",
        "Giới thiệu học nghề",
    ]));
    let tasks = donghanh(&["--data", d, "--pin", PIN, "task", "list"]);
    assert!(stdout(&tasks).starts_with(&task));
    let caseload = donghanh(&["--data", d, "--pin", PIN, "caseload"]);
    assert!(
        stdout(&caseload).lines().next().unwrap().starts_with(&binh),
        "due task first"
    );
    assert!(
        donghanh(&["--data", d, "--pin", PIN, "task", "done", &task])
            .status
            .success()
    );
    assert!(stdout(&donghanh(&["--data", d, "--pin", PIN, "task", "list"])).is_empty());
    let pending = donghanh(&["--data", d, "--pin", PIN, "pending"]);
    assert_eq!(stdout(&pending).trim(), "6");

    // Nothing typed above is in any file of the data directory.
    for entry in std::fs::read_dir(&dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        for marker in [
            "Nguyễn Văn An",
            "nguyen van an",
            "0912345678",
            "Thôn Đông",
            "hẹn tuần sau",
            "Bình",
        ] {
            assert!(
                !bytes.windows(marker.len()).any(|w| w == marker.as_bytes()),
                "{marker}"
            );
        }
    }
}

#[test]
fn every_error_is_one_clear_line_and_a_failure_status() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("phone");
    let d = dir.to_str().unwrap();

    // Missing store.
    fails_with(
        &donghanh(&["--data", d, "--pin", PIN, "person", "list"]),
        "initialise it first",
        "",
    );
    init(&dir);
    // Initialising twice.
    fails_with(
        &donghanh(&["--data", d, "init", "--pin", PIN]),
        "already exists",
        "",
    );
    // Wrong PIN; no PIN.
    fails_with(
        &donghanh(&["--data", d, "--pin", "999999", "person", "list"]),
        "wrong PIN",
        "999999",
    );
    fails_with(
        &donghanh(&["--data", d, "person", "list"]),
        "PIN is required",
        "",
    );
    // Unknown id; malformed id.
    let unknown = "7d3c1f7e-8a0e-4b4e-9d0f-2f1f5a0c9e11";
    fails_with(
        &donghanh(&[
            "--data", d, "--pin", PIN, "visit", "list", "--person", unknown,
        ]),
        "no person with this id",
        "",
    );
    fails_with(
        &donghanh(&[
            "--data",
            d,
            "--pin",
            PIN,
            "visit",
            "list",
            "--person",
            "Nguyễn Văn Lạc",
        ]),
        "invalid value for --person",
        "Lạc",
    );
    // Invalid date: the mistyped value (here a name) is never echoed.
    let o = donghanh(&[
        "--data",
        d,
        "--pin",
        PIN,
        "person",
        "add",
        "--name",
        "Lê Văn Tư",
        "--birth",
        "Lê Văn Tư",
        "--sex",
        "male",
    ]);
    fails_with(&o, "invalid value for --birth", "Tư");
    assert_eq!(o.status.code(), Some(2));
    let o = donghanh(&[
        "--data",
        d,
        "--pin",
        PIN,
        "person",
        "add",
        "--name",
        "Lê Văn Tư",
        "--birth",
        "1990-02-30",
        "--sex",
        "male",
    ]);
    fails_with(&o, "--birth", "Tư");
    // Domain validation: birth in the future, blank name, visit in the future.
    fails_with(
        &donghanh(&[
            "--data",
            d,
            "--pin",
            PIN,
            "person",
            "add",
            "--name",
            "Lê Văn Tư",
            "--birth",
            "2999-01-01",
            "--sex",
            "male",
        ]),
        "invalid input",
        "Tư",
    );
    fails_with(
        &donghanh(&[
            "--data",
            d,
            "--pin",
            PIN,
            "person",
            "add",
            "--name",
            "   ",
            "--birth",
            "1990-01-01",
            "--sex",
            "male",
        ]),
        "invalid input",
        "",
    );
    let id = ok_id(&donghanh(&[
        "--data",
        d,
        "--pin",
        PIN,
        "person",
        "add",
        "--name",
        "Lê Văn Tư",
        "--birth",
        "1990-01-01",
        "--sex",
        "male",
    ]));
    fails_with(
        &donghanh(&[
            "--data",
            d,
            "--pin",
            PIN,
            "visit",
            "add",
            "--person",
            &id,
            "--notes",
            "ghi chú bí mật",
            "--at",
            "2999-01-01T00:00:00Z",
        ]),
        "thời điểm không được ở tương lai",
        "bí mật",
    );
    fails_with(
        &donghanh(&[
            "--data", d, "--pin", PIN, "visit", "add", "--person", &id, "--notes", "ghi chú",
            "--at", "hôm qua",
        ]),
        "invalid value for --at",
        "hôm qua",
    );
    // Unknown command and option.
    let o = donghanh(&["--data", d, "--pin", PIN, "fly"]);
    fails_with(&o, "unknown command", "");
    fails_with(
        &donghanh(&[
            "--data",
            d,
            "--pin",
            PIN,
            "person",
            "list",
            "--secret-name",
            "Lê Văn Tư",
        ]),
        "unknown argument",
        "Tư",
    );
    // None of the failures above wrote anything.
    let pending = donghanh(&["--data", d, "--pin", PIN, "pending"]);
    assert_eq!(stdout(&pending).trim(), "1");
}

#[test]
fn missing_device_key_is_reported_and_never_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("phone");
    let d = dir.to_str().unwrap();
    init(&dir);
    std::fs::remove_file(dir.join("device.key")).unwrap();
    fails_with(
        &donghanh(&["--data", d, "--pin", PIN, "person", "list"]),
        "device key is missing",
        "",
    );
    assert!(!dir.join("device.key").exists());
    assert!(dir.join("device.db").exists());
}

#[test]
fn demo_runs_offline_and_leaves_no_name_in_clear() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let d = dir.to_str().unwrap();
    let o = donghanh(&["--data", d, "demo"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("no file in the data directory holds a name in clear"),
        "{out}"
    );
    assert!(out.contains("Nguyễn Văn Hùng") && out.contains("Nguyễn Thị Lan"));
    // Reopening shows the same device.
    let again = donghanh(&["--data", d, "demo"]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(stdout(&again).contains("opening the existing device"));
}
