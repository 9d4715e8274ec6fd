"""The Python bindings against a real server: every flow of a field device, and bad input."""

import datetime
import threading

import pytest

import donghanh
from conftest import PIN, MemoryKeyStore, enroll

E = donghanh.DonghanhError
TODAY = datetime.date.today()
MARKER = "Nguyễn Thị Bí Mật"


def day(delta=0):
    return (TODAY + datetime.timedelta(days=delta)).isoformat()


class Heard(donghanh.SyncListener):
    """A SyncListener in Python: remembers what it was told."""

    def __init__(self):
        self.phases, self.rejected_codes, self.removed, self.wiped_count = [], [], [], 0

    def progress(self, phase, report):
        self.phases.append(phase)

    def rejected(self, client_seq, code):
        self.rejected_codes.append(code)

    def scope_removed(self, scope_kind):
        self.removed.append(scope_kind)

    def wiped(self):
        self.wiped_count += 1


class Throws(donghanh.SyncListener):
    """A listener that fails at every notice: the sync round must not care."""

    def progress(self, phase, report):
        raise RuntimeError("listener bug")

    def rejected(self, client_seq, code):
        raise RuntimeError("listener bug")

    def scope_removed(self, scope_kind):
        raise RuntimeError("listener bug")

    def wiped(self):
        raise RuntimeError("listener bug")


def new_case(sup, server, name):
    person = sup.add_person(donghanh.NewPerson(
        full_name=name, birth_date="1990-06-07", sex=donghanh.Sex.MALE,
        phone="0912345678", address=None, id_number=None, commune=server.commune))
    sup.add_episode(person, donghanh.EpisodeKind.POST_REHAB, day(-30),
                    donghanh.PriorRehab.VOLUNTARY)
    return person


@pytest.fixture
def commune(server, username, tmp_path):
    """A supervisor's phone and two volunteers' phones, enrolled and synced once."""
    sup_name, hoa_name, lan_name = username("gs"), username("tnv"), username("tnv")
    server.add_user(sup_name, "supervisor")
    server.add_user(hoa_name, "volunteer", org=server.team)
    server.add_user(lan_name, "volunteer", org=server.team)
    sup = enroll(server, tmp_path / "sup", sup_name)
    hoa = enroll(server, tmp_path / "hoa", hoa_name)
    lan = enroll(server, tmp_path / "lan", lan_name)
    sup.sync(None)
    return sup, hoa, lan, hoa_name, lan_name


def test_volunteer_records_offline_then_syncs_and_does_her_tasks(server, commune):
    sup, hoa, _, hoa_name, _ = commune
    assert {c.username for c in sup.directory()} >= {hoa_name}
    person = new_case(sup, server, "Hồ Văn Phân Công")
    sup.assign_case(person, hoa_name)
    sup.add_task(person, day(3), "Đưa đi làm CCCD", hoa_name)
    report = sup.sync(None)
    assert (report.pushed, report.rejected) == (4, 0)

    heard = Heard()
    report = hoa.sync(heard)
    assert report.pulled >= 1
    assert donghanh.SyncPhase.DONE in heard.phases
    assert [p.full_name for p in hoa.people()] == ["Hồ Văn Phân Công"]
    assert [p.id for p in hoa.find_people("ho van phan")] == [person]
    [task] = hoa.my_tasks()
    assert (task.person, task.reason, task.due) == (person, "Đưa đi làm CCCD", day(3))

    # Offline: a visit, a drug test, support and a referral wait in the outbox.
    visit = hoa.add_visit(donghanh.NewVisit(
        person=person, notes="Gia đình hợp tác tốt", at=None, mode=donghanh.VisitMode.HOME))
    hoa.add_drug_test(donghanh.NewDrugTest(
        person=person, at=None, kind=donghanh.TestKind.PERIODIC,
        method=donghanh.TestMethod.URINE_RAPID, result=donghanh.TestResult.NEGATIVE, note=None))
    hoa.add_support_benefit(person, donghanh.BenefitKind.PAPERS_HELP, 0, day(), None)
    hoa.add_referral(person, donghanh.ReferralTarget.JOB_CENTRE, day(), "Hỏi việc làm")
    hoa.complete_task(task.id)
    assert hoa.pending_changes() == 5
    assert [v.id for v in hoa.visits(person)] == [visit]
    assert hoa.visits(person)[0].notes == "Gia đình hợp tác tốt"
    assert len(hoa.drug_tests(person)) == 1
    assert hoa.support_benefits(person)[0].kind == donghanh.BenefitKind.PAPERS_HELP
    assert hoa.referrals(person)[0].status == donghanh.ReferralStatus.SENT
    assert hoa.my_tasks() == []

    report = hoa.sync(None)
    assert (report.pushed, report.rejected) == (5, 0)
    assert hoa.pending_changes() == 0
    assert hoa.rejected() == []
    # The supervisor sees the visit and that the task is done.
    sup.sync(None)
    assert [v.notes for v in sup.visits(person)] == ["Gia đình hợp tác tốt"]
    assert all(t.id != task.id for t in sup.open_tasks())
    [line] = [c for c in sup.caseload() if c.person.id == person]
    assert line.last_visit is not None


def test_a_reassigned_case_is_purged_from_the_first_phone_and_the_listener_hears_it(
        server, commune):
    sup, hoa, lan, hoa_name, lan_name = commune
    person = new_case(sup, server, "Trần Văn Chuyển")
    sup.assign_case(person, hoa_name)
    sup.sync(None)
    hoa.sync(None)
    assert [p.id for p in hoa.people()] == [person]

    sup.assign_case(person, lan_name)
    sup.sync(None)
    heard = Heard()
    report = hoa.sync(heard)
    assert report.purged == 1
    assert heard.removed == ["person"]
    assert hoa.people() == []
    with pytest.raises(E.NotFound):
        hoa.person(person)
    lan.sync(None)
    assert [p.id for p in lan.people()] == [person]


def test_a_counsellor_holds_a_session_and_a_supervisor_writes_a_note(server, username, tmp_path):
    sup_name, thu_name, vol_name = username("gs"), username("tv"), username("tnv")
    server.add_user(sup_name, "supervisor")
    server.add_user(thu_name, "counsellor", point=server.point)
    server.add_user(vol_name, "volunteer", org=server.team)
    sup = enroll(server, tmp_path / "sup", sup_name)
    thu = enroll(server, tmp_path / "thu", thu_name)
    sup.sync(None)
    person = new_case(sup, server, "Lê Thị Tham Dự")
    sup.sync(None)

    session = thu.add_session(server.point, donghanh.SessionKind.GROUP, "Phòng tái nghiện", None)
    thu.mark_attendance(session, person, donghanh.AttendanceStatus.LATE)
    thu.mark_walk_ins(session, 3)
    with pytest.raises(E.AlreadyExists):
        thu.mark_attendance(session, person, donghanh.AttendanceStatus.PRESENT)
    rows = thu.attendance(session)
    assert sorted((r.person, r.walk_ins) for r in rows if r.person) == [(person, 0)]
    assert [r.walk_ins for r in rows if r.person is None] == [3]
    assert [s.topic for s in thu.sessions()] == ["Phòng tái nghiện"]
    assert thu.sync(None).rejected == 0

    note = sup.add_supervision_note(vol_name, "Cần thăm thường xuyên hơn")
    assert len(note) == 36
    assert sup.sync(None).rejected == 0
    sup.sync(None)
    assert [s.id for s in sup.sessions()] == [session]


def test_an_episode_is_proposed_activated_and_ended_once(tmp_path):
    dev = donghanh.Device.create(str(tmp_path / "d"), MemoryKeyStore(), PIN)
    person = dev.add_person(donghanh.NewPerson(
        full_name="Hà Văn Hồ Sơ", birth_date="1985-02-03", sex=donghanh.Sex.MALE,
        phone=None, address=None, id_number=None, commune=None))
    episode = dev.add_episode(person, donghanh.EpisodeKind.POST_REHAB, day(-60),
                              donghanh.PriorRehab.VOLUNTARY)
    with pytest.raises(E.InvalidTransition) as err:
        dev.complete_episode(episode, day())
    assert (err.value.from_status, err.value.to_status) == ("draft", "completed")
    proposed = dev.propose_episode(episode, day(-50))
    assert (proposed.status, proposed.file_opened_on) == ("proposed", day(-50))
    active = dev.activate_episode(episode, day(-45))
    assert (active.status, active.decision_date) == ("active", day(-45))
    pending = dev.pending_changes()
    with pytest.raises(E.InvalidInput) as err:
        dev.terminate_episode(episode, donghanh.TerminationReason.RELAPSE, day())
    assert "relapse" in str(err.value)
    with pytest.raises(E.InvalidInput):
        dev.terminate_episode(episode, donghanh.TerminationReason.MOVED, day(-61))
    with pytest.raises(E.InvalidInput):
        dev.complete_episode(episode, day(3))
    assert dev.pending_changes() == pending
    ended = dev.terminate_episode(episode, donghanh.TerminationReason.PRISON, day())
    assert (ended.status, ended.termination_reason, ended.ended_on) == (
        "terminated", donghanh.TerminationReason.PRISON, day())
    with pytest.raises(E.InvalidTransition):
        dev.complete_episode(episode, day())
    [stored] = dev.episodes(person)
    assert stored.status == "terminated"
    assert dev.pending_changes() == pending + 1

    # A relapse ends another active episode in one step, with its authority.
    other = dev.add_episode(person, donghanh.EpisodeKind.OST, day(-30), None)
    dev.propose_episode(other, day(-20))
    dev.activate_episode(other, day(-20))
    with pytest.raises(E.InvalidInput):
        dev.record_relapse(other, day(-3), "   ", day(-1), None)
    relapse = dev.record_relapse(other, day(-3), "Trung tâm Y tế xã", day(-1), None)
    assert len(relapse) == 36
    [_, ost] = dev.episodes(person)
    assert (ost.status, ost.termination_reason, ost.ended_on) == (
        "terminated", donghanh.TerminationReason.RELAPSE, day(-1))


def test_sessions_are_held_or_cancelled_and_referrals_move_along(tmp_path):
    dev = donghanh.Device.create(str(tmp_path / "d"), MemoryKeyStore(), PIN)
    point = "5b0c6f0e-1d2a-4c3b-8e7f-9a8b7c6d5e4f"
    past = dev.add_session(point, donghanh.SessionKind.GROUP, "Kỹ năng sống",
                           "2026-01-05T09:00:00+07:00")
    later = dev.add_session(point, donghanh.SessionKind.CLUB, "Câu lạc bộ",
                            "2999-01-05T09:00:00+07:00")
    with pytest.raises(E.InvalidInput):
        dev.hold_session(later)
    assert dev.hold_session(past).status == donghanh.SessionStatus.HELD
    with pytest.raises(E.InvalidTransition) as err:
        dev.cancel_session(past)
    assert (err.value.from_status, err.value.to_status) == ("held", "cancelled")
    assert dev.cancel_session(later).status == donghanh.SessionStatus.CANCELLED
    with pytest.raises(E.InvalidTransition):
        dev.hold_session(later)
    with pytest.raises(E.InvalidInput):
        dev.mark_walk_ins(later, 2)

    person = dev.add_person(donghanh.NewPerson(
        full_name="Mai Thị Chuyển Gửi", birth_date="1992-07-08", sex=donghanh.Sex.FEMALE,
        phone=None, address=None, id_number=None, commune=None))
    referral = dev.add_referral(person, donghanh.ReferralTarget.VOCATIONAL_CENTRE, day(-10),
                                "Học nghề may")
    with pytest.raises(E.InvalidTransition):
        dev.update_referral(referral, donghanh.ReferralStatus.COMPLETED, day())
    with pytest.raises(E.InvalidInput):
        dev.update_referral(referral, donghanh.ReferralStatus.ACCEPTED, day(-11))
    accepted = dev.update_referral(referral, donghanh.ReferralStatus.ACCEPTED, day(-5))
    assert (accepted.status, accepted.status_on) == (donghanh.ReferralStatus.ACCEPTED, day(-5))
    dev.update_referral(referral, donghanh.ReferralStatus.COMPLETED, day())
    with pytest.raises(E.InvalidTransition):
        dev.update_referral(referral, donghanh.ReferralStatus.DECLINED, day())
    [stored] = dev.referrals(person)
    assert (stored.status, stored.status_on) == (donghanh.ReferralStatus.COMPLETED, day())


def test_a_supervisor_sees_and_restores_a_conflict_and_a_volunteer_is_refused(server, commune):
    sup, hoa, _, hoa_name, _ = commune
    person = new_case(sup, server, "Phan Văn Hai Ý")
    sup.assign_case(person, hoa_name)
    sup.sync(None)
    hoa.sync(None)
    [episode] = hoa.episodes(person)
    sup.propose_episode(episode.id, day(-20))
    sup.activate_episode(episode.id, day(-20))
    sup.sync(None)
    hoa.sync(None)
    # Offline, both change the same episode: the term served, and a move.
    sup.complete_episode(episode.id, day())
    hoa.terminate_episode(episode.id, donghanh.TerminationReason.MOVED, day())
    assert sup.sync(None).rejected == 0
    assert hoa.sync(None).rejected == 0

    with pytest.raises(E.Forbidden):
        hoa.conflicts()
    [c] = sup.conflicts()
    assert (c.kind, c.record_id, c.person, c.field) == ("episode", episode.id, person, "status")
    assert (c.kept, c.lost) == ('{"terminated":"moved"}', "completed")
    assert c.lost_json == '"completed"'
    assert c.lost_by_device == sup.enrollment().device_id
    with pytest.raises(E.Forbidden):
        hoa.resolve_conflict(c.id, True)
    with pytest.raises(E.NotFound) as err:
        sup.resolve_conflict("6f1f1c3e-8a57-4c1e-9a7e-2b1de0b9a111", False)
    assert err.value.kind == "conflict"
    sup.resolve_conflict(c.id, True)
    assert sup.conflicts() == []
    hoa.sync(None)
    [back] = hoa.episodes(person)
    assert back.status == "completed"


def test_wrong_pin_lock_and_reopen(server, username, tmp_path):
    name = username("tnv")
    server.add_user(name, "volunteer", org=server.team)
    keys = MemoryKeyStore()
    dev = enroll(server, tmp_path / "phone", name, keys)
    enrolment = dev.enrollment()
    dev.lock()
    assert dev.is_locked()
    with pytest.raises(E.Locked):
        dev.people()
    with pytest.raises(E.WrongPin):
        donghanh.Device.open(str(tmp_path / "phone"), keys, "000000")
    again = donghanh.Device.open(str(tmp_path / "phone"), keys, PIN)
    assert again.enrollment().device_id == enrolment.device_id
    assert donghanh.store_exists(str(tmp_path / "phone"))


def test_key_store_failures_are_typed_errors_not_crashes(tmp_path):
    keys = MemoryKeyStore()
    donghanh.Device.create(str(tmp_path / "d"), keys, PIN).lock()

    class Raises(donghanh.KeyStore):
        def wrap(self, secret):
            raise ValueError("keystore exploded")

        def unwrap(self, wrapped):
            raise OSError("keystore exploded")

    with pytest.raises(E.KeyStoreUnavailable) as err:
        donghanh.Device.open(str(tmp_path / "d"), Raises(), PIN)
    assert "exploded" not in str(err.value)
    with pytest.raises(E.KeyStoreUnavailable):
        donghanh.Device.create(str(tmp_path / "e"), Raises(), PIN)
    assert not donghanh.store_exists(str(tmp_path / "e"))
    with pytest.raises(E.KeyRejected):
        donghanh.Device.open(str(tmp_path / "d"), MemoryKeyStore(), PIN)
    gone = MemoryKeyStore()
    gone.key = None
    with pytest.raises(E.KeyMissing):
        donghanh.Device.open(str(tmp_path / "d"), gone, PIN)
    # Nothing was damaged: the right key and PIN still open it.
    donghanh.Device.open(str(tmp_path / "d"), keys, PIN)


def test_every_bad_argument_is_a_typed_error_that_quotes_nothing(tmp_path):
    dev = donghanh.Device.create(str(tmp_path / "d"), MemoryKeyStore(), PIN)
    person = dev.add_person(donghanh.NewPerson(
        full_name="Phạm Văn Có", birth_date="1988-01-02", sex=donghanh.Sex.MALE,
        phone=None, address=None, id_number=None, commune=None))
    missing = "6f1f1c3e-8a57-4c1e-9a7e-2b1de0b9a111"
    huge = MARKER * 100_000
    episode = dev.add_episode(person, donghanh.EpisodeKind.OST, day(-30), None)
    dev.propose_episode(episode, day(-20))
    dev.activate_episode(episode, day(-20))

    def person_with(**over):
        fields = dict(full_name=MARKER, birth_date="1990-01-01", sex=donghanh.Sex.FEMALE,
                      phone=None, address=None, id_number=None, commune=None)
        fields.update(over)
        return donghanh.NewPerson(**fields)

    invalid = [
        lambda: dev.add_person(person_with(full_name="")),
        lambda: dev.add_person(person_with(full_name="   ")),
        lambda: dev.add_person(person_with(full_name=huge)),
        lambda: dev.add_person(person_with(birth_date="")),
        lambda: dev.add_person(person_with(birth_date="1990-02-30")),
        lambda: dev.add_person(person_with(birth_date=MARKER)),
        lambda: dev.add_person(person_with(birth_date=day(10))),
        lambda: dev.add_person(person_with(id_number="12ab")),
        lambda: dev.add_person(person_with(commune="xã")),
        lambda: dev.person(""),
        lambda: dev.person(MARKER),
        lambda: dev.add_visit(donghanh.NewVisit(person=person, notes="", at=None,
                                                mode=donghanh.VisitMode.HOME)),
        lambda: dev.add_visit(donghanh.NewVisit(person=person, notes=huge, at=None,
                                                mode=donghanh.VisitMode.PHONE)),
        lambda: dev.add_visit(donghanh.NewVisit(person=person, notes="x", at="yesterday",
                                                mode=donghanh.VisitMode.HOME)),
        lambda: dev.add_visit(donghanh.NewVisit(person=person, notes="x",
                                                at="2999-01-01T00:00:00Z",
                                                mode=donghanh.VisitMode.HOME)),
        lambda: dev.add_visit(donghanh.NewVisit(person="not-an-id", notes="x", at=None,
                                                mode=donghanh.VisitMode.HOME)),
        lambda: dev.add_task(person, "soon", "x", None),
        lambda: dev.add_task(person, day(1), "", None),
        lambda: dev.add_task(person, day(1), huge, None),
        lambda: dev.add_episode(person, donghanh.EpisodeKind.OST, "2024-13-01", None),
        lambda: dev.add_support_benefit(person, donghanh.BenefitKind.LOAN, -5, day(), None),
        lambda: dev.add_support_benefit(person, donghanh.BenefitKind.LOAN, 2**62, day(), None),
        lambda: dev.add_referral(person, donghanh.ReferralTarget.SCHOOL, day(5), None),
        lambda: dev.add_session("", donghanh.SessionKind.GROUP, "t", None),
        lambda: dev.add_session(missing, donghanh.SessionKind.GROUP, "", None),
        lambda: dev.complete_task("🙂"),
        lambda: dev.mark_walk_ins("x", 1),
        lambda: dev.propose_episode("", day()),
        lambda: dev.propose_episode(missing, ""),
        lambda: dev.activate_episode(MARKER, day()),
        lambda: dev.activate_episode(missing, "2024-02-30"),
        lambda: dev.complete_episode(missing, MARKER),
        lambda: dev.terminate_episode("", donghanh.TerminationReason.DEATH, day()),
        lambda: dev.terminate_episode(missing, donghanh.TerminationReason.DEATH, "hôm nay"),
        lambda: dev.record_relapse("", day(-1), "Trạm y tế", day(), None),
        lambda: dev.record_relapse(missing, "", "Trạm y tế", day(), None),
        lambda: dev.record_relapse(missing, day(-1), "Trạm y tế", MARKER, None),
        lambda: dev.hold_session(""),
        lambda: dev.cancel_session(MARKER),
        lambda: dev.update_referral("", donghanh.ReferralStatus.ACCEPTED, day()),
        lambda: dev.update_referral(missing, donghanh.ReferralStatus.ACCEPTED, "2024-1-1x"),
        lambda: dev.resolve_conflict("", True),
        lambda: dev.resolve_conflict(MARKER, False),
        lambda: dev.drug_tests(""),
        lambda: dev.support_benefits(MARKER),
        lambda: dev.referrals("x"),
        lambda: dev.record_relapse(episode, day(-1), huge, day(), None),
        lambda: dev.record_relapse(episode, day(-1), "Trạm y tế", day(), huge),
        lambda: dev.record_relapse(episode, day(1), "Trạm y tế", day(2), None),
        lambda: dev.terminate_episode(episode, donghanh.TerminationReason.MOVED, day(-31)),
        lambda: dev.add_referral(person, donghanh.ReferralTarget.SCHOOL, day(), huge),
        lambda: dev.add_support_benefit(person, donghanh.BenefitKind.SCHOOLING, 0, day(), huge),
        lambda: donghanh.Device.create("", MemoryKeyStore(), PIN),
        lambda: donghanh.Device.create("  ", MemoryKeyStore(), PIN),
        lambda: donghanh.Device.create(str(tmp_path / "a\x00b"), MemoryKeyStore(), PIN),
        lambda: donghanh.Device.open("", MemoryKeyStore(), PIN),
        lambda: donghanh.Device.enroll("", MemoryKeyStore(), PIN, "http://127.0.0.1:9", "u",
                                       "p", "pytest"),
    ]
    for i, call in enumerate(invalid):
        with pytest.raises(E.InvalidInput) as err:
            call()
        assert MARKER not in str(err.value), i
        assert "nguyen thi" not in str(err.value).lower(), i

    for call, kind in [
        (lambda: dev.person(missing), "person"),
        (lambda: dev.visits(missing), "person"),
        (lambda: dev.add_visit(donghanh.NewVisit(person=missing, notes="x", at=None,
                                                 mode=donghanh.VisitMode.HOME)), "person"),
        (lambda: dev.add_drug_test(donghanh.NewDrugTest(
            person=missing, at=None, kind=donghanh.TestKind.SURPRISE,
            method=donghanh.TestMethod.SALIVA, result=donghanh.TestResult.INVALID,
            note=None)), "person"),
        (lambda: dev.complete_task(missing), "task"),
        (lambda: dev.attendance(missing), "session"),
        (lambda: dev.mark_walk_ins(missing, 2), "session"),
        (lambda: dev.episodes(missing), "person"),
        (lambda: dev.propose_episode(missing, day()), "episode"),
        (lambda: dev.activate_episode(missing, day()), "episode"),
        (lambda: dev.complete_episode(missing, day()), "episode"),
        (lambda: dev.complete_episode(person, day()), "episode"),
        (lambda: dev.terminate_episode(missing, donghanh.TerminationReason.OTHER, day()),
         "episode"),
        (lambda: dev.record_relapse(missing, day(-1), "Trạm y tế", day(), None), "episode"),
        (lambda: dev.hold_session(missing), "session"),
        (lambda: dev.cancel_session(person), "session"),
        (lambda: dev.update_referral(missing, donghanh.ReferralStatus.DECLINED, day()),
         "referral"),
        (lambda: dev.drug_tests(missing), "person"),
        (lambda: dev.support_benefits(missing), "person"),
        (lambda: dev.referrals(missing), "person"),
    ]:
        with pytest.raises(E.NotFound) as err:
            call()
        assert err.value.kind == kind

    with pytest.raises(E.NotEnrolled):
        dev.sync(None)
    with pytest.raises(E.NotEnrolled):
        dev.conflicts()
    with pytest.raises(E.NotEnrolled):
        dev.resolve_conflict(missing, True)
    with pytest.raises(E.NotEnrolled):
        dev.assign_case(person, "tnv.khong-co")
    with pytest.raises(E.UnknownUser):
        dev.add_task(person, day(1), "x", "tnv.khong-co")
    assert not donghanh.store_exists("")
    assert dev.dismiss_rejected(2**64 - 1) is False
    assert dev.dismiss_rejected(0) is False
    with pytest.raises(E.WeakPin):
        donghanh.Device.create(str(tmp_path / "weak"), MemoryKeyStore(), "1")
    with pytest.raises(E.AlreadyExists):
        donghanh.Device.create(str(tmp_path / "d"), MemoryKeyStore(), PIN)
    with pytest.raises(E.NoStore):
        donghanh.Device.open(str(tmp_path / "nowhere"), MemoryKeyStore(), PIN)
    for call in [
        lambda: dev.propose_episode(episode, day()),
        lambda: dev.activate_episode(episode, day()),
    ]:
        with pytest.raises(E.InvalidTransition):
            call()
    # Nothing of the refused calls was written.
    assert [p.id for p in dev.people()] == [person]
    assert [e.status for e in dev.episodes(person)] == ["active"]
    assert dev.pending_changes() == 4


def test_enrolment_errors(server, username, tmp_path):
    name = username("tnv")
    server.add_user(name, "volunteer", org=server.team)
    with pytest.raises(E.Server) as err:
        donghanh.Device.enroll(str(tmp_path / "a"), MemoryKeyStore(), PIN, server.url, name,
                               "wrong password", "pytest")
    assert MARKER not in str(err.value)
    assert not donghanh.store_exists(str(tmp_path / "a"))
    with pytest.raises(E.Network):
        donghanh.Device.enroll(str(tmp_path / "b"), MemoryKeyStore(), PIN, "http://127.0.0.1:9",
                               name, "x", "pytest")
    with pytest.raises(E.Network):
        donghanh.Device.enroll(str(tmp_path / "c"), MemoryKeyStore(), PIN, "not a url", name,
                               "x", "pytest")


def test_a_revoked_device_is_wiped_and_a_throwing_listener_changes_nothing(
        server, username, tmp_path):
    name = username("tnv")
    server.add_user(name, "volunteer", org=server.team)
    dev = enroll(server, tmp_path / "p", name)
    assert dev.sync(Throws()).rejected == 0
    server.revoke(dev.enrollment().device_id)
    heard = Heard()
    with pytest.raises(E.Revoked):
        dev.sync(heard)
    assert heard.wiped_count == 1


def test_a_listener_may_lock_the_device_in_the_middle_of_a_sync(server, username, tmp_path):
    name = username("tnv")
    server.add_user(name, "volunteer", org=server.team)
    dev = enroll(server, tmp_path / "p", name)

    class LocksOnFirstNotice(Heard):
        def progress(self, phase, report):
            super().progress(phase, report)
            dev.lock()

    heard = LocksOnFirstNotice()
    dev.sync(heard)  # the round that was running finishes
    assert donghanh.SyncPhase.DONE in heard.phases
    assert dev.is_locked()
    with pytest.raises(E.Locked):
        dev.sync(None)


def test_calls_from_several_threads(tmp_path):
    dev = donghanh.Device.create(str(tmp_path / "d"), MemoryKeyStore(), PIN)
    errors = []

    def work(n):
        try:
            for i in range(10):
                p = dev.add_person(donghanh.NewPerson(
                    full_name=f"Người {n}-{i}", birth_date="1991-03-04", sex=donghanh.Sex.FEMALE,
                    phone=None, address=None, id_number=None, commune=None))
                dev.add_visit(donghanh.NewVisit(person=p, notes="ổn", at=None,
                                                mode=donghanh.VisitMode.PHONE))
                dev.caseload()
        except Exception as e:  # noqa: BLE001 (collected and asserted below)
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(dev.people()) == 40
    assert dev.pending_changes() == 80


def test_a_supervisor_phone_computes_the_commune_report_offline(server, commune):
    sup, hoa, _, _, _ = commune
    # Reports count by the day in Vietnam (UTC+7).
    vn_today = (datetime.datetime.now(datetime.timezone.utc)
                + datetime.timedelta(hours=7)).date()
    month = vn_today.strftime("%Y-%m")

    def rows():
        report = sup.report("", month)
        assert (report.template, report.period) == ("01-BCN", month)
        return report, {r.code: r for s in report.sections for r in s.rows}

    # The commune the shared server holds already counts; this test adds to it.
    _, before = rows()
    loans_before = len(sup.report_records("BEN_LOAN_VND", month))
    person = new_case(sup, server, "Đỗ Văn Báo Cáo")
    sup.add_visit(donghanh.NewVisit(
        person=person, notes="Thăm tại nhà", at=None, mode=donghanh.VisitMode.HOME))
    sup.add_support_benefit(
        person, donghanh.BenefitKind.LOAN, 20_000_000, vn_today.isoformat(), None)
    report, after = rows()
    assert after["VISITS"].value.whole == before["VISITS"].value.whole + 1
    assert (after["BEN_LOAN_VND"].value.whole
            == before["BEN_LOAN_VND"].value.whole + 20_000_000)
    assert after["BEN_LOAN_VND"].value.kind == "amount_vnd"
    assert after["BEN_LOAN_VND"].value.text.endswith(" đ")
    assert after["REACHED_PCT"].value.kind == "percent"
    assert "Đỗ Văn Báo Cáo" not in report.text
    assert len(sup.report_records("BEN_LOAN_VND", month)) == loans_before + 1
    for bad in ["2026-13", "", "2026-H3", "x" * 5000]:
        with pytest.raises(E.InvalidInput):
            sup.report("", bad)
    with pytest.raises(E.InvalidInput):
        sup.report("NOPE", month)
    with pytest.raises(E.InvalidInput):
        sup.report_records("NOPE", month)
    # The form as a spreadsheet (a real XLSX: a zip with the workbook inside) and as CSV.
    xlsx = sup.report_export("", month, "xlsx", "Xã Thử Nghiệm")
    assert xlsx[:2] == b"PK" and len(xlsx) > 5000
    csv_text = sup.report_export("", month, "csv", "").decode("utf-8-sig")
    assert csv_text.splitlines()[0].startswith("template,period,no,code")
    assert f"01-BCN,{month}," in csv_text
    assert "Đỗ Văn Báo Cáo" not in csv_text
    with pytest.raises(E.InvalidInput):
        sup.report_export("", month, "pdf", "")
    # A record book names people: a purpose is required and each person listed is logged.
    pending = sup.pending_changes()
    book = sup.book_export("04-SCN", vn_today.isoformat(), "In sổ", "csv", "")
    listed = len(book.decode("utf-8-sig").splitlines()) - 1
    assert sup.pending_changes() == pending + listed
    with pytest.raises(E.InvalidInput):
        sup.book_export("04-SCN", vn_today.isoformat(), " ", "csv", "")
    with pytest.raises(E.InvalidInput):
        sup.book_export("09", vn_today.isoformat(), "In sổ", "csv", "")
    with pytest.raises(E.InvalidInput):
        sup.book_export("04", "31/10/2026", "In sổ", "csv", "")
    assert sup.pending_changes() == pending + listed
    # A volunteer's phone holds a few cases, not the commune.
    with pytest.raises(E.InvalidInput):
        hoa.report("", month)
    with pytest.raises(E.InvalidInput):
        hoa.book_export("04", vn_today.isoformat(), "In sổ", "xlsx", "")
