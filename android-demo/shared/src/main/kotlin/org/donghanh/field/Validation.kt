package org.donghanh.field

import java.time.LocalDate
import java.time.LocalTime
import java.time.format.DateTimeParseException

/**
 * Form validation with field-level messages. A form collects its errors in a [Fields]
 * (field name → message) before anything reaches the core; the core checks again, and what it
 * refuses becomes a form-level message (never a crash).
 */
class Fields {
    private val errors = linkedMapOf<String, Text>()

    fun error(field: String, message: Text) {
        errors.putIfAbsent(field, message)
    }

    val ok: Boolean get() = errors.isEmpty()
    fun toMap(): Map<String, Text> = errors.toMap()

    fun required(field: String, value: String, max: Int = NOTE_MAX): String? {
        val v = value.trim()
        when {
            v.isEmpty() -> error(field, T.required)
            v.length > max -> error(field, T.tooLong(max))
            else -> return v
        }
        return null
    }

    fun optional(field: String, value: String, max: Int = NOTE_MAX): String? {
        val v = value.trim()
        if (v.length > max) error(field, T.tooLong(max))
        return v.ifEmpty { null }
    }

    fun pin(field: String, value: String): String? {
        if (!PIN.matches(value)) error(field, T.pinDigits) else return value
        return null
    }

    fun server(field: String, value: String): String? {
        val v = value.trim().trimEnd('/')
        val ok = (v.startsWith("https://") || v.startsWith("http://")) &&
            runCatching { java.net.URI(v).host }.getOrNull()?.isNotEmpty() == true
        if (!ok) error(field, T.serverInvalid) else return v
        return null
    }

    /** A day `YYYY-MM-DD`; `notBefore`/`notAfter` bound it. Blank is null unless required. */
    fun day(
        field: String,
        value: String,
        required: Boolean = false,
        notBefore: LocalDate? = null,
        notAfter: LocalDate? = null,
    ): LocalDate? {
        val v = value.trim()
        if (v.isEmpty()) {
            if (required) error(field, T.required)
            return null
        }
        val d = try {
            LocalDate.parse(v)
        } catch (e: DateTimeParseException) {
            error(field, T.dayInvalid)
            return null
        }
        if (notBefore != null && d < notBefore) error(field, T.dayInPast)
        if (notAfter != null && d > notAfter) error(field, T.dayInFuture)
        return d
    }

    fun time(field: String, value: String): LocalTime? = try {
        LocalTime.parse(value.trim())
    } catch (e: DateTimeParseException) {
        error(field, T.timeInvalid)
        null
    }

    fun amount(field: String, value: String): Long? {
        val digits = value.trim().replace(".", "").replace(",", "").replace(" ", "")
        if (digits.isEmpty()) return 0
        if (!digits.all { it.isDigit() }) {
            error(field, T.amountInvalid)
            return null
        }
        val n = digits.toLongOrNull()
        if (n == null || n > AMOUNT_MAX) error(field, T.amountTooLarge) else return n
        return null
    }

    fun count(field: String, value: String): Int? {
        val v = value.trim()
        if (v.isEmpty()) return 0
        val n = v.toIntOrNull()
        if (n == null || n !in 0..1000) error(field, T.countInvalid) else return n
        return null
    }

    fun <E> chosen(field: String, value: E?): E? {
        if (value == null) error(field, T.chooseOne)
        return value
    }

    companion object {
        private val PIN = Regex("[0-9]{6,12}")
        const val NAME_MAX = 200
        const val NOTE_MAX = 10_000
        /** 10 billion đồng: no support payment comes near it; a typo with extra zeros does. */
        const val AMOUNT_MAX = 10_000_000_000L
    }
}
