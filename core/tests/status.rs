//! Status changes through `Device`: episodes, sessions and referrals move only along their
//! state machines, and a refused change writes nothing (no record change, no outbox row).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{Duration, Utc};
use donghanh_core::domain::{
    DomainError, Episode, EpisodeKind, EpisodeStatus, Id, PriorRehab, Referral, ReferralStatus,
    ReferralTarget, RelapseEvent, Session, SessionKind, SessionStatus, TerminationReason, vn_date,
};
use donghanh_core::{Device, Error};

mod common;

use common::{Fixture, person};

fn today() -> chrono::NaiveDate {
    vn_date(Utc::now())
}

fn days_ago(n: i64) -> chrono::NaiveDate {
    today() - Duration::days(n)
}

/// A person with a post-rehab draft episode that started `start_ago` days ago.
fn draft(device: &Device, start_ago: i64) -> Episode {
    let p = person("Đoàn Văn Trạng Thái");
    device.add_person(&p).unwrap();
    let e = Episode::new(p.id, EpisodeKind::PostRehab, days_ago(start_ago))
        .with_after(PriorRehab::Voluntary);
    device.add_episode(&e).unwrap();
    e
}

fn active(device: &Device) -> Episode {
    let e = draft(device, 60);
    device.propose_episode(e.id, days_ago(50)).unwrap();
    device.activate_episode(e.id, days_ago(45)).unwrap()
}

/// Asserts that `r` is the domain's refusal of `from → to`, and that nothing was written.
fn refused_transition<T: std::fmt::Debug>(
    device: &Device,
    pending: usize,
    r: Result<T, Error>,
    from: &str,
    to: &str,
) {
    match r {
        Err(Error::Invalid(DomainError::InvalidTransition { from: f, to: t })) => {
            assert_eq!((f, t), (from, to));
        }
        other => panic!("expected {from} → {to} to be refused, got {other:?}"),
    }
    assert_eq!(device.pending_changes().unwrap(), pending);
}

#[test]
fn an_episode_goes_from_draft_to_completed_and_no_further() {
    let (_fx, device) = Fixture::new();
    let e = draft(&device, 60);
    let proposed = device.propose_episode(e.id, days_ago(50)).unwrap();
    assert_eq!(proposed.status, EpisodeStatus::Proposed);
    assert_eq!(proposed.file_opened_on, Some(days_ago(50)));
    let active = device.activate_episode(e.id, days_ago(45)).unwrap();
    assert_eq!(active.status, EpisodeStatus::Active);
    assert_eq!(active.decision_date, Some(days_ago(45)));
    let done = device.complete_episode(e.id, today()).unwrap();
    assert_eq!(done.status, EpisodeStatus::Completed);
    assert_eq!(done.ended_on, Some(today()));
    // What is stored is what was answered, and each change queued one update.
    assert_eq!(device.episodes(e.person).unwrap(), vec![done.clone()]);
    let pending = device.pending_changes().unwrap();
    assert_eq!(pending, 2 + 3);

    refused_transition(
        &device,
        pending,
        device.complete_episode(e.id, today()),
        "completed",
        "completed",
    );
    refused_transition(
        &device,
        pending,
        device.terminate_episode(e.id, TerminationReason::Moved, today()),
        "completed",
        "terminated",
    );
    refused_transition(
        &device,
        pending,
        device.propose_episode(e.id, today()),
        "completed",
        "proposed",
    );
    assert_eq!(device.episodes(e.person).unwrap(), vec![done]);
}

#[test]
fn only_an_active_episode_ends_and_never_before_it_started_or_in_the_future() {
    let (_fx, device) = Fixture::new();
    let e = draft(&device, 10);
    let pending = device.pending_changes().unwrap();
    refused_transition(
        &device,
        pending,
        device.complete_episode(e.id, today()),
        "draft",
        "completed",
    );
    refused_transition(
        &device,
        pending,
        device.activate_episode(e.id, today()),
        "draft",
        "active",
    );

    let e = active(&device);
    let pending = device.pending_changes().unwrap();
    for (on, expected) in [
        (
            e.start - Duration::days(1),
            DomainError::DateOrder {
                earlier: "start",
                later: "ended_on",
            },
        ),
        (
            today() + Duration::days(3),
            DomainError::InFuture { field: "ended_on" },
        ),
    ] {
        match device.terminate_episode(e.id, TerminationReason::Prison, on) {
            Err(Error::Invalid(d)) => assert_eq!(d, expected),
            other => panic!("{other:?}"),
        }
        assert_eq!(device.pending_changes().unwrap(), pending);
    }
    // Relapse is a legal determination: not a plain termination reason.
    assert!(matches!(
        device.terminate_episode(e.id, TerminationReason::Relapse, today()),
        Err(Error::Invalid(DomainError::RelapseWithoutAuthority))
    ));
    let ended = device
        .terminate_episode(e.id, TerminationReason::Moved, today())
        .unwrap();
    assert_eq!(
        ended.status,
        EpisodeStatus::Terminated(TerminationReason::Moved)
    );
    assert!(matches!(
        device.complete_episode(Id::new(), today()),
        Err(Error::NotFound { kind: "episode" })
    ));
    // An id of another kind is not an episode.
    assert!(matches!(
        device.complete_episode(e.person, today()),
        Err(Error::NotFound { kind: "episode" })
    ));
}

#[test]
fn a_post_rehab_draft_needs_its_prior_rehab_before_it_is_proposed() {
    let (_fx, device) = Fixture::new();
    let p = person("Lò Văn Thiếu");
    device.add_person(&p).unwrap();
    let e = Episode::new(p.id, EpisodeKind::PostRehab, days_ago(5));
    device.add_episode(&e).unwrap();
    assert!(matches!(
        device.propose_episode(e.id, today()),
        Err(Error::Invalid(DomainError::Required { field: "after" }))
    ));
    assert_eq!(
        device.record::<Episode>(e.id).unwrap().status,
        EpisodeStatus::Draft
    );
}

#[test]
fn a_relapse_is_recorded_and_ends_the_episode_in_one_step() {
    let (_fx, device) = Fixture::new();
    let e = active(&device);
    let pending = device.pending_changes().unwrap();
    // No authority: refused, nothing written.
    let blank = RelapseEvent::new(e.person, e.id, days_ago(3), "  ", days_ago(1));
    assert!(matches!(
        device.record_relapse(&blank),
        Err(Error::Invalid(DomainError::RelapseWithoutAuthority))
    ));
    // Determined before it was detected: refused.
    let backwards = RelapseEvent::new(
        e.person,
        e.id,
        days_ago(1),
        "Trung tâm Y tế xã",
        days_ago(3),
    );
    assert!(matches!(
        device.record_relapse(&backwards),
        Err(Error::Invalid(DomainError::DateOrder { .. }))
    ));
    assert_eq!(device.pending_changes().unwrap(), pending);

    // The person comes from the episode, whatever the caller put there.
    let relapse = RelapseEvent::new(
        Id::new(),
        e.id,
        days_ago(3),
        "Trung tâm Y tế xã",
        days_ago(1),
    );
    let id = device.record_relapse(&relapse).unwrap();
    let stored: RelapseEvent = device.record(id).unwrap();
    assert_eq!(stored.person, e.person);
    let ended: Episode = device.record(e.id).unwrap();
    assert_eq!(
        ended.status,
        EpisodeStatus::Terminated(TerminationReason::Relapse)
    );
    assert_eq!(ended.ended_on, Some(days_ago(1)));
    assert_eq!(device.pending_changes().unwrap(), pending + 2);
    // A second relapse on the ended episode is refused, and records nothing.
    let again = RelapseEvent::new(e.person, e.id, days_ago(1), "Trung tâm Y tế xã", today());
    assert!(matches!(
        device.record_relapse(&again),
        Err(Error::Invalid(DomainError::InvalidTransition { .. }))
    ));
    assert!(device.record::<RelapseEvent>(again.id).is_err());
    assert_eq!(device.pending_changes().unwrap(), pending + 2);
}

#[test]
fn a_session_is_held_or_cancelled_once() {
    let (_fx, device) = Fixture::new();
    let point = Id::new();
    let past = Session::new(
        point,
        SessionKind::Group,
        "Kỹ năng từ chối",
        Utc::now() - Duration::hours(2),
    );
    let future = Session::new(
        point,
        SessionKind::Club,
        "Sinh hoạt câu lạc bộ",
        Utc::now() + Duration::days(2),
    );
    device.add_session(&past).unwrap();
    device.add_session(&future).unwrap();
    let pending = device.pending_changes().unwrap();

    // Not held before it starts.
    assert!(matches!(
        device.hold_session(future.id),
        Err(Error::Invalid(DomainError::SessionNotHeld))
    ));
    assert_eq!(device.pending_changes().unwrap(), pending);
    assert_eq!(
        device.hold_session(past.id).unwrap().status,
        SessionStatus::Held
    );
    refused_transition(
        &device,
        pending + 1,
        device.cancel_session(past.id),
        "held",
        "cancelled",
    );
    assert_eq!(
        device.cancel_session(future.id).unwrap().status,
        SessionStatus::Cancelled
    );
    refused_transition(
        &device,
        pending + 2,
        device.hold_session(future.id),
        "cancelled",
        "held",
    );
    assert!(matches!(
        device.hold_session(Id::new()),
        Err(Error::NotFound { kind: "session" })
    ));
}

#[test]
fn a_referral_moves_along_its_statuses_on_days_after_it_was_sent() {
    let (_fx, device) = Fixture::new();
    let p = person("Vi Thị Chuyển Gửi");
    device.add_person(&p).unwrap();
    let r = Referral::new(p.id, ReferralTarget::JobCentre, days_ago(10));
    device.add_record(&r).unwrap();
    let pending = device.pending_changes().unwrap();

    refused_transition(
        &device,
        pending,
        device.update_referral(r.id, ReferralStatus::Completed, today()),
        "sent",
        "completed",
    );
    assert!(matches!(
        device.update_referral(r.id, ReferralStatus::Accepted, days_ago(11)),
        Err(Error::Invalid(DomainError::DateOrder { .. }))
    ));
    assert!(matches!(
        device.update_referral(r.id, ReferralStatus::Accepted, today() + Duration::days(2)),
        Err(Error::Invalid(DomainError::InFuture { .. }))
    ));
    assert_eq!(device.pending_changes().unwrap(), pending);

    let accepted = device
        .update_referral(r.id, ReferralStatus::Accepted, days_ago(5))
        .unwrap();
    assert_eq!(
        (accepted.status, accepted.status_on),
        (ReferralStatus::Accepted, Some(days_ago(5)))
    );
    device
        .update_referral(r.id, ReferralStatus::Completed, today())
        .unwrap();
    refused_transition(
        &device,
        pending + 2,
        device.update_referral(r.id, ReferralStatus::Declined, today()),
        "completed",
        "declined",
    );
    let [stored] = device.referrals(p.id).unwrap().try_into().unwrap();
    assert_eq!(stored.status, ReferralStatus::Completed);
    assert!(matches!(
        device.referrals(Id::new()),
        Err(Error::NotFound { kind: "person" })
    ));
}
