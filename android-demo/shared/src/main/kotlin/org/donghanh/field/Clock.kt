package org.donghanh.field

import java.time.Instant
import java.time.LocalDate
import java.time.ZoneOffset

/** Time, injectable: tests move it by hand instead of sleeping. */
fun interface Clock {
    fun now(): Instant

    companion object {
        val SYSTEM = Clock { Instant.now() }
    }
}

/** Days and times are Vietnam's (UTC+7), as the core files records by day. */
val VN: ZoneOffset = ZoneOffset.ofHours(7)

fun Clock.today(): LocalDate = now().atOffset(VN).toLocalDate()

/** The day of an RFC 3339 instant, in Vietnam ("2026-11-20"); the text unchanged if it is not one. */
fun vnDay(instant: String): String =
    runCatching { Instant.parse(instant).atOffset(VN).toLocalDate().toString() }.getOrDefault(instant)

/** "2026-11-20 09:30" in Vietnam for an RFC 3339 instant. */
fun vnTime(instant: String): String = runCatching {
    val t = Instant.parse(instant).atOffset(VN)
    "%s %02d:%02d".format(t.toLocalDate(), t.hour, t.minute)
}.getOrDefault(instant)
