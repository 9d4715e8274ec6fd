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

/// `donghanh --data DIR --pin PIN ARGS…`
fn dev(dir: &Path, args: &[&str]) -> Output {
    let mut all = vec!["--data", dir.to_str().unwrap(), "--pin", PIN];
    all.extend_from_slice(args);
    donghanh(&all)
}

/// Succeeds and prints nothing.
fn ok_quiet(o: &Output) {
    assert!(o.status.success(), "failed: {}", stderr(o));
    assert!(stdout(o).is_empty(), "{}", stdout(o));
}

fn day(delta: i64) -> String {
    (donghanh_core::domain::vn_date(chrono::Utc::now()) + chrono::Duration::days(delta)).to_string()
}

#[test]
fn an_episode_is_proposed_activated_and_ended_and_refuses_a_second_end() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("phone");
    init(&dir);
    let person = ok_id(&dev(
        &dir,
        &[
            "person",
            "add",
            "--name",
            "Hà Văn Hồ Sơ",
            "--birth",
            "1985-02-03",
            "--sex",
            "male",
        ],
    ));
    let (start, opened, decided) = (day(-60), day(-50), day(-45));
    let draft = ok_id(&dev(
        &dir,
        &[
            "episode",
            "add",
            "--person",
            &person,
            "--kind",
            "post-rehab",
            "--start",
            &start,
        ],
    ));
    // A post-rehab draft without its prior rehab cannot be proposed.
    fails_with(
        &dev(
            &dir,
            &["episode", "propose", "--id", &draft, "--on", &opened],
        ),
        "after is required",
        "",
    );
    let episode = ok_id(&dev(
        &dir,
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
    // Not active yet: cannot end.
    fails_with(
        &dev(
            &dir,
            &["episode", "complete", "--id", &episode, "--on", &day(0)],
        ),
        "status cannot change from draft to completed",
        "",
    );
    ok_quiet(&dev(
        &dir,
        &["episode", "propose", "--id", &episode, "--on", &opened],
    ));
    ok_quiet(&dev(
        &dir,
        &["episode", "activate", "--id", &episode, "--on", &decided],
    ));
    // Before its start, in the future: refused; a relapse is not a plain reason.
    fails_with(
        &dev(
            &dir,
            &[
                "episode",
                "terminate",
                "--id",
                &episode,
                "--on",
                &day(-61),
                "--reason",
                "moved",
            ],
        ),
        "ended_on is before start",
        "",
    );
    fails_with(
        &dev(
            &dir,
            &[
                "episode",
                "terminate",
                "--id",
                &episode,
                "--on",
                &day(5),
                "--reason",
                "moved",
            ],
        ),
        "ended_on is in the future",
        "",
    );
    let o = dev(
        &dir,
        &[
            "episode",
            "terminate",
            "--id",
            &episode,
            "--on",
            &day(0),
            "--reason",
            "relapse",
        ],
    );
    fails_with(&o, "invalid value for --reason", "");
    assert_eq!(o.status.code(), Some(2));
    ok_quiet(&dev(
        &dir,
        &[
            "episode",
            "terminate",
            "--id",
            &episode,
            "--on",
            &day(0),
            "--reason",
            "moved",
        ],
    ));
    let o = dev(
        &dir,
        &["episode", "complete", "--id", &episode, "--on", &day(0)],
    );
    fails_with(&o, "status cannot change from terminated to completed", "");
    assert!(stderr(&o).contains("“đã chấm dứt”"), "{}", stderr(&o));
    fails_with(
        &dev(
            &dir,
            &["episode", "complete", "--id", &person, "--on", &day(0)],
        ),
        "no episode with this id",
        "",
    );
    let list = stdout(&dev(&dir, &["episode", "list", "--person", &person]));
    assert!(
        list.contains(&format!(
            "{episode}\tpost_rehab\t{start}\tterminated (moved)"
        )),
        "{list}"
    );
    assert!(
        list.contains(&format!("{draft}\tpost_rehab\t{start}\tdraft")),
        "{list}"
    );

    // A relapse ends another active episode on the day it was determined.
    let other = ok_id(&dev(
        &dir,
        &[
            "episode", "add", "--person", &person, "--kind", "ost", "--start", &start,
        ],
    ));
    ok_quiet(&dev(
        &dir,
        &["episode", "propose", "--id", &other, "--on", &opened],
    ));
    ok_quiet(&dev(
        &dir,
        &["episode", "activate", "--id", &other, "--on", &decided],
    ));
    fails_with(
        &dev(
            &dir,
            &[
                "episode",
                "relapse",
                "--id",
                &other,
                "--detected",
                &day(-3),
                "--determined-by",
                " ",
                "--on",
                &day(-1),
            ],
        ),
        "relapse",
        "",
    );
    ok_id(&dev(
        &dir,
        &[
            "episode",
            "relapse",
            "--id",
            &other,
            "--detected",
            &day(-3),
            "--determined-by",
            "Trung tâm Y tế xã",
            "--on",
            &day(-1),
        ],
    ));
    let list = stdout(&dev(&dir, &["episode", "list", "--person", &person]));
    assert!(
        list.contains(&format!("{other}\tost\t{start}\tterminated (relapse)")),
        "{list}"
    );
    // Person, three episodes, five status changes, one relapse.
    assert_eq!(stdout(&dev(&dir, &["pending"])).trim(), "11");
}

#[test]
fn sessions_drug_tests_support_and_referrals_from_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("phone");
    init(&dir);
    let person = ok_id(&dev(
        &dir,
        &[
            "person",
            "add",
            "--name",
            "Mai Thị Hỗ Trợ",
            "--birth",
            "1992-07-08",
            "--sex",
            "female",
        ],
    ));
    let unknown = "7d3c1f7e-8a0e-4b4e-9d0f-2f1f5a0c9e11";

    // Sessions: held once started, cancelled while planned, never both.
    let point = "5b0c6f0e-1d2a-4c3b-8e7f-9a8b7c6d5e4f";
    let past = ok_id(&dev(
        &dir,
        &[
            "session",
            "add",
            "--point",
            point,
            "--kind",
            "group",
            "--topic",
            "Kỹ năng sống",
            "--at",
            "2026-01-05T09:00:00+07:00",
        ],
    ));
    let later = ok_id(&dev(
        &dir,
        &[
            "session",
            "add",
            "--point",
            point,
            "--kind",
            "club",
            "--topic",
            "Câu lạc bộ",
            "--at",
            "2999-01-05T09:00:00+07:00",
        ],
    ));
    fails_with(
        &dev(&dir, &["session", "hold", "--id", &later]),
        "has not taken place",
        "",
    );
    ok_quiet(&dev(&dir, &["session", "hold", "--id", &past]));
    fails_with(
        &dev(&dir, &["session", "cancel", "--id", &past]),
        "status cannot change from held to cancelled",
        "",
    );
    ok_quiet(&dev(&dir, &["session", "cancel", "--id", &later]));
    fails_with(
        &dev(&dir, &["session", "hold", "--id", &later]),
        "status cannot change from cancelled to held",
        "",
    );
    fails_with(
        &dev(&dir, &["session", "hold", "--id", unknown]),
        "no session with this id",
        "",
    );
    let sessions = stdout(&dev(&dir, &["session", "list"]));
    assert!(
        sessions.contains(&format!("{past}\t{point}\t")),
        "{sessions}"
    );
    assert!(
        sessions.contains("\tgroup\theld\tKỹ năng sống"),
        "{sessions}"
    );
    assert!(
        sessions.contains("\tclub\tcancelled\tCâu lạc bộ"),
        "{sessions}"
    );

    // Drug tests.
    let test = ok_id(&dev(
        &dir,
        &[
            "drug-test",
            "add",
            "--person",
            &person,
            "--result",
            "negative",
            "--kind",
            "surprise",
            "--method",
            "saliva",
            "--at",
            "2026-01-06T08:00:00+07:00",
            "--note",
            "Hợp tác\ttốt",
        ],
    ));
    fails_with(
        &dev(
            &dir,
            &[
                "drug-test",
                "add",
                "--person",
                unknown,
                "--result",
                "positive",
            ],
        ),
        "no person with this id",
        "",
    );
    fails_with(
        &dev(
            &dir,
            &[
                "drug-test",
                "add",
                "--person",
                &person,
                "--result",
                "positive",
                "--at",
                "2999-01-01T00:00:00Z",
            ],
        ),
        "in the future",
        "",
    );
    assert_eq!(
        stdout(&dev(&dir, &["drug-test", "list", "--person", &person])),
        format!("{test}\t2026-01-06T01:00:00+00:00\tsurprise\tsaliva\tnegative\tHợp tác\\ttốt\n")
    );

    // Support.
    let benefit = ok_id(&dev(
        &dir,
        &[
            "benefit",
            "add",
            "--person",
            &person,
            "--kind",
            "loan",
            "--amount",
            "5000000",
            "--on",
            &day(-2),
        ],
    ));
    fails_with(
        &dev(
            &dir,
            &[
                "benefit",
                "add",
                "--person",
                &person,
                "--kind",
                "cash-support",
                "--on",
                &day(-2),
            ],
        ),
        "amount_vnd is required",
        "",
    );
    fails_with(
        &dev(
            &dir,
            &[
                "benefit",
                "add",
                "--person",
                &person,
                "--kind",
                "loan",
                "--amount",
                "-5",
                "--on",
                &day(-2),
            ],
        ),
        "amount_vnd must not be negative",
        "",
    );
    assert_eq!(
        stdout(&dev(&dir, &["benefit", "list", "--person", &person])),
        format!("{benefit}\t{}\tloan\t5000000\t-\n", day(-2))
    );

    // Referrals: sent → accepted → completed, nothing after.
    let referral = ok_id(&dev(
        &dir,
        &[
            "referral",
            "add",
            "--person",
            &person,
            "--to",
            "vocational-centre",
            "--sent",
            &day(-10),
            "--note",
            "Học nghề may",
        ],
    ));
    fails_with(
        &dev(
            &dir,
            &[
                "referral",
                "update",
                "--id",
                &referral,
                "--status",
                "completed",
                "--on",
                &day(0),
            ],
        ),
        "status cannot change from sent to completed",
        "",
    );
    fails_with(
        &dev(
            &dir,
            &[
                "referral",
                "update",
                "--id",
                &referral,
                "--status",
                "accepted",
                "--on",
                &day(-11),
            ],
        ),
        "status_on is before sent_on",
        "",
    );
    ok_quiet(&dev(
        &dir,
        &[
            "referral",
            "update",
            "--id",
            &referral,
            "--status",
            "accepted",
            "--on",
            &day(-5),
        ],
    ));
    assert_eq!(
        stdout(&dev(&dir, &["referral", "list", "--person", &person])),
        format!(
            "{referral}\t{}\tvocational_centre\taccepted\t{}\tHọc nghề may\n",
            day(-10),
            day(-5)
        )
    );
    ok_quiet(&dev(
        &dir,
        &[
            "referral",
            "update",
            "--id",
            &referral,
            "--status",
            "completed",
            "--on",
            &day(0),
        ],
    ));
    fails_with(
        &dev(
            &dir,
            &[
                "referral",
                "update",
                "--id",
                &referral,
                "--status",
                "declined",
                "--on",
                &day(0),
            ],
        ),
        "status cannot change from completed to declined",
        "",
    );
    fails_with(
        &dev(
            &dir,
            &[
                "referral",
                "update",
                "--id",
                &benefit,
                "--status",
                "declined",
                "--on",
                &day(0),
            ],
        ),
        "no referral with this id",
        "",
    );

    // Conflicts are online, and a supervisor's.
    fails_with(&dev(&dir, &["conflict", "list"]), "not enrolled", "");
    fails_with(
        &dev(&dir, &["conflict", "resolve", "--id", "Mai Thị"]),
        "invalid value for --id",
        "Mai",
    );
}
