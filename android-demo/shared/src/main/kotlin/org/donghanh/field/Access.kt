package org.donghanh.field

import kotlinx.coroutines.CancellationException

data class EnrollForm(
    val server: String = "",
    val username: String = "",
    val password: String = "",
    val pin: String = "",
    val pinAgain: String = "",
    val errors: Map<String, Text> = emptyMap(),
    val busy: Boolean = false,
    val message: Text? = null,
)

/**
 * Enrol: the server's address, the user's login, and a PIN chosen twice. The password is sent
 * once and never kept (the state forgets it after the attempt).
 */
class EnrollViewModel(session: AppSession, private val label: String) : StateHolder<EnrollForm>(EnrollForm(), session) {
    fun server(t: String) = set { copy(server = t, errors = errors - "server") }
    fun username(t: String) = set { copy(username = t, errors = errors - "username") }
    fun password(t: String) = set { copy(password = t, errors = errors - "password") }
    fun pin(t: String) = set { copy(pin = t, errors = errors - "pin") }
    fun pinAgain(t: String) = set { copy(pinAgain = t, errors = errors - "pinAgain") }

    suspend fun submit(): Boolean {
        val f = state.value
        val v = Fields()
        val server = v.server("server", f.server)
        val username = v.required("username", f.username, Fields.NAME_MAX)
        if (f.password.isEmpty()) v.error("password", T.required)
        val pin = v.pin("pin", f.pin)
        if (pin != null && f.pinAgain != f.pin) v.error("pinAgain", T.pinMismatch)
        if (!v.ok) {
            set { copy(errors = v.toMap()) }
            return false
        }
        set { copy(busy = true, message = null) }
        return try {
            session.enroll(server!!, username!!, f.password, pin!!, label)
            set { EnrollForm() }
            true
        } catch (e: CancellationException) {
            throw e
        } catch (e: Exception) {
            set { copy(password = "", busy = false, message = errorText(e)) }
            false
        }
    }
}

data class UnlockForm(val pin: String = "", val reason: Text? = null, val error: Text? = null, val busy: Boolean = false)

/** Unlock with the PIN; shows why the app was locked (the lock button, inactivity, a wrong PIN). */
class UnlockViewModel(session: AppSession) : StateHolder<UnlockForm>(
    UnlockForm(reason = (session.gate.value as? Gate.Locked)?.reason), session,
) {
    fun pin(t: String) = set { copy(pin = t, error = null) }

    suspend fun submit(): Boolean {
        val pin = state.value.pin
        if (pin.isEmpty()) {
            set { copy(error = T.required) }
            return false
        }
        set { copy(busy = true) }
        return try {
            session.unlock(pin)
            val gate = session.gate.value
            if (gate is Gate.Locked) {
                set { UnlockForm(reason = gate.reason) }
                false
            } else {
                set { UnlockForm() }
                true
            }
        } catch (e: CancellationException) {
            throw e
        } catch (e: Exception) {
            // The PIN is cleared after every failed attempt.
            set { UnlockForm(reason = reason, error = errorText(e)) }
            false
        }
    }

    fun lock() = session.lock()
}
