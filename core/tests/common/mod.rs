//! Helpers shared by the integration tests: a device in a temporary directory, and a scan of
//! every file of a data directory for plaintext markers.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use donghanh_core::domain::{Person, Sex};
use donghanh_core::{Device, Error, FileKeyStore};
use rusqlite::Connection;

pub const PIN: &str = "135790";

pub struct Fixture {
    _tmp: tempfile::TempDir,
    pub dir: PathBuf,
}

impl Fixture {
    pub fn new() -> (Fixture, Device) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("device");
        fs::create_dir_all(&dir).unwrap();
        let ks = FileKeyStore::create(dir.join("device.key")).unwrap();
        let device = Device::init(&dir, &ks, PIN).unwrap();
        (Fixture { _tmp: tmp, dir }, device)
    }

    pub fn keystore(&self) -> FileKeyStore {
        FileKeyStore::open(self.dir.join("device.key"))
    }

    pub fn open(&self, pin: &str) -> Result<Device, Error> {
        Device::open(&self.dir, &self.keystore(), pin)
    }

    pub fn db(&self) -> PathBuf {
        Device::store_path(&self.dir)
    }

    /// A second, raw connection to the file: the attacker's (or the disk's) view.
    pub fn raw(&self) -> Connection {
        Connection::open(self.db()).unwrap()
    }
}

pub fn person(name: &str) -> Person {
    Person::new(
        name,
        NaiveDate::from_ymd_opt(1990, 5, 17).unwrap(),
        Sex::Male,
    )
}

pub fn all_files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(all_files(&path));
        } else {
            out.push((path.clone(), fs::read(&path).unwrap()));
        }
    }
    out
}

pub fn assert_no_marker(dir: &Path, markers: &[String]) {
    let files = all_files(dir);
    assert!(!files.is_empty());
    for (path, bytes) in &files {
        for m in markers {
            assert!(
                !bytes.windows(m.len()).any(|w| w == m.as_bytes()),
                "marker {m:?} found in {}",
                path.display()
            );
        }
    }
}
