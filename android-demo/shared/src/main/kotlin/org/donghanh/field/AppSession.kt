package org.donghanh.field

import java.io.File
import java.time.Duration
import java.time.Instant
import java.util.concurrent.ConcurrentHashMap
import kotlinx.coroutines.CoroutineDispatcher
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.withContext
import uniffi.donghanh.Device
import uniffi.donghanh.DonghanhException
import uniffi.donghanh.KeyStore
import uniffi.donghanh.Role
import uniffi.donghanh.storeExists

/**
 * Small, non-personal app state that outlives the process: when the last sync succeeded, how
 * many attempts failed since. Android keeps it in SharedPreferences; tests in memory. Never a
 * name, a note or an id of a person: those live only in the encrypted store.
 */
interface Settings {
    fun getLong(key: String): Long?
    fun putLong(key: String, value: Long)
    fun remove(key: String)
}

class MemorySettings : Settings {
    private val values = ConcurrentHashMap<String, Long>()
    override fun getLong(key: String): Long? = values[key]
    override fun putLong(key: String, value: Long) { values[key] = value }
    override fun remove(key: String) { values.remove(key) }
}

/**
 * Auto-lock after inactivity: every call through [AppSession.call] touches it; once `timeout`
 * has passed since the last touch, the next call locks the device instead of running.
 */
class AutoLock(private val clock: Clock, val timeout: Duration = Duration.ofMinutes(5)) {
    @Volatile private var last: Instant? = null

    fun touch() { last = clock.now() }
    fun reset() { last = null }
    fun expired(): Boolean = last?.let { Duration.between(it, clock.now()) >= timeout } ?: false
}

/** Where the app stands: which screen family it may show. */
sealed interface Gate {
    /** No store (first start, or after a wipe): the enrolment screen, with why if wiped. */
    data class NotEnrolled(val notice: Text? = null) : Gate
    /** A store, locked: the PIN screen, with why it was locked (none at start). */
    data class Locked(val reason: Text? = null) : Gate
    /** Unlocked, as a user of `role`. */
    data class Open(val role: Role) : Gate
}

/**
 * The one unlocked [Device] of the app, and the only way screens reach it. Every call runs on
 * `io` (never the caller's thread: on Android that is the main thread), checks the inactivity
 * lock first, and turns a wipe into the enrolment screen with its notice.
 */
class AppSession(
    val dataDir: String,
    private val keyStore: KeyStore,
    val clock: Clock = Clock.SYSTEM,
    val settings: Settings = MemorySettings(),
    val io: CoroutineDispatcher = Dispatchers.IO,
    idleTimeout: Duration = Duration.ofMinutes(5),
) {
    val autoLock = AutoLock(clock, idleTimeout)
    private val _gate = MutableStateFlow<Gate>(
        if (storeExists(dataDir)) Gate.Locked() else Gate.NotEnrolled(),
    )
    val gate: StateFlow<Gate> = _gate.asStateFlow()

    @Volatile private var device: Device? = null
    @Volatile var userId: String? = null
        private set

    val role: Role? get() = (gate.value as? Gate.Open)?.role

    suspend fun enroll(server: String, username: String, password: String, pin: String, label: String) {
        val dev = withContext(io) {
            if (storeExists(dataDir)) {
                throw DonghanhException.AlreadyExists("store")
            }
            Device.enroll(dataDir, keyStore, pin, server, username, password, label)
        }
        opened(dev)
    }

    suspend fun unlock(pin: String) {
        val dev = try {
            withContext(io) { Device.open(dataDir, keyStore, pin) }
        } catch (e: DonghanhException) {
            wipedOrRethrow(e)
        }
        opened(dev)
    }

    private suspend fun opened(dev: Device) {
        val enrolment = withContext(io) { dev.enrollment() }
        val role = enrolment?.role
        if (role == null || role == Role.ADMIN || role == Role.OFFICER) {
            dev.lock()
            _gate.value = Gate.Locked(T.roleMissing)
            return
        }
        device = dev
        userId = enrolment?.userId
        autoLock.touch()
        _gate.value = Gate.Open(role)
    }

    /** Locks now (the lock button, the screen turned off, the inactivity timer). */
    fun lock(reason: Text = T.lockedByUser) {
        device?.lock()
        device = null
        autoLock.reset()
        if (_gate.value is Gate.Open) _gate.value = Gate.Locked(reason)
    }

    /** Locks if the inactivity timeout has passed; returns whether it did. */
    fun lockIfIdle(): Boolean {
        if (device != null && autoLock.expired()) {
            lock(T.sessionExpired)
            return true
        }
        return false
    }

    /** Runs a blocking core call on `io` on the unlocked device. */
    suspend fun <R> call(block: (Device) -> R): R {
        if (lockIfIdle()) throw SessionExpiredException()
        val dev = device ?: throw DonghanhException.Locked()
        autoLock.touch()
        return try {
            withContext(io) { block(dev) }
        } catch (e: DonghanhException) {
            wipedOrRethrow(e)
        }
    }

    /**
     * The core wiped the store (revoked device, key lease run out): nothing can be read from
     * it any more, its keys are gone. The app removes the emptied directory so that the phone
     * can be enrolled again, and shows why.
     */
    private fun wipedOrRethrow(e: DonghanhException): Nothing {
        when (e) {
            is DonghanhException.Revoked, is DonghanhException.Wiped, is DonghanhException.LeaseExpired -> {
                device = null
                userId = null
                File(dataDir).deleteRecursively()
                SyncRecord.clear(settings)
                _gate.value = Gate.NotEnrolled(errorText(e))
            }
            else -> {}
        }
        throw e
    }
}
