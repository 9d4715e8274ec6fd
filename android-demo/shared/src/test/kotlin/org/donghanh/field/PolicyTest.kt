package org.donghanh.field

import java.time.Duration
import java.time.Instant
import java.time.LocalDate
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import uniffi.donghanh.DonghanhException

/** The pure parts: sync scheduling, validation, text. No library, no server. */
class PolicyTest {
    private val t0 = Instant.parse("2026-11-20T02:00:00Z")
    private val policy = SyncPolicy()

    @Test
    fun `back-off doubles from one minute and stops at an hour`() {
        assertEquals(listOf(0L, 1L, 2L, 4L, 8L, 16L, 32L, 60L, 60L), (0..8).map { policy.backoff(it).toMinutes() })
        assertEquals(Duration.ofHours(1), policy.backoff(Int.MAX_VALUE))
    }

    @Test
    fun `pending changes go out eagerly, otherwise every two hours, failures wait their back-off`() {
        assertTrue(policy.due(t0, SyncRecord(null, null, 0), 0), "never synced: now")
        val ok = SyncRecord(t0, t0, 0)
        assertFalse(policy.due(t0.plusSeconds(59), ok, 3))
        assertTrue(policy.due(t0.plusSeconds(60), ok, 3))
        assertFalse(policy.due(t0.plus(Duration.ofMinutes(119)), ok, 0))
        assertTrue(policy.due(t0.plus(Duration.ofHours(2)), ok, 0))
        val failing = SyncRecord(t0, t0.plus(Duration.ofHours(1)), 3)
        assertEquals(t0.plus(Duration.ofMinutes(64)), policy.nextAttempt(failing, 3))
    }

    @Test
    fun `offline for days is a calm notice, a lease about to end a warning`() {
        val rec = SyncRecord(t0, t0, 0)
        assertNull(policy.offlineNotice(t0.plus(Duration.ofHours(23)), rec, t0.plus(Duration.ofDays(14))))
        assertEquals(T.offlineDays(4), policy.offlineNotice(t0.plus(Duration.ofDays(4)), rec, t0.plus(Duration.ofDays(14))))
        assertEquals(T.leaseEnding(2), policy.offlineNotice(t0.plus(Duration.ofDays(12)), rec, t0.plus(Duration.ofDays(14))))
        assertEquals("Cần đồng bộ trong 2 ngày tới, nếu không máy sẽ tự xóa dữ liệu để bảo vệ hồ sơ.", T.leaseEnding(2).vi)
        assertNull(policy.offlineNotice(t0, SyncRecord(null, null, 0), null))
    }

    @Test
    fun `the sync record survives in settings as times and a count`() {
        val s = MemorySettings()
        SyncRecord(t0, t0.plusSeconds(5), 2).save(s)
        assertEquals(SyncRecord(t0, t0.plusSeconds(5), 2), SyncRecord.load(s))
        SyncRecord.clear(s)
        assertEquals(SyncRecord(null, null, 0), SyncRecord.load(s))
    }

    @Test
    fun `fields give one message per field and accept what a user types`() {
        val f = Fields()
        assertNull(f.required("a", "   "))
        assertEquals("x", f.required("b", " x "))
        assertNull(f.required("c", "x".repeat(201), Fields.NAME_MAX))
        assertNull(f.pin("pin", "12345"))
        assertNull(f.server("server", "máy chủ"))
        assertEquals("https://donghanh.example.vn", f.server("ok", "https://donghanh.example.vn/"))
        assertEquals(LocalDate.of(2026, 2, 28), f.day("d1", "2026-02-28"))
        assertNull(f.day("d2", "2026-02-30"))
        f.day("d3", "2026-01-01", notBefore = LocalDate.of(2026, 1, 2))
        assertEquals(1_000_000L, f.amount("m1", "1.000.000"))
        assertNull(f.amount("m2", "-5"))
        assertNull(f.amount("m3", "99999999999999999999"))
        assertEquals(0L, f.amount("m4", ""))
        assertNull(f.count("n", "1001"))
        assertEquals(mapOf("a" to T.required, "c" to T.tooLong(200), "pin" to T.pinDigits, "server" to T.serverInvalid,
            "d2" to T.dayInvalid, "d3" to T.dayInPast, "m2" to T.amountInvalid, "m3" to T.amountTooLarge, "n" to T.countInvalid),
            f.toMap())
    }

    @Test
    fun `every text has both languages and errors quote nothing typed`() {
        assertThrows<IllegalArgumentException> { Text("chỉ tiếng Việt", " ") }
        val errors = listOf(
            DonghanhException.InvalidInput("full_name: Nguyễn Văn Bí Mật"),
            DonghanhException.Network("connection refused"),
            DonghanhException.Server("weird", "detail"),
            DonghanhException.Storage("disk"),
            IllegalStateException("Nguyễn Văn Bí Mật"),
        )
        for (e in errors) {
            val t = errorText(e)
            assertFalse(t.vi.contains("Bí Mật") || t.en.contains("Bí Mật"))
        }
        assertEquals("Sai mã PIN. | Wrong PIN.", errorText(DonghanhException.WrongPin()).toString())
        assertEquals("1.000.000 đ", vnd(1_000_000))
        for (r in uniffi.donghanh.RiskSign.entries) assertTrue(T.risk(r).vi != T.risk(r).en)
    }
}
