package org.donghanh.field

import java.nio.file.Path
import java.time.LocalDate
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNotNull
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import org.junit.jupiter.api.io.TempDir
import uniffi.donghanh.BenefitKind
import uniffi.donghanh.DonghanhException
import uniffi.donghanh.RiskSign
import uniffi.donghanh.Service
import uniffi.donghanh.SessionKind
import uniffi.donghanh.SyncPhase
import uniffi.donghanh.TerminationReason
import uniffi.donghanh.TestResult
import uniffi.donghanh.VisitMode
import uniffi.donghanh.uniffiEnsureInitialized

/**
 * Each role's day, screen by screen, against a real server and the real library: the state
 * holders are driven as the Android screens drive them, and their states are checked.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class RoleDaysTest {
    private lateinit var server: TestServer
    private lateinit var signal: Signal
    private val today get() = Clock.SYSTEM.today()

    @BeforeAll
    fun start() {
        uniffiEnsureInitialized()
        server = TestServer()
        signal = Signal(server.port)
    }

    @AfterAll
    fun stop() {
        signal.close()
        server.close()
    }

    /** A supervisor's phone, enrolled and synced, with `names` as new cases assigned to `to`. */
    private suspend fun supervisorWithCases(dir: Path, to: String?, vararg names: String): Pair<Phone, List<String>> {
        val sup = Phone(dir)
        sup.enroll(server.url, server.addUser("gs", "supervisor", "Trần Văn Giám"))
        sup.synced()
        val people = names.map { sup.newCase(it, server.commune) }
        if (to != null) {
            for (p in people) {
                val vm = ReassignViewModel(sup.session, p)
                vm.load()
                vm.choose(to)
                assertTrue(vm.save(), "assign: ${vm.state.value.message}")
            }
        }
        sup.synced()
        return sup to people
    }

    @Test
    fun `a volunteer records three visits offline, syncs, and sees the task her supervisor added`(@TempDir tmp: Path) = runBlocking<Unit> {
        val hoaName = server.addUser("tnv", "volunteer", "Nguyễn Thị Hoa", org = server.team)
        val (sup, people) = supervisorWithCases(tmp.resolve("sup"), hoaName, "Lê Văn Ánh", "Phạm Thị Bình", "Đỗ Văn Cường")
        val hoa = Phone(tmp.resolve("hoa"))
        hoa.enroll(signal.url, hoaName)
        hoa.synced()

        val mine = PeopleViewModel(hoa.session)
        mine.search("")
        assertEquals(3, mine.state.value.people.size)
        mine.search("le van anh")
        assertEquals(listOf("Lê Văn Ánh"), mine.state.value.people.map { it.name })
        ScreenText.capture("people", T.myPeople, mine.state.value)
        val todayVm = TodayViewModel(hoa.session)
        todayVm.load()
        assertEquals(3, todayVm.state.value.toVisit.size)
        assertTrue(todayVm.state.value.toVisit.all { it.why == T.neverVisited })

        // No signal from here on: everything is written on the phone.
        signal.online = false
        val first = VisitFormViewModel(hoa.session, people[0])
        first.nextVisitDue("hôm qua")
        assertFalse(first.save())
        assertEquals(mapOf("observations" to T.required, "nextVisitDue" to T.dayInvalid), first.state.value.errors)
        first.nextVisitDue(today.minusDays(1).toString())
        assertFalse(first.save())
        assertEquals(T.dayInPast, first.state.value.errors["nextVisitDue"])
        first.mode(VisitMode.HOME)
        first.observations("Gia đình hợp tác, anh Ánh đi làm phụ hồ")
        first.toggle(RiskSign.UNEMPLOYMENT)
        first.toggle(RiskSign.CONTACT_WITH_USERS)
        first.toggle(Service.COUNSELLING)
        first.toggle(Service.JOB_SEARCH)
        first.nextVisitDue(today.plusDays(7).toString())
        ScreenText.capture("visit", T.recordVisit, first.state.value)
        assertTrue(first.save(), "${first.state.value.message}")
        assertEquals(T.saved, first.state.value.message)
        for ((i, p) in people.drop(1).withIndex()) {
            val vm = VisitFormViewModel(hoa.session, p)
            vm.mode(if (i == 0) VisitMode.PHONE else VisitMode.HOME)
            vm.observations("Ổn định, đã hẹn lần sau")
            vm.toggle(Service.COUNSELLING)
            vm.nextVisitDue(today.plusDays(14).toString())
            assertTrue(vm.save())
        }
        val test = DrugTestViewModel(hoa.session, people[0])
        assertFalse(test.save())
        assertEquals(T.chooseOne, test.state.value.errors["result"])
        test.result(TestResult.NEGATIVE)
        assertTrue(test.save())
        val support = SupportViewModel(hoa.session, people[0])
        support.amount("12abc")
        support.day(today.plusDays(1).toString())
        assertFalse(support.save())
        assertEquals(setOf("kind", "amount", "day"), support.state.value.errors.keys)
        assertEquals(T.dayInFuture, support.state.value.errors["day"])
        support.kind(BenefitKind.CASH_SUPPORT)
        support.amount("1.000.000")
        support.day(today.toString())
        assertTrue(support.save())

        assertFalse(hoa.sync.syncNow())
        val offline = hoa.sync.state.value
        assertEquals(5L, offline.pending)
        assertEquals("Không kết nối được máy chủ. Mọi thay đổi vẫn được lưu trên máy.", offline.message!!.vi)
        assertEquals("Cannot reach the server. Every change is still saved on this phone.", offline.message!!.en)
        assertEquals(1, SyncRecord.load(hoa.session.settings).failures)
        ScreenText.capture("sync-offline", Text("Đồng bộ", "Sync"), offline)
        todayVm.load()
        assertTrue(todayVm.state.value.toVisit.isEmpty(), "every visit set its next one")

        // Meanwhile the supervisor adds a task for her.
        val task = TaskFormViewModel(sup.session, people[0])
        task.load()
        task.reason("Đưa anh Ánh đi làm CCCD")
        task.due(today.minusDays(2).toString())
        assertFalse(task.save())
        assertEquals(T.dayInPast, task.state.value.errors["due"])
        task.due(today.plusDays(2).toString())
        task.assignee(hoaName)
        ScreenText.capture("task", T.taskTitle, task.state.value)
        assertTrue(task.save())
        sup.synced()

        signal.online = true
        hoa.synced()
        val back = hoa.sync.state.value
        assertEquals(0L, back.pending)
        assertEquals(T.phase(SyncPhase.PUSHING), back.round.first())
        assertEquals(T.phase(SyncPhase.DONE), back.round.last())
        assertNull(back.progress, "no progress line once the round is over")
        assertTrue(back.message!!.vi.startsWith("Đã gửi 5,"), "${back.message}")
        assertTrue(back.message!!.en.startsWith("Sent 5,"), "${back.message}")
        assertEquals(0, SyncRecord.load(hoa.session.settings).failures)
        todayVm.load()
        val upcoming = todayVm.state.value.upcoming.single()
        assertEquals("Lê Văn Ánh" to "Đưa anh Ánh đi làm CCCD", upcoming.personName to upcoming.reason)
        ScreenText.capture("today", T.todayTitle, todayVm.state.value)
        ScreenText.capture("today-en", T.todayTitle, todayVm.state.value, Lang.EN)

        val person = PersonViewModel(hoa.session, people[0])
        person.load()
        val s = person.state.value
        assertEquals(T.episodeStatus("active"), s.episodes.single().status)
        assertEquals(T.plannedEnd(today.minusDays(30).plusYears(1).toString()), s.episodes.single().plannedEnd)
        assertEquals(listOf(T.risk(RiskSign.CONTACT_WITH_USERS), T.risk(RiskSign.UNEMPLOYMENT)), s.lastVisits.single().risks)
        assertEquals(listOf("Đưa anh Ánh đi làm CCCD"), s.tasks.map { it.reason })
        assertEquals(listOf(1_000_000L), s.support.map { it.amountVnd })
        ScreenText.capture("person", T.personTitle, s)
        person.completeTask(s.tasks.single().id)
        assertTrue(person.state.value.tasks.isEmpty())

        // The supervisor's phone has the visits after its next sync.
        sup.synced()
        val seen = PersonViewModel(sup.session, people[0])
        seen.load()
        assertEquals(listOf("Gia đình hợp tác, anh Ánh đi làm phụ hồ"), seen.state.value.lastVisits.map { it.notes })
    }

    @Test
    fun `a counsellor plans a session, takes attendance and writes a counselling note`(@TempDir tmp: Path) = runBlocking<Unit> {
        val thuName = server.addUser("tv", "counsellor", "Vũ Thị Thu", point = server.point)
        val (sup, people) = supervisorWithCases(tmp.resolve("sup"), thuName, "Lê Thị Tham Dự", "Hồ Văn Khách")
        val thu = Phone(tmp.resolve("thu"))
        thu.enroll(server.url, thuName)
        val sessions = SessionsViewModel(thu.session)
        sessions.load()
        assertEquals(T.noPoint, sessions.state.value.message, "the point is known after the first sync")
        thu.synced()
        sessions.load()
        assertEquals(server.point, sessions.state.value.point)

        val plan = PlanSessionViewModel(thu.session)
        plan.day("20/11/2026")
        plan.time("9h")
        assertNull(plan.save())
        assertEquals(mapOf("topic" to T.required, "day" to T.dayInvalid, "time" to T.timeInvalid), plan.state.value.errors)
        plan.kind(SessionKind.GROUP)
        plan.topic("Phòng ngừa tái nghiện")
        plan.day(today.toString())
        plan.time("00:00")
        ScreenText.capture("plan-session", T.planSession, plan.state.value)
        val sessionId = plan.save()

        assertNotNull(sessionId)
        val attendance = AttendanceViewModel(thu.session, sessionId!!)
        attendance.load()
        assertEquals(2, attendance.state.value.people.size)
        attendance.search("tham du")
        assertEquals(listOf("Lê Thị Tham Dự"), attendance.state.value.people.map { it.name })
        attendance.toggle(people[0])
        attendance.walkIns("ba")
        assertFalse(attendance.save())
        assertEquals(T.countInvalid, attendance.state.value.errors["walkIns"])
        attendance.walkIns("3")
        assertEquals(T.attendanceCount(1, 3), attendance.state.value.count)
        ScreenText.capture("attendance", T.attendanceTitle, attendance.state.value)
        assertTrue(attendance.save(), "${attendance.state.value.message}")
        assertTrue(attendance.state.value.people.single().alreadyMarked)
        assertFalse(attendance.save())
        assertEquals(T.nothingToSave, attendance.state.value.message)

        val note = CounsellingNoteViewModel(thu.session)
        note.load()
        assertEquals(2, note.state.value.clients.size)
        assertFalse(note.save())
        assertEquals(setOf("client", "note"), note.state.value.errors.keys)
        note.client(people[1])
        note.note("Lo âu về việc làm; hẹn gặp lại tuần sau")
        ScreenText.capture("counselling-note", T.counsellingNote, note.state.value)
        assertTrue(note.save())

        sessions.load()
        val rows = sessions.state.value.sessions
        assertEquals(2, rows.size)
        val group = rows.single { it.id == sessionId }
        assertEquals(T.sessionStatus(uniffi.donghanh.SessionStatus.HELD) to 4, group.status to group.attendances)
        ScreenText.capture("sessions", T.sessionsTitle, sessions.state.value)
        thu.synced()
        assertEquals(0L, thu.sync.state.value.pending)
        assertTrue(thu.sync.state.value.rejected.isEmpty())

        sup.synced()
        val seen = PersonViewModel(sup.session, people[1])
        seen.load()
        assertEquals(T.mode(VisitMode.AT_POINT), seen.state.value.lastVisits.single().mode)
        val month = MonthViewModel(sup.session)
        month.load()
        assertNull(month.state.value.message)
        assertTrue(month.state.value.lines.isNotEmpty())
        ScreenText.capture("month", T.monthTitle, month.state.value)
        val refused = MonthViewModel(thu.session)
        refused.load()
        assertNotNull(refused.state.value.message)
    }

    @Test
    fun `a supervisor reassigns a case and the volunteer's screens lose it after sync`(@TempDir tmp: Path) = runBlocking<Unit> {
        val hoaName = server.addUser("tnv", "volunteer", "Nguyễn Thị Hoa", org = server.team)
        val lanName = server.addUser("tnv", "volunteer", "Bùi Thị Lan", org = server.team)
        val (sup, people) = supervisorWithCases(tmp.resolve("sup"), hoaName, "Mai Văn Chuyển", "Lý Thị Ở Lại")
        val hoa = Phone(tmp.resolve("hoa"))
        hoa.enroll(server.url, hoaName)
        hoa.synced()
        val mine = PeopleViewModel(hoa.session)
        mine.search("")
        assertEquals(listOf("Lý Thị Ở Lại", "Mai Văn Chuyển"), mine.state.value.people.map { it.name }.sorted())

        val caseload = PeopleViewModel(sup.session)
        caseload.search("mai van")
        assertEquals(listOf(people[0]), caseload.state.value.people.map { it.id })
        val reassign = ReassignViewModel(sup.session, people[0])
        reassign.load()
        assertTrue(reassign.state.value.helpers.map { it.username }.containsAll(listOf(hoaName, lanName)))
        assertFalse(reassign.save())
        assertEquals(T.chooseOne, reassign.state.value.errors["helper"])
        reassign.choose(lanName)
        ScreenText.capture("reassign", T.reassignTitle, reassign.state.value)
        assertTrue(reassign.save())

        val note = SupervisionNoteViewModel(sup.session)
        note.load()
        note.volunteer(hoaName)
        assertFalse(note.save())
        assertEquals(T.required, note.state.value.errors["note"])
        note.note("Đã rà soát 2 hồ sơ; cần thăm anh Chuyển thường xuyên hơn")
        ScreenText.capture("supervision-note", T.supervisionTitle, note.state.value)
        assertTrue(note.save())
        sup.synced()

        val person = PersonViewModel(hoa.session, people[0])
        person.load()
        assertEquals("Mai Văn Chuyển", person.state.value.name)
        hoa.synced()
        val notice = hoa.sync.state.value.notices
        assertEquals(listOf(T.casesRemoved(1)), notice)
        assertTrue(T.phase(SyncPhase.PURGING) in hoa.sync.state.value.round)
        assertEquals("1 hồ sơ đã được gỡ khỏi máy này (đã chuyển cho người khác hoặc đã kết thúc).", notice.single().vi)
        ScreenText.capture("sync-removed", Text("Đồng bộ", "Sync"), hoa.sync.state.value)
        mine.search("")
        assertEquals(listOf("Lý Thị Ở Lại"), mine.state.value.people.map { it.name })
        mine.search("chuyen")
        assertEquals(T.noMatch, mine.state.value.empty)
        person.load()
        assertTrue(person.state.value.gone)
        hoa.sync.dismissNotices()
        assertTrue(hoa.sync.state.value.notices.isEmpty())

        val lan = Phone(tmp.resolve("lan"))
        lan.enroll(server.url, lanName)
        lan.synced()
        val hers = PeopleViewModel(lan.session)
        hers.search("")
        assertEquals(listOf("Mai Văn Chuyển"), hers.state.value.people.map { it.name })
    }

    @Test
    fun `a supervisor resolves a conflict, and a revoked phone is wiped and says so`(@TempDir tmp: Path) = runBlocking<Unit> {
        val hoaName = server.addUser("tnv", "volunteer", "Nguyễn Thị Hoa", org = server.team)
        val (sup, people) = supervisorWithCases(tmp.resolve("sup"), null, "Phan Văn Hai Ý")
        val episode = sup.device { d -> d.episodes(people[0]).single().id }
        val reassign = ReassignViewModel(sup.session, people[0])
        reassign.load()
        reassign.choose(hoaName)
        assertTrue(reassign.save())
        sup.synced()
        val hoa = Phone(tmp.resolve("hoa"))
        hoa.enroll(server.url, hoaName)
        hoa.synced()
        sup.device { it.completeEpisode(episode, today.toString()) }
        hoa.device { it.terminateEpisode(episode, TerminationReason.MOVED, today.toString()) }
        sup.synced()
        hoa.synced()

        val conflicts = ConflictsViewModel(sup.session)
        conflicts.load()
        val c = conflicts.state.value.conflicts.single()
        assertEquals(Triple("Phan Văn Hai Ý", "status", T.episodeStatus("completed")), Triple(c.personName, c.field, c.lost))
        assertEquals(T.episodeStatus("terminated"), c.kept)
        ScreenText.capture("conflicts", T.conflictsTitle, conflicts.state.value)
        conflicts.resolve(c.id, restore = true)
        assertEquals(T.noConflicts, conflicts.state.value.empty)

        // A case of another commune is refused by the server: the sync screen lists it, with its reason.
        val elsewhere = server.admin("org", "add", "--name", "Xã Bên Cạnh", "--parent", server.province)
        sup.device { it.addPerson(uniffi.donghanh.NewPerson("Trương Văn Xã Khác", "1988-01-02", uniffi.donghanh.Sex.MALE, null, null, null, elsewhere)) }
        sup.synced()
        val refusedRows = sup.sync.state.value.rejected
        assertEquals(listOf("person"), refusedRows.map { it.kind })
        assertEquals(T.rejectedChange("person", refusedRows.single().code), refusedRows.single().text)
        ScreenText.capture("sync-rejected", Text("Đồng bộ", "Sync"), sup.sync.state.value)
        sup.sync.dismissRejected(refusedRows.single().clientSeq)
        assertTrue(sup.sync.state.value.rejected.isEmpty())
        val refused = ConflictsViewModel(hoa.session)
        refused.load()
        assertEquals("Tài khoản này không được làm việc này.", refused.state.value.message!!.vi)

        val deviceId = hoa.device { it.enrollment()!!.deviceId }
        server.admin("device", "revoke", deviceId)
        assertFalse(hoa.sync.syncNow())
        assertEquals(listOf(T.wipedNotice), hoa.sync.state.value.notices)
        assertEquals(Gate.NotEnrolled(T.wipedNotice), hoa.session.gate.value)
        assertFalse(hoa.dataDir.exists())
        hoa.enroll(server.url, hoaName)
        assertTrue(hoa.session.gate.value is Gate.Open)
    }

    @Test
    fun `wrong entries at enrolment and a wrong PIN show their message in both languages`(@TempDir tmp: Path) = runBlocking<Unit> {
        val name = server.addUser("tnv", "volunteer", "Đặng Thị Khóa", org = server.team)
        val phone = Phone(tmp.resolve("p"))
        val enroll = EnrollViewModel(phone.session, "junit")
        enroll.server("ftp://máy-chủ")
        enroll.pin("12ab")
        enroll.pinAgain("12ab")
        assertFalse(enroll.submit())
        assertEquals(mapOf("server" to T.serverInvalid, "username" to T.required, "password" to T.required, "pin" to T.pinDigits),
            enroll.state.value.errors)
        ScreenText.capture("enroll-errors", T.enrollTitle, enroll.state.value)
        enroll.server(server.url)
        enroll.username(name)
        enroll.password("sai mật khẩu")
        enroll.pin("246810")
        enroll.pinAgain("246801")
        assertFalse(enroll.submit())
        assertEquals(mapOf("pinAgain" to T.pinMismatch), enroll.state.value.errors)
        assertEquals("Hai mã PIN không khớp.", T.pinMismatch.vi)
        enroll.pinAgain("246810")
        assertFalse(enroll.submit())
        val refused = enroll.state.value.message!!
        assertEquals("Sai tên đăng nhập hoặc mật khẩu, hoặc phiên đăng nhập đã hết hạn.", refused.vi)
        assertEquals("Wrong username or password, or the sign-in has expired.", refused.en)
        assertEquals("", enroll.state.value.password, "a refused password is not kept")
        assertEquals(Gate.NotEnrolled(), phone.session.gate.value)
        enroll.password(PASSWORD)
        assertTrue(enroll.submit())

        val unlock = UnlockViewModel(phone.session)
        unlock.lock()
        assertEquals(Gate.Locked(T.lockedByUser), phone.session.gate.value)
        unlock.pin("000000")
        assertFalse(unlock.submit())
        assertEquals(Text("Sai mã PIN.", "Wrong PIN."), unlock.state.value.error)
        assertEquals("", unlock.state.value.pin)
        ScreenText.capture("unlock-wrong-pin", T.unlockTitle, unlock.state.value)
        ScreenText.capture("unlock-wrong-pin-en", T.unlockTitle, unlock.state.value, Lang.EN)
        unlock.pin("246810")
        assertTrue(unlock.submit())
        assertTrue(phone.session.gate.value is Gate.Open)
    }

    @Test
    fun `an idle session locks itself and says why`(@TempDir tmp: Path) = runBlocking<Unit> {
        val name = server.addUser("tnv", "volunteer", "Đặng Thị Chờ", org = server.team)
        val clock = ManualClock()
        val phone = Phone(tmp.resolve("p"), clock, idle = java.time.Duration.ofMinutes(5))
        phone.enroll(server.url, name)
        val people = PeopleViewModel(phone.session)
        clock.advance(java.time.Duration.ofMinutes(4))
        people.search("")
        assertNull(people.state.value.message)
        clock.advance(java.time.Duration.ofMinutes(4))
        people.search("") // 4 minutes since the last call: still open
        assertNull(people.state.value.message)
        clock.advance(java.time.Duration.ofMinutes(5))
        people.search("")
        val expired = people.state.value.message!!
        assertEquals("Phiên làm việc đã hết hạn do không thao tác. Nhập mã PIN để tiếp tục.", expired.vi)
        assertEquals("Your session expired after a period of inactivity. Enter your PIN to continue.", expired.en)
        assertEquals(Gate.Locked(T.sessionExpired), phone.session.gate.value)
        val unlock = UnlockViewModel(phone.session)
        assertEquals(T.sessionExpired, unlock.state.value.reason)
        ScreenText.capture("unlock-expired", T.unlockTitle, unlock.state.value)
        unlock.pin(PIN)
        assertTrue(unlock.submit())
        people.search("")
        assertNull(people.state.value.message)

        // Four days later without a sync: a calm notice, the data is safe on the phone.
        phone.synced()
        clock.advance(java.time.Duration.ofDays(4))
        val again = UnlockViewModel(phone.session)
        again.lock()
        again.pin(PIN)
        assertTrue(again.submit())
        phone.sync.refresh()
        val away = phone.sync.state.value
        assertEquals(T.offlineDays(4), away.offline)
        assertEquals(Text("Đồng bộ 4 ngày trước.", "Synced 4 days ago."), away.lastSync)
        ScreenText.capture("sync-offline-days", Text("Đồng bộ", "Sync"), away)
    }

    @Test
    fun `a phone that did not sync within its key lease is erased and says why`(@TempDir tmp: Path) = runBlocking<Unit> {
        TestServer("--key-lease-seconds", "1").use { short ->
            val name = short.addUser("tnv", "volunteer", "Đặng Thị Xa", org = short.team)
            val phone = Phone(tmp.resolve("p"))
            phone.enroll(short.url, name)
            val unlock = UnlockViewModel(phone.session)
            unlock.lock()
            // The lease is one second: wait it out (this waits, it measures nothing).
            Thread.sleep(2_100)
            unlock.pin(PIN)
            assertFalse(unlock.submit())
            val e = unlock.state.value.error!!
            assertEquals(errorText(DonghanhException.LeaseExpired()), e)
            assertTrue(e.vi.startsWith("Phiên đăng ký đã hết hạn"))
            assertTrue(e.en.startsWith("The enrolment expired"))
            assertEquals(Gate.NotEnrolled(e), phone.session.gate.value)
            phone.enroll(short.url, name)
            assertTrue(phone.session.gate.value is Gate.Open)
        }
    }
}
