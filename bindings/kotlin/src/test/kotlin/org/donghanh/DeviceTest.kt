package org.donghanh

import java.nio.file.Files
import java.nio.file.Path
import java.time.LocalDate
import java.util.Collections
import java.util.concurrent.Callable
import java.util.concurrent.Executors
import java.util.concurrent.TimeUnit
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import org.junit.jupiter.api.assertThrows
import org.junit.jupiter.api.io.TempDir
import uniffi.donghanh.AttendanceStatus
import uniffi.donghanh.BenefitKind
import uniffi.donghanh.Device
import uniffi.donghanh.DonghanhException
import uniffi.donghanh.EpisodeKind
import uniffi.donghanh.KeyStore
import uniffi.donghanh.NewDrugTest
import uniffi.donghanh.NewPerson
import uniffi.donghanh.NewVisit
import uniffi.donghanh.PriorRehab
import uniffi.donghanh.ReferralStatus
import uniffi.donghanh.ReferralTarget
import uniffi.donghanh.RiskSign
import uniffi.donghanh.Role
import uniffi.donghanh.Service
import uniffi.donghanh.SessionKind
import uniffi.donghanh.SessionStatus
import uniffi.donghanh.Sex
import uniffi.donghanh.SyncListener
import uniffi.donghanh.SyncPhase
import uniffi.donghanh.SyncReport
import uniffi.donghanh.TerminationReason
import uniffi.donghanh.TestKind
import uniffi.donghanh.TestMethod
import uniffi.donghanh.TestResult
import uniffi.donghanh.VisitMode
import uniffi.donghanh.storeExists
import uniffi.donghanh.uniffiEnsureInitialized

private const val MARKER = "Nguyễn Thị Bí Mật"
private fun day(delta: Long = 0) = LocalDate.now().plusDays(delta).toString()

/** A SyncListener in Kotlin: remembers what it was told (from the syncing thread). */
class Heard : SyncListener {
    val phases: MutableList<SyncPhase> = Collections.synchronizedList(mutableListOf())
    val removed: MutableList<String> = Collections.synchronizedList(mutableListOf())
    @Volatile var wiped = 0

    override fun progress(phase: SyncPhase, report: SyncReport) { phases += phase }
    override fun rejected(clientSeq: ULong, code: String) {}
    override fun scopeRemoved(scopeKind: String) { removed += scopeKind }
    override fun wiped() { wiped += 1 }
}

@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class DeviceTest {
    private lateinit var server: TestServer

    @BeforeAll
    fun start() {
        // The API checksums of the generated Kotlin against the loaded library: a stale
        // binding fails here, clearly, instead of crashing later.
        uniffiEnsureInitialized()
        server = TestServer()
    }

    @AfterAll
    fun stop() = server.close()

    private fun enroll(dir: Path, username: String, keys: KeyStore = MemoryKeyStore()) =
        Device.enroll(dir.toString(), keys, PIN, server.url, username, PASSWORD, "junit")

    private fun newPerson(name: String, commune: String? = null, birth: String = "1990-06-07") =
        NewPerson(fullName = name, birthDate = birth, sex = Sex.MALE, phone = "0912345678",
            address = null, idNumber = null, commune = commune)

    private fun newCase(sup: Device, name: String): String {
        val person = sup.addPerson(newPerson(name, server.commune))
        sup.addEpisode(person, EpisodeKind.POST_REHAB, day(-30), PriorRehab.VOLUNTARY)
        return person
    }

    @Test
    fun `a volunteer records offline, syncs, and a reassignment purges her phone`(@TempDir tmp: Path) {
        val supName = server.addUser("gs", "supervisor")
        val hoaName = server.addUser("tnv", "volunteer", org = server.team)
        val lanName = server.addUser("tnv", "volunteer", org = server.team)
        val sup = enroll(tmp.resolve("sup"), supName)
        val hoa = enroll(tmp.resolve("hoa"), hoaName)
        val lan = enroll(tmp.resolve("lan"), lanName)
        sup.sync(null)
        val person = newCase(sup, "Hồ Văn Phân Công")
        sup.assignCase(person, hoaName)
        sup.addTask(person, day(3), "Đưa đi làm CCCD", hoaName)
        assertEquals(4uL, sup.sync(null).pushed)

        val heard = Heard()
        hoa.sync(heard)
        assertTrue(SyncPhase.DONE in heard.phases)
        assertEquals(listOf(person), hoa.findPeople("ho van phan").map { it.id })
        val task = hoa.myTasks().single()
        assertEquals("Đưa đi làm CCCD", task.reason)

        hoa.addVisit(NewVisit(person, "Gia đình hợp tác tốt", null, VisitMode.HOME))
        hoa.addDrugTest(NewDrugTest(person, null, TestKind.PERIODIC, TestMethod.URINE_RAPID,
            TestResult.NEGATIVE, null))
        hoa.addSupportBenefit(person, BenefitKind.PAPERS_HELP, 0, day(), null)
        hoa.addReferral(person, ReferralTarget.JOB_CENTRE, day(), null)
        hoa.completeTask(task.id)
        assertEquals(5uL, hoa.pendingChanges())
        val report = hoa.sync(null)
        assertEquals(5uL to 0uL, report.pushed to report.rejected)
        assertEquals(0uL, hoa.pendingChanges())

        sup.sync(null)
        assertEquals(listOf("Gia đình hợp tác tốt"), sup.visits(person).map { it.notes })
        sup.assignCase(person, lanName)
        sup.sync(null)
        val purge = Heard()
        assertEquals(1uL, hoa.sync(purge).purged)
        assertEquals(listOf("person"), purge.removed.toList())
        assertTrue(hoa.people().isEmpty())
        lan.sync(null)
        assertEquals(listOf(person), lan.people().map { it.id })
    }

    @Test
    fun `a counsellor takes attendance and a supervisor writes a note`(@TempDir tmp: Path) {
        val supName = server.addUser("gs", "supervisor")
        val thuName = server.addUser("tv", "counsellor", point = server.point)
        val volName = server.addUser("tnv", "volunteer", org = server.team)
        val sup = enroll(tmp.resolve("sup"), supName)
        val thu = enroll(tmp.resolve("thu"), thuName)
        sup.sync(null)
        val person = newCase(sup, "Lê Thị Tham Dự")
        sup.sync(null)
        val session = thu.addSession(server.point, SessionKind.GROUP, "Phòng tái nghiện", null)
        thu.markAttendance(session, person, AttendanceStatus.LATE)
        thu.markWalkIns(session, 3u)
        assertThrows<DonghanhException.AlreadyExists> {
            thu.markAttendance(session, person, AttendanceStatus.PRESENT)
        }
        assertEquals(2, thu.attendance(session).size)
        assertEquals(0uL, thu.sync(null).rejected)
        assertEquals(36, sup.addSupervisionNote(volName, "Cần thăm thường xuyên hơn").length)
        assertEquals(0uL, sup.sync(null).rejected)
    }

    @Test
    fun `a visit keeps its signs, services and next visit, episodes show their planned end, enrolments their role`(@TempDir tmp: Path) {
        val supName = server.addUser("gs", "supervisor")
        val thuName = server.addUser("tv", "counsellor", point = server.point)
        val sup = enroll(tmp.resolve("sup"), supName)
        val thu = enroll(tmp.resolve("thu"), thuName)
        assertEquals(Role.SUPERVISOR, sup.enrollment()!!.role)
        assertEquals(Role.COUNSELLOR, thu.enrollment()!!.role)
        assertTrue(java.time.Instant.parse(sup.enrollment()!!.keyLeaseUntil!!).isAfter(java.time.Instant.now()))
        thu.sync(null)
        // A counsellor's directory is their own entry, with their community point.
        assertEquals(listOf(server.point), thu.directory().map { it.point })
        sup.sync(null)
        val person = newCase(sup, "Vũ Văn Kế Hoạch")
        val episode = sup.episodes(person).single()
        // A post-rehab file after voluntary rehab runs one year from its start.
        assertEquals(LocalDate.parse(episode.start).plusYears(1).toString(), episode.plannedEnd)
        val visit = sup.addVisit(NewVisit(person, "Ngủ kém, mất việc", null, VisitMode.HOME,
            riskSigns = listOf(RiskSign.UNEMPLOYMENT, RiskSign.MENTAL_DISTRESS), relapseSuspected = true,
            services = listOf(Service.COUNSELLING), nextVisitDue = day(7)))
        val kept = sup.visits(person).single { it.id == visit }
        assertEquals(listOf(RiskSign.UNEMPLOYMENT, RiskSign.MENTAL_DISTRESS), kept.riskSigns)
        assertEquals(listOf(Service.COUNSELLING), kept.services)
        assertTrue(kept.relapseSuspected)
        assertEquals(day(7), kept.nextVisitDue)
        for (bad in listOf(
            NewVisit(person, "x", null, VisitMode.HOME, nextVisitDue = "tuần sau"),
            NewVisit(person, "x", null, VisitMode.HOME, nextVisitDue = day(-3)),
            NewVisit(person, "x", null, VisitMode.HOME, services = listOf(Service.COUNSELLING, Service.COUNSELLING)),
        )) {
            assertThrows<DonghanhException.InvalidInput> { sup.addVisit(bad) }
        }
        assertEquals(null, Device.create(tmp.resolve("solo").toString(), MemoryKeyStore(), PIN).enrollment())
    }

    @Test
    fun `an episode is proposed, activated and ended once, and a relapse ends another`(@TempDir tmp: Path) {
        val dev = Device.create(tmp.resolve("d").toString(), MemoryKeyStore(), PIN)
        val person = dev.addPerson(newPerson("Hà Văn Hồ Sơ"))
        val episode = dev.addEpisode(person, EpisodeKind.POST_REHAB, day(-60), PriorRehab.VOLUNTARY)
        val early = assertThrows<DonghanhException.InvalidTransition> {
            dev.completeEpisode(episode, day())
        }
        assertEquals("draft" to "completed", early.fromStatus to early.toStatus)
        assertEquals(day(-50), dev.proposeEpisode(episode, day(-50)).fileOpenedOn)
        assertEquals("active", dev.activateEpisode(episode, day(-45)).status)
        val pending = dev.pendingChanges()
        assertThrows<DonghanhException.InvalidInput> {
            dev.terminateEpisode(episode, TerminationReason.RELAPSE, day())
        }
        assertThrows<DonghanhException.InvalidInput> {
            dev.terminateEpisode(episode, TerminationReason.MOVED, day(-61))
        }
        assertThrows<DonghanhException.InvalidInput> { dev.completeEpisode(episode, day(3)) }
        assertEquals(pending, dev.pendingChanges())
        val ended = dev.terminateEpisode(episode, TerminationReason.DEATH, day())
        assertEquals(TerminationReason.DEATH, ended.terminationReason)
        assertEquals(day(), ended.endedOn)
        assertThrows<DonghanhException.InvalidTransition> { dev.completeEpisode(episode, day()) }
        assertEquals(pending + 1uL, dev.pendingChanges())

        val ost = dev.addEpisode(person, EpisodeKind.OST, day(-30), null)
        dev.proposeEpisode(ost, day(-20))
        dev.activateEpisode(ost, day(-20))
        assertThrows<DonghanhException.InvalidInput> {
            dev.recordRelapse(ost, day(-3), " ", day(-1), null)
        }
        assertEquals(36, dev.recordRelapse(ost, day(-3), "Trung tâm Y tế xã", day(-1), null).length)
        val relapsed = dev.episodes(person).single { it.id == ost }
        assertEquals(TerminationReason.RELAPSE, relapsed.terminationReason)
        assertEquals(day(-1), relapsed.endedOn)
    }

    @Test
    fun `sessions are held or cancelled, referrals move along`(@TempDir tmp: Path) {
        val dev = Device.create(tmp.resolve("d").toString(), MemoryKeyStore(), PIN)
        val point = "5b0c6f0e-1d2a-4c3b-8e7f-9a8b7c6d5e4f"
        val past = dev.addSession(point, SessionKind.GROUP, "Kỹ năng sống", "2026-01-05T09:00:00+07:00")
        val later = dev.addSession(point, SessionKind.CLUB, "Câu lạc bộ", "2999-01-05T09:00:00+07:00")
        assertThrows<DonghanhException.InvalidInput> { dev.holdSession(later) }
        assertEquals(SessionStatus.HELD, dev.holdSession(past).status)
        assertThrows<DonghanhException.InvalidTransition> { dev.cancelSession(past) }
        assertEquals(SessionStatus.CANCELLED, dev.cancelSession(later).status)
        assertThrows<DonghanhException.InvalidTransition> { dev.holdSession(later) }

        val person = dev.addPerson(newPerson("Mai Thị Chuyển Gửi"))
        val referral = dev.addReferral(person, ReferralTarget.VOCATIONAL_CENTRE, day(-10), null)
        assertThrows<DonghanhException.InvalidTransition> {
            dev.updateReferral(referral, ReferralStatus.COMPLETED, day())
        }
        assertThrows<DonghanhException.InvalidInput> {
            dev.updateReferral(referral, ReferralStatus.ACCEPTED, day(-11))
        }
        val accepted = dev.updateReferral(referral, ReferralStatus.ACCEPTED, day(-5))
        assertEquals(ReferralStatus.ACCEPTED to day(-5), accepted.status to accepted.statusOn)
        dev.updateReferral(referral, ReferralStatus.DECLINED, day())
        assertThrows<DonghanhException.InvalidTransition> {
            dev.updateReferral(referral, ReferralStatus.COMPLETED, day())
        }
        assertEquals(ReferralStatus.DECLINED, dev.referrals(person).single().status)
    }

    @Test
    fun `a supervisor sees and restores a conflict, a volunteer is refused`(@TempDir tmp: Path) {
        val supName = server.addUser("gs", "supervisor")
        val hoaName = server.addUser("tnv", "volunteer", org = server.team)
        val sup = enroll(tmp.resolve("sup"), supName)
        val hoa = enroll(tmp.resolve("hoa"), hoaName)
        sup.sync(null)
        val person = newCase(sup, "Phan Văn Hai Ý")
        val episode = sup.episodes(person).single().id
        sup.proposeEpisode(episode, day(-20))
        sup.activateEpisode(episode, day(-20))
        sup.assignCase(person, hoaName)
        sup.sync(null)
        hoa.sync(null)
        // Offline, both change the episode: the term served, and a move.
        sup.completeEpisode(episode, day())
        hoa.terminateEpisode(episode, TerminationReason.MOVED, day())
        assertEquals(0uL, sup.sync(null).rejected)
        assertEquals(0uL, hoa.sync(null).rejected)

        assertThrows<DonghanhException.Forbidden> { hoa.conflicts() }
        val c = sup.conflicts().single()
        assertEquals(listOf("episode", episode, person, "status"),
            listOf(c.kind, c.recordId, c.person, c.field))
        assertEquals("""{"terminated":"moved"}""" to "completed", c.kept to c.lost)
        assertEquals(sup.enrollment()!!.deviceId, c.lostByDevice)
        assertThrows<DonghanhException.Forbidden> { hoa.resolveConflict(c.id, true) }
        assertEquals("conflict", assertThrows<DonghanhException.NotFound> {
            sup.resolveConflict("6f1f1c3e-8a57-4c1e-9a7e-2b1de0b9a111", false)
        }.kind)
        sup.resolveConflict(c.id, true)
        assertTrue(sup.conflicts().isEmpty())
        hoa.sync(null)
        assertEquals("completed", hoa.episodes(person).single().status)
    }

    @Test
    fun `a supervisor phone computes the commune report offline, a volunteer's refuses`(@TempDir tmp: Path) {
        val supName = server.addUser("gs", "supervisor")
        val hoaName = server.addUser("tnv", "volunteer", org = server.team)
        val sup = enroll(tmp.resolve("sup"), supName)
        val hoa = enroll(tmp.resolve("hoa"), hoaName)
        sup.sync(null)
        // Reports count by the day in Vietnam (UTC+7).
        val vnToday = java.time.ZonedDateTime.now(java.time.ZoneOffset.ofHours(7)).toLocalDate()
        val month = vnToday.toString().substring(0, 7)
        // The shared server's commune counts already; this test adds to it.
        val before = sup.report("", month).sections.flatMap { it.rows }.associateBy { it.code }
        val loansBefore = sup.reportRecords("BEN_LOAN_VND", month).size
        val person = newCase(sup, "Đỗ Văn Báo Cáo")
        sup.addVisit(NewVisit(person = person, notes = "Thăm tại nhà", at = null, mode = VisitMode.HOME))
        sup.addSupportBenefit(person, BenefitKind.LOAN, 20_000_000, vnToday.toString(), null)
        val report = sup.report("", month)
        assertEquals("01-BCN", report.template)
        val rows = report.sections.flatMap { it.rows }.associateBy { it.code }
        assertEquals(before.getValue("VISITS").value.whole + 1, rows.getValue("VISITS").value.whole)
        assertEquals(
            before.getValue("BEN_LOAN_VND").value.whole + 20_000_000,
            rows.getValue("BEN_LOAN_VND").value.whole,
        )
        assertEquals("percent", rows.getValue("REACHED_PCT").value.kind)
        assertFalse(report.text.contains("Đỗ Văn Báo Cáo"))
        assertEquals(loansBefore + 1, sup.reportRecords("BEN_LOAN_VND", month).size)
        for (bad in listOf("2026-13", "", "2026-H3")) {
            assertThrows<DonghanhException.InvalidInput> { sup.report("", bad) }
        }
        assertThrows<DonghanhException.InvalidInput> { sup.report("NOPE", month) }
        assertThrows<DonghanhException.InvalidInput> { hoa.report("", month) }
    }

    @Test
    fun `wrong PIN, lock and reopen`(@TempDir tmp: Path) {
        val name = server.addUser("tnv", "volunteer", org = server.team)
        val keys = MemoryKeyStore()
        val dir = tmp.resolve("phone").toString()
        val dev = enroll(tmp.resolve("phone"), name, keys)
        val enrolment = dev.enrollment()!!
        dev.lock()
        assertTrue(dev.isLocked())
        assertThrows<DonghanhException.Locked> { dev.people() }
        assertThrows<DonghanhException.WrongPin> { Device.open(dir, keys, "000000") }
        assertEquals(enrolment.deviceId, Device.open(dir, keys, PIN).enrollment()?.deviceId)
        assertTrue(storeExists(dir))
    }

    @Test
    fun `a key store that throws is a typed error, not a crash`(@TempDir tmp: Path) {
        val keys = MemoryKeyStore()
        val dir = tmp.resolve("d").toString()
        Device.create(dir, keys, PIN).lock()
        val throwing = object : KeyStore {
            override fun wrap(secret: ByteArray): ByteArray = throw IllegalStateException("boom")
            override fun unwrap(wrapped: ByteArray): ByteArray = throw RuntimeException("boom")
        }
        val e = assertThrows<DonghanhException.KeyStoreUnavailable> { Device.open(dir, throwing, PIN) }
        assertFalse(e.message.orEmpty().contains("boom"))
        assertThrows<DonghanhException.KeyStoreUnavailable> {
            Device.create(tmp.resolve("e").toString(), throwing, PIN)
        }
        assertFalse(storeExists(tmp.resolve("e").toString()))
        assertThrows<DonghanhException.KeyRejected> { Device.open(dir, MemoryKeyStore(), PIN) }
        assertThrows<DonghanhException.KeyMissing> { Device.open(dir, MemoryKeyStore(null), PIN) }
        Device.open(dir, keys, PIN).close()
    }

    @Test
    fun `every bad argument is a typed error that quotes nothing`(@TempDir tmp: Path) {
        val dev = Device.create(tmp.resolve("d").toString(), MemoryKeyStore(), PIN)
        val person = dev.addPerson(newPerson("Phạm Văn Có"))
        val missing = "6f1f1c3e-8a57-4c1e-9a7e-2b1de0b9a111"
        val huge = MARKER.repeat(100_000)
        val episode = dev.addEpisode(person, EpisodeKind.OST, day(-30), null)
        dev.proposeEpisode(episode, day(-20))
        dev.activateEpisode(episode, day(-20))
        val invalid: List<() -> Any> = listOf(
            { dev.addPerson(newPerson("")) },
            { dev.addPerson(newPerson(" ")) },
            { dev.addPerson(newPerson(huge)) },
            { dev.addPerson(newPerson(MARKER, birth = "")) },
            { dev.addPerson(newPerson(MARKER, birth = "1990-02-30")) },
            { dev.addPerson(newPerson(MARKER, birth = MARKER)) },
            { dev.addPerson(newPerson(MARKER, birth = day(10))) },
            { dev.addPerson(newPerson(MARKER, commune = "xã")) },
            { dev.person("") },
            { dev.person(MARKER) },
            { dev.addVisit(NewVisit(person, "", null, VisitMode.HOME)) },
            { dev.addVisit(NewVisit(person, huge, null, VisitMode.HOME)) },
            { dev.addVisit(NewVisit(person, "x", "yesterday", VisitMode.HOME)) },
            { dev.addVisit(NewVisit(person, "x", "2999-01-01T00:00:00Z", VisitMode.HOME)) },
            { dev.addVisit(NewVisit("not-an-id", "x", null, VisitMode.HOME)) },
            { dev.addTask(person, "soon", "x", null) },
            { dev.addTask(person, day(1), "", null) },
            { dev.addEpisode(person, EpisodeKind.OST, "2024-13-01", null) },
            { dev.addSupportBenefit(person, BenefitKind.LOAN, -5, day(), null) },
            { dev.addSupportBenefit(person, BenefitKind.LOAN, Long.MAX_VALUE, day(), null) },
            { dev.addReferral(person, ReferralTarget.SCHOOL, day(5), null) },
            { dev.addSession("", SessionKind.GROUP, "t", null) },
            { dev.completeTask("🙂") },
            { dev.markWalkIns("x", 1u) },
            { dev.proposeEpisode("", day()) },
            { dev.proposeEpisode(missing, "") },
            { dev.activateEpisode(MARKER, day()) },
            { dev.activateEpisode(missing, "2024-02-30") },
            { dev.completeEpisode(missing, MARKER) },
            { dev.terminateEpisode("", TerminationReason.DEATH, day()) },
            { dev.terminateEpisode(missing, TerminationReason.DEATH, "hôm nay") },
            { dev.recordRelapse("", day(-1), "Trạm y tế", day(), null) },
            { dev.recordRelapse(missing, "", "Trạm y tế", day(), null) },
            { dev.recordRelapse(episode, day(-1), huge, day(), null) },
            { dev.recordRelapse(episode, day(-1), "Trạm y tế", day(), huge) },
            { dev.recordRelapse(episode, day(1), "Trạm y tế", day(2), null) },
            { dev.terminateEpisode(episode, TerminationReason.MOVED, day(-31)) },
            { dev.holdSession("") },
            { dev.cancelSession(MARKER) },
            { dev.updateReferral("", ReferralStatus.ACCEPTED, day()) },
            { dev.updateReferral(missing, ReferralStatus.ACCEPTED, "2024-1-1x") },
            { dev.addReferral(person, ReferralTarget.SCHOOL, day(), huge) },
            { dev.resolveConflict("", true) },
            { dev.resolveConflict(MARKER, false) },
            { dev.drugTests("") },
            { dev.supportBenefits(MARKER) },
            { dev.referrals("x") },
            { Device.create("", MemoryKeyStore(), PIN) },
            { Device.create(tmp.resolve("a").toString() + "\u0000b", MemoryKeyStore(), PIN) },
            { Device.open(" ", MemoryKeyStore(), PIN) },
        )
        invalid.forEachIndexed { i, call ->
            val e = assertThrows<DonghanhException.InvalidInput>("call $i") { call() }
            assertFalse(e.message.orEmpty().contains(MARKER), "call $i quoted its input")
        }
        assertEquals("person", assertThrows<DonghanhException.NotFound> { dev.person(missing) }.kind)
        assertEquals("task", assertThrows<DonghanhException.NotFound> { dev.completeTask(missing) }.kind)
        assertEquals("session",
            assertThrows<DonghanhException.NotFound> { dev.markWalkIns(missing, 2u) }.kind)
        for ((kind, call) in listOf<Pair<String, () -> Any>>(
            "episode" to { dev.proposeEpisode(missing, day()) },
            "episode" to { dev.activateEpisode(person, day()) },
            "episode" to { dev.completeEpisode(missing, day()) },
            "episode" to { dev.terminateEpisode(missing, TerminationReason.OTHER, day()) },
            "episode" to { dev.recordRelapse(missing, day(-1), "Trạm y tế", day(), null) },
            "session" to { dev.holdSession(missing) },
            "session" to { dev.cancelSession(person) },
            "referral" to { dev.updateReferral(missing, ReferralStatus.DECLINED, day()) },
            "person" to { dev.drugTests(missing) },
            "person" to { dev.supportBenefits(missing) },
            "person" to { dev.referrals(missing) },
        )) {
            assertEquals(kind, assertThrows<DonghanhException.NotFound> { call() }.kind)
        }
        assertThrows<DonghanhException.InvalidTransition> { dev.proposeEpisode(episode, day()) }
        assertFalse(storeExists(""))
        assertFalse(dev.dismissRejected(ULong.MAX_VALUE))
        assertThrows<DonghanhException.NotEnrolled> { dev.conflicts() }
        assertThrows<DonghanhException.NotEnrolled> { dev.resolveConflict(missing, true) }
        assertThrows<DonghanhException.NotEnrolled> { dev.sync(null) }
        assertThrows<DonghanhException.UnknownUser> { dev.addTask(person, day(1), "x", "không-có") }
        assertThrows<DonghanhException.WeakPin> {
            Device.create(tmp.resolve("weak").toString(), MemoryKeyStore(), "1")
        }
        assertThrows<DonghanhException.NoStore> {
            Device.open(tmp.resolve("nowhere").toString(), MemoryKeyStore(), PIN)
        }
        assertEquals(listOf(person), dev.people().map { it.id })
        assertEquals(listOf("active"), dev.episodes(person).map { it.status })
        assertEquals(4uL, dev.pendingChanges())
    }

    @Test
    fun `enrolment refused, unreachable, and a revoked device wiped`(@TempDir tmp: Path) {
        val name = server.addUser("tnv", "volunteer", org = server.team)
        assertThrows<DonghanhException.Server> {
            Device.enroll(tmp.resolve("a").toString(), MemoryKeyStore(), PIN, server.url, name,
                "wrong password", "junit")
        }
        assertFalse(storeExists(tmp.resolve("a").toString()))
        assertThrows<DonghanhException.Network> {
            Device.enroll(tmp.resolve("b").toString(), MemoryKeyStore(), PIN, "http://127.0.0.1:9",
                name, "x", "junit")
        }
        val dev = enroll(tmp.resolve("p"), name)
        dev.sync(null)
        server.admin("device", "revoke", dev.enrollment()!!.deviceId)
        val heard = Heard()
        assertThrows<DonghanhException.Revoked> { dev.sync(heard) }
        assertEquals(1, heard.wiped)
    }

    @Test
    fun `a listener may lock the device in the middle of a sync`(@TempDir tmp: Path) {
        val name = server.addUser("tnv", "volunteer", org = server.team)
        val dev = enroll(tmp.resolve("p"), name)
        val heard = object : SyncListener by Heard() {
            override fun progress(phase: SyncPhase, report: SyncReport) = dev.lock()
        }
        dev.sync(heard) // the round already running finishes
        assertTrue(dev.isLocked())
        assertThrows<DonghanhException.Locked> { dev.sync(null) }
    }

    @Test
    fun `calls from several threads at once`(@TempDir tmp: Path) {
        val dev = Device.create(tmp.resolve("d").toString(), MemoryKeyStore(), PIN)
        val pool = Executors.newFixedThreadPool(6)
        try {
            val jobs = (0 until 6).map { n ->
                Callable {
                    repeat(10) { i ->
                        val p = dev.addPerson(newPerson("Người $n-$i"))
                        dev.addVisit(NewVisit(p, "ổn", null, VisitMode.PHONE))
                        dev.caseload()
                        dev.findPeople("nguoi $n")
                    }
                }
            }
            pool.invokeAll(jobs).forEach { it.get() }
        } finally {
            pool.shutdown()
            pool.awaitTermination(60, TimeUnit.SECONDS)
        }
        assertEquals(60, dev.people().size)
        assertEquals(120uL, dev.pendingChanges())
        // Locking while others read waits for them; afterwards every call is refused cleanly.
        dev.lock()
        assertThrows<DonghanhException.Locked> { dev.caseload() }
    }
}
