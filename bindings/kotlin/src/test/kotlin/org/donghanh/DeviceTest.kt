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
import uniffi.donghanh.ReferralTarget
import uniffi.donghanh.SessionKind
import uniffi.donghanh.Sex
import uniffi.donghanh.SyncListener
import uniffi.donghanh.SyncPhase
import uniffi.donghanh.SyncReport
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
        )
        invalid.forEachIndexed { i, call ->
            val e = assertThrows<DonghanhException.InvalidInput>("call $i") { call() }
            assertFalse(e.message.orEmpty().contains(MARKER), "call $i quoted its input")
        }
        assertEquals("person", assertThrows<DonghanhException.NotFound> { dev.person(missing) }.kind)
        assertEquals("task", assertThrows<DonghanhException.NotFound> { dev.completeTask(missing) }.kind)
        assertEquals("session",
            assertThrows<DonghanhException.NotFound> { dev.markWalkIns(missing, 2u) }.kind)
        assertThrows<DonghanhException.NotEnrolled> { dev.sync(null) }
        assertThrows<DonghanhException.UnknownUser> { dev.addTask(person, day(1), "x", "không-có") }
        assertThrows<DonghanhException.WeakPin> {
            Device.create(tmp.resolve("weak").toString(), MemoryKeyStore(), "1")
        }
        assertThrows<DonghanhException.NoStore> {
            Device.open(tmp.resolve("nowhere").toString(), MemoryKeyStore(), PIN)
        }
        assertEquals(listOf(person), dev.people().map { it.id })
        assertEquals(1uL, dev.pendingChanges())
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
