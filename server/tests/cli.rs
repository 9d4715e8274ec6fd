//! `donghanh-server`'s command line, as scripts use it: the real binary on a temporary directory.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};

fn server(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_donghanh-server"))
        .arg("--data")
        .arg(dir)
        .args(args)
        .env_remove("DONGHANH_NEW_PASSWORD")
        .output()
        .unwrap()
}

fn id(o: &Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8(o.stdout.clone()).unwrap();
    assert_eq!(out.trim().len(), 36, "{out:?}");
    out.trim().to_owned()
}

#[test]
fn operator_builds_a_commune_from_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let province = server(&dir, &["admin", "org", "add", "--name", "Tỉnh Sóc Trăng"]);
    // The first command on a new directory creates it and shows the admin password once.
    let first = String::from_utf8(province.stderr.clone()).unwrap();
    assert!(first.contains("admin login: admin / "), "{first}");
    let province = id(&province);
    let commune = id(&server(
        &dir,
        &[
            "admin",
            "org",
            "add",
            "--name",
            "Xã Tân Hòa",
            "--parent",
            &province,
        ],
    ));
    let point = id(&server(
        &dir,
        &[
            "admin",
            "point",
            "add",
            "--name",
            "Điểm tư vấn Tân Hòa",
            "--org",
            &commune,
        ],
    ));
    let again = server(&dir, &["admin", "org", "list"]);
    assert!(
        !String::from_utf8(again.stderr.clone())
            .unwrap()
            .contains("admin login"),
        "shown once"
    );
    let list = String::from_utf8(again.stdout).unwrap();
    assert!(
        list.contains(&format!("{commune}\tcommune\t{province}\tXã Tân Hòa")),
        "{list}"
    );
    assert!(
        list.contains(&format!("{point}\tcommunity_point\t{commune}")),
        "{list}"
    );

    id(&server(
        &dir,
        &[
            "admin",
            "user",
            "add",
            "--username",
            "tnv.hoa",
            "--password",
            "mật-khẩu-dài",
            "--role",
            "volunteer",
            "--org",
            &commune,
        ],
    ));
    id(&server(
        &dir,
        &[
            "admin",
            "user",
            "add",
            "--username",
            "tv.lan",
            "--password",
            "mật-khẩu-dài",
            "--role",
            "counsellor",
            "--org",
            &commune,
            "--point",
            &point,
        ],
    ));

    // Errors: one line, non-zero status, nothing written.
    for (args, needle) in [
        (
            vec![
                "admin",
                "user",
                "add",
                "--username",
                "tnv.hoa",
                "--password",
                "mật-khẩu-dài",
                "--role",
                "volunteer",
                "--org",
                &commune,
            ],
            "already exists",
        ),
        (
            vec![
                "admin",
                "user",
                "add",
                "--username",
                "Tên Có Dấu",
                "--password",
                "mật-khẩu-dài",
                "--role",
                "volunteer",
                "--org",
                &commune,
            ],
            "username",
        ),
        (
            vec![
                "admin",
                "user",
                "add",
                "--username",
                "tnv.ngan",
                "--password",
                "ngắn",
                "--role",
                "volunteer",
                "--org",
                &commune,
            ],
            "8 characters",
        ),
        (
            vec![
                "admin",
                "user",
                "add",
                "--username",
                "tnv.lac",
                "--password",
                "mật-khẩu-dài",
                "--role",
                "volunteer",
                "--org",
                "0b6f2a49-5a8e-4c1e-9a41-3f8e2d7c6b10",
            ],
            "org_unit",
        ),
        (
            vec![
                "admin",
                "org",
                "add",
                "--name",
                "Xã Lạc",
                "--parent",
                "7d3c1f7e-8a0e-4b4e-9d0f-2f1f5a0c9e11",
            ],
            "parent",
        ),
        (
            vec![
                "admin",
                "device",
                "revoke",
                "7d3c1f7e-8a0e-4b4e-9d0f-2f1f5a0c9e11",
            ],
            "not found",
        ),
    ] {
        let o = server(&dir, &args);
        assert!(!o.status.success(), "{args:?}");
        let err = String::from_utf8(o.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    let audit = server(&dir, &["admin", "audit", "verify"]);
    assert!(audit.status.success());
    assert_eq!(String::from_utf8(audit.stdout).unwrap().trim(), "intact 0");
    let bad = server(&dir, &["admin", "user", "add", "--role", "chief"]);
    assert_eq!(bad.status.code(), Some(2));
    // The key file is the owner's only.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("server.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn serve_listens_answers_health_and_refuses_a_missing_key() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let mut child = Command::new(env!("CARGO_BIN_EXE_donghanh-server"))
        .arg("--data")
        .arg(&dir)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_owned();
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    use std::io::{Read, Write};
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("x-donghanh-protocol: 1"), "{response}");

    // A database whose key is gone refuses to start instead of making a new key.
    std::fs::remove_file(dir.join("server.key")).unwrap();
    let o = server(&dir, &["admin", "org", "list"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8(o.stderr)
            .unwrap()
            .contains("server key file is missing")
    );
    assert!(!dir.join("server.key").exists());
}

#[test]
fn the_operator_rotates_the_key_compacts_and_migrates() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let demo = server(&dir, &["demo"]);
    assert!(
        demo.status.success(),
        "{}",
        String::from_utf8_lossy(&demo.stderr)
    );
    let before = std::fs::read(dir.join("server.key")).unwrap();
    assert_eq!(before.len(), 33, "one key, id 1");

    let o = server(&dir, &["admin", "key", "rotate"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(out.starts_with("rotated to key 2, resealed "), "{out}");
    // Only the new key is left, and every sealed row names it.
    let after = std::fs::read(dir.join("server.key")).unwrap();
    assert_eq!((after.len(), after[0]), (33, 2));
    assert_ne!(before[1..], after[1..]);
    let db = rusqlite::Connection::open(dir.join("server.db")).unwrap();
    for table in ["users", "devices", "records", "conflicts"] {
        let stale: i64 = db
            .query_row(
                &format!("SELECT count(*) FROM {table} WHERE substr(sealed, 2, 1) != x'02'"),
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(stale, 0, "{table}");
    }
    drop(db);
    // Usernames are still found under the new lookup key, and the audit chain is intact.
    let orgs = String::from_utf8(server(&dir, &["admin", "org", "list"]).stdout).unwrap();
    let org = orgs
        .lines()
        .next()
        .unwrap()
        .split('\t')
        .next()
        .unwrap()
        .to_owned();
    let twin = server(
        &dir,
        &[
            "admin",
            "user",
            "add",
            "--username",
            "gs.minh",
            "--password",
            "mật-khẩu-dài",
            "--role",
            "volunteer",
            "--org",
            &org,
        ],
    );
    assert!(!twin.status.success());
    assert!(
        String::from_utf8(twin.stderr)
            .unwrap()
            .contains("already exists")
    );
    let audit = server(&dir, &["admin", "audit", "verify"]);
    assert!(
        audit.status.success(),
        "{}",
        String::from_utf8_lossy(&audit.stderr)
    );
    // A second rotation works the same.
    let o = server(&dir, &["admin", "key", "rotate"]);
    assert!(
        String::from_utf8(o.stdout)
            .unwrap()
            .starts_with("rotated to key 1,")
    );

    let o = server(&dir, &["admin", "compact"]);
    assert_eq!(
        String::from_utf8(o.stdout).unwrap().trim(),
        "removed 0 horizon 0"
    );
    let o = server(&dir, &["migrate"]);
    assert!(o.status.success());
    // Rotation needs a database to rotate.
    let o = server(&tmp.path().join("empty"), &["admin", "key", "rotate"]);
    assert!(!o.status.success());
    assert_eq!(String::from_utf8(o.stderr).unwrap().lines().count(), 1);
}

/// The server's own log of a whole scenario — admin commands, enrolment, a failed login, a
/// case with a name, phone, address and notes pushed, pulled and snapshotted — holds none of
/// it, at the most verbose level.
#[test]
fn the_log_of_a_full_scenario_carries_no_personal_data() {
    use donghanh_core::domain::{Person, Scope, Sex, Visit};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let commune = id(&server(
        &dir,
        &[
            "admin",
            "org",
            "add",
            "--name",
            "Xã Nhật Ký",
            "--kind",
            "commune",
        ],
    ));
    id(&server(
        &dir,
        &[
            "admin",
            "user",
            "add",
            "--username",
            "gs.daumoc",
            "--password",
            "Mật-Khẩu-Bí-Mật-9",
            "--role",
            "supervisor",
            "--org",
            &commune,
            "--display-name",
            "Đầu Mốc Giám Sát",
        ],
    ));
    let log = tmp.path().join("server.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_donghanh-server"))
        .arg("--data")
        .arg(&dir)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = format!(
        "http://{}",
        line.trim().strip_prefix("listening on ").unwrap()
    );

    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut p = Person::new(
        "Nguyễn Văn Đánh Dấu",
        chrono::NaiveDate::from_ymd_opt(1980, 1, 2).unwrap(),
        Sex::Male,
    );
    p.phone = Some("0909123456".into());
    p.address = Some("Ấp Đánh Dấu, Xã Nhật Ký".into());
    p.id_number = Some("079080001234".into());
    let visit = Visit::new(p.id, chrono::Utc::now(), "Ghi chú đánh dấu riêng tư");
    let scope = Scope::Person(p.id).to_string();
    rt.block_on(async {
        let http = reqwest::Client::new();
        let post = |path: &str, token: Option<&str>, body: serde_json::Value| {
            let mut req = http
                .post(format!("{base}{path}"))
                .header("x-donghanh-protocol", "1")
                .json(&body);
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            req.send()
        };
        let wrong = post(
            "/v1/enroll",
            None,
            serde_json::json!({"username": "gs.daumoc", "password": "Sai-Mật-Khẩu-Đánh-Dấu", "device_label": "Máy của Đầu Mốc"}),
        )
        .await
        .unwrap();
        assert_eq!(wrong.status(), 401);
        let enrolled: serde_json::Value = post(
            "/v1/enroll",
            None,
            serde_json::json!({"username": "gs.daumoc", "password": "Mật-Khẩu-Bí-Mật-9", "device_label": "Máy của Đầu Mốc"}),
        )
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        let token = enrolled["tokens"]["access_token"].as_str().unwrap().to_owned();
        let pushed = post(
            "/v1/push",
            Some(&token),
            serde_json::json!({"mutations": [
                {"client_seq": 1, "record_id": p.id, "kind": "person", "scope": scope,
                 "op": "create", "base_version": 0, "patch": serde_json::to_value(&p).unwrap()},
                {"client_seq": 2, "record_id": visit.id, "kind": "visit", "scope": scope,
                 "op": "create", "base_version": 0, "patch": serde_json::to_value(&visit).unwrap()},
                {"client_seq": 3, "record_id": p.id, "kind": "person", "scope": scope,
                 "op": "update", "base_version": 1, "patch": {"birth_date": "Không phải ngày Đánh Dấu"}},
            ]}),
        )
        .await
        .unwrap();
        assert_eq!(pushed.status(), 200);
        for path in [
            "/v1/pull?cursor=0".to_owned(),
            format!("/v1/scopes/{scope}/snapshot"),
            "/v1/directory".to_owned(),
        ] {
            let r = http
                .get(format!("{base}{path}"))
                .header("x-donghanh-protocol", "1")
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{path}");
        }
    });
    child.kill().unwrap();
    child.wait().unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("push"), "the log was captured: {text}");
    for marker in [
        "Đánh Dấu",
        "Danh Dau",
        "0909123456",
        "079080001234",
        "riêng tư",
        "gs.daumoc",
        "Đầu Mốc",
        "Mật-Khẩu",
        "Sai-Mật",
    ] {
        assert!(
            !text.contains(marker),
            "{marker} in the server log:\n{text}"
        );
    }
}
