//! A realistic demo commune, loaded through the same push path as real devices.
//!
//! One province, one commune with a volunteer team and a community point; a supervisor, three
//! volunteers and a counsellor; a dozen people after rehab (invented: any likeness is chance)
//! with their episodes, assignments and months of visits, drug tests, tasks and support. Every
//! record goes through [`SyncStore::push`], so the demo exercises the real rules: validation,
//! authorisation, scope grants and the audit log.

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use donghanh_core::domain::{
    Assignment, BenefitKind, Device, DrugTest, Episode, EpisodeKind, FollowUpTask, Id, OrgUnit,
    OrgUnitKind, Person, PriorRehab, Record, Role, Scope, Sex, SupportBenefit, TestKind,
    TestMethod, TestResult, User, Visit, VisitMode, vn_date,
};
use donghanh_protocol::{Mutation, MutationOp, Outcome};

use crate::auth;
use crate::store::{PushCaller, StoredUser, SyncStore};

/// The password of every demo account.
pub const DEMO_PASSWORD: &str = "donghanh-demo";

/// An account to try.
#[derive(Debug, Clone)]
pub struct DemoAccount {
    /// Login name.
    pub username: String,
    /// Role.
    pub role: Role,
    /// What they will see.
    pub note: String,
}

const PEOPLE: [(&str, &str, Sex); 12] = [
    ("Nguyễn Văn Hùng", "1988-03-14", Sex::Male),
    ("Trần Thị Thu Hà", "1992-07-02", Sex::Female),
    ("Lê Minh Đức", "1985-11-23", Sex::Male),
    ("Phạm Quốc Bảo", "1999-01-09", Sex::Male),
    ("Hoàng Văn Tuấn", "1979-05-30", Sex::Male),
    ("Nguyễn Thị Lan", "1990-09-17", Sex::Female),
    ("Võ Thành Long", "2001-12-01", Sex::Male),
    ("Đặng Văn Phúc", "1983-04-26", Sex::Male),
    ("Bùi Anh Khoa", "1995-08-08", Sex::Male),
    ("Ngô Văn Sơn", "1987-02-19", Sex::Male),
    ("Đỗ Thị Mai", "1993-06-11", Sex::Female),
    ("Lý Văn Tâm", "1981-10-05", Sex::Male),
];

const NOTES: [&str; 5] = [
    "Gia đình hợp tác tốt; đang làm phụ hồ, tinh thần ổn định.",
    "Có dấu hiệu mất ngủ, đã tư vấn và hẹn gặp lại tuần sau.",
    "Đã hỗ trợ làm lại căn cước; cần giới thiệu vay vốn.",
    "Gọi điện hỏi thăm, đi làm xa nhà, hẹn về thăm cuối tháng.",
    "Tham gia sinh hoạt nhóm tại điểm tư vấn, tiến bộ rõ.",
];

struct Pusher<'a, S> {
    store: &'a S,
    caller: PushCaller,
    seq: u64,
}

impl<S: SyncStore> Pusher<'_, S> {
    async fn create<R: Record>(&mut self, record: &R) -> Result<(), String> {
        self.seq += 1;
        let m = Mutation {
            client_seq: self.seq,
            record_id: record.id().uuid(),
            kind: R::KIND.code().to_owned(),
            scope: record.scope().to_string(),
            op: MutationOp::Create,
            base_version: 0,
            patch: serde_json::to_value(record).map_err(|e| e.to_string())?,
        };
        let receipt = self
            .store
            .push(self.caller, m, Utc::now())
            .await
            .map_err(|e| e.to_string())?;
        if receipt.outcome == Outcome::Rejected {
            let reason = receipt.reason.map(|r| r.message).unwrap_or_default();
            return Err(format!(
                "demo record refused ({}): {reason}",
                R::KIND.code()
            ));
        }
        Ok(())
    }
}

async fn user<S: SyncStore>(
    store: &S,
    username: &str,
    display: &str,
    role: Role,
    org: Id,
    point: Option<Id>,
    password_hash: &str,
) -> Result<PushCaller, String> {
    let mut u = User::new(username, display, role, org);
    u.point = point;
    store
        .add_user(StoredUser {
            user: u.clone(),
            password_hash: password_hash.to_owned(),
        })
        .await
        .map_err(|e| e.to_string())?;
    // Records are pushed from a "demo loader" device of each user, as a phone would.
    let device = Device::new(u.id, "demo loader", Utc::now());
    store
        .add_device(
            device.clone(),
            auth::token_hash(&auth::new_token().map_err(|e| e.to_string())?),
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(PushCaller {
        user: u.id,
        role,
        device: device.id,
    })
}

/// Loads the demo commune into an empty store; returns the accounts to try.
pub async fn load<S: SyncStore>(store: &S) -> Result<Vec<DemoAccount>, String> {
    let err = |e: crate::store::StoreError| e.to_string();
    let province = OrgUnit::new("Tỉnh Sóc Trăng (demo)", OrgUnitKind::Province, None);
    let commune = OrgUnit::new("Xã Tân Hòa (demo)", OrgUnitKind::Commune, Some(province.id));
    let team = OrgUnit::new(
        "Đội công tác xã hội tình nguyện Tân Hòa",
        OrgUnitKind::Team,
        Some(commune.id),
    );
    let point = OrgUnit::new(
        "Điểm tư vấn Tân Hòa",
        OrgUnitKind::CommunityPoint,
        Some(commune.id),
    );
    for unit in [&province, &commune, &team, &point] {
        store.add_org_unit(unit.clone()).await.map_err(err)?;
    }
    let hash = tokio::task::spawn_blocking(|| auth::hash_password(DEMO_PASSWORD))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let sup = user(
        store,
        "gs.minh",
        "Trương Văn Minh",
        Role::Supervisor,
        commune.id,
        None,
        &hash,
    )
    .await?;
    let mut volunteers = Vec::new();
    for (name, display) in [
        ("tnv.hoa", "Nguyễn Thị Hoa"),
        ("tnv.lan", "Phạm Thị Lan"),
        ("tnv.binh", "Lê Văn Bình"),
    ] {
        volunteers.push(user(store, name, display, Role::Volunteer, team.id, None, &hash).await?);
    }
    user(
        store,
        "tv.thu",
        "Võ Thị Thu",
        Role::Counsellor,
        commune.id,
        Some(point.id),
        &hash,
    )
    .await?;

    let today = vn_date(Utc::now());
    let mut supervisor = Pusher {
        store,
        caller: sup,
        seq: 0,
    };
    let mut pushers: Vec<Pusher<'_, S>> = volunteers
        .iter()
        .map(|v| Pusher {
            store,
            caller: *v,
            seq: 0,
        })
        .collect();
    for (i, (name, birth, sex)) in PEOPLE.iter().enumerate() {
        let birth = NaiveDate::parse_from_str(birth, "%Y-%m-%d").map_err(|e| e.to_string())?;
        let mut person = Person::new(*name, birth, *sex);
        person.commune = Some(commune.id);
        person.address = Some(format!("Ấp {} , xã Tân Hòa", i % 5 + 1));
        supervisor.create(&person).await?;
        let start = today - Duration::days(40 + 23 * i as i64);
        let kind = if i % 5 == 4 {
            EpisodeKind::DrugUserManagement
        } else {
            EpisodeKind::PostRehab
        };
        let mut episode = Episode::new(person.id, kind, start);
        if kind == EpisodeKind::PostRehab {
            episode = episode.with_after(if i % 3 == 0 {
                PriorRehab::CompulsoryAdult
            } else {
                PriorRehab::Voluntary
            });
        }
        supervisor.create(&episode).await?;
        let helper = i % volunteers.len();
        let assignment = Assignment::new(person.id, episode.id, volunteers[helper].user, start);
        supervisor.create(&assignment).await?;
        let pusher = &mut pushers[helper];
        for k in 0..(3 + i % 4) {
            let day = start + Duration::days(9 + 17 * k as i64);
            if day >= today {
                break;
            }
            let at = Utc.from_utc_datetime(&day.and_hms_opt(2, 30, 0).unwrap_or_default());
            let mut visit = Visit::new(person.id, at, NOTES[(i + k) % NOTES.len()]);
            visit.episode = Some(episode.id);
            visit.mode = if k % 3 == 1 {
                VisitMode::Phone
            } else {
                VisitMode::Home
            };
            pusher.create(&visit).await?;
            if k % 2 == 0 {
                let result = if (i + k) % 7 == 3 {
                    TestResult::Positive
                } else {
                    TestResult::Negative
                };
                let test = DrugTest::new(
                    person.id,
                    at,
                    TestKind::Periodic,
                    TestMethod::UrineRapid,
                    result,
                );
                pusher.create(&test).await?;
            }
        }
        let mut task = FollowUpTask::new(
            person.id,
            today + Duration::days(i as i64 % 9 - 2),
            "Thăm gia đình, xét nghiệm định kỳ",
        );
        task.assignee = Some(volunteers[helper].user);
        supervisor.create(&task).await?;
        if i % 4 == 1 {
            let benefit = SupportBenefit::new(
                person.id,
                BenefitKind::CashSupport,
                1_000_000,
                today - Duration::days(12),
            );
            supervisor.create(&benefit).await?;
        }
    }
    let _ = Scope::Point(point.id);
    Ok(vec![
        DemoAccount {
            username: "gs.minh".into(),
            role: Role::Supervisor,
            note: "every case of Xã Tân Hòa".into(),
        },
        DemoAccount {
            username: "tnv.hoa".into(),
            role: Role::Volunteer,
            note: "the 4 people assigned to her".into(),
        },
        DemoAccount {
            username: "tnv.lan".into(),
            role: Role::Volunteer,
            note: "the 4 people assigned to her".into(),
        },
        DemoAccount {
            username: "tnv.binh".into(),
            role: Role::Volunteer,
            note: "the 4 people assigned to him".into(),
        },
        DemoAccount {
            username: "tv.thu".into(),
            role: Role::Counsellor,
            note: "nothing yet: sessions and attendance sync comes next".into(),
        },
    ])
}
