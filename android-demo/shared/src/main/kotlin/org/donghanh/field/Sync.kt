package org.donghanh.field

import java.time.Duration
import java.time.Instant
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.flow.update
import uniffi.donghanh.DonghanhException
import uniffi.donghanh.SyncListener
import uniffi.donghanh.SyncPhase
import uniffi.donghanh.SyncReport

/** What the app remembers of past sync attempts (in [Settings]: times and a count only). */
data class SyncRecord(val lastSuccess: Instant?, val lastAttempt: Instant?, val failures: Int) {
    fun save(settings: Settings) {
        lastSuccess?.let { settings.putLong(SUCCESS, it.epochSecond) } ?: settings.remove(SUCCESS)
        lastAttempt?.let { settings.putLong(ATTEMPT, it.epochSecond) } ?: settings.remove(ATTEMPT)
        settings.putLong(FAILURES, failures.toLong())
    }

    companion object {
        private const val SUCCESS = "sync.last_success"
        private const val ATTEMPT = "sync.last_attempt"
        private const val FAILURES = "sync.failures"

        fun load(settings: Settings) = SyncRecord(
            settings.getLong(SUCCESS)?.let(Instant::ofEpochSecond),
            settings.getLong(ATTEMPT)?.let(Instant::ofEpochSecond),
            (settings.getLong(FAILURES) ?: 0).toInt(),
        )

        fun clear(settings: Settings) {
            listOf(SUCCESS, ATTEMPT, FAILURES).forEach(settings::remove)
        }
    }
}

/**
 * When to sync, and what to tell a user who has been offline.
 *
 * - Unsent changes are the only data a phone can lose, so they go out eagerly: `afterChange`
 *   after the last attempt when something is pending.
 * - With nothing pending, every `periodic` (new tasks and reassignments arrive that way).
 * - After a failure, exponential back-off from `firstRetry`, doubling, capped at `maxRetry`:
 *   a phone without signal does not drain its battery retrying, and still tries every hour.
 * - Offline for `offlineNoticeAfter` or more: a calm notice (the data is safe on the phone).
 *   Within `leaseWarning` of the key lease's end: a warning that the phone will erase itself.
 *
 * Pure: the scheduler (Android's JobScheduler, a test) asks [due] with the time it has.
 */
data class SyncPolicy(
    val periodic: Duration = Duration.ofHours(2),
    val afterChange: Duration = Duration.ofMinutes(1),
    val firstRetry: Duration = Duration.ofMinutes(1),
    val maxRetry: Duration = Duration.ofHours(1),
    val offlineNoticeAfter: Duration = Duration.ofDays(1),
    val leaseWarning: Duration = Duration.ofDays(3),
) {
    fun backoff(failures: Int): Duration {
        if (failures <= 0) return Duration.ZERO
        val shift = (failures - 1).coerceAtMost(30)
        val d = firstRetry.multipliedBy(1L shl shift)
        return if (d > maxRetry) maxRetry else d
    }

    fun nextAttempt(record: SyncRecord, pending: Long): Instant {
        val attempt = record.lastAttempt ?: return Instant.EPOCH
        if (record.failures > 0) return attempt.plus(backoff(record.failures))
        if (pending > 0) return attempt.plus(afterChange)
        return (record.lastSuccess ?: attempt).plus(periodic)
    }

    fun due(now: Instant, record: SyncRecord, pending: Long): Boolean = now >= nextAttempt(record, pending)

    /** The notice for a phone that has not synced lately, or none. */
    fun offlineNotice(now: Instant, record: SyncRecord, leaseUntil: Instant?): Text? {
        if (leaseUntil != null && Duration.between(now, leaseUntil) <= leaseWarning) {
            val days = Duration.between(now, leaseUntil).toDays().coerceAtLeast(0)
            return T.leaseEnding(days)
        }
        val since = record.lastSuccess ?: return null
        val away = Duration.between(since, now)
        return if (away >= offlineNoticeAfter) T.offlineDays(away.toDays()) else null
    }
}

/** A change the server refused, as the sync screen lists it. */
data class RejectedRow(val clientSeq: ULong, val kind: String, val code: String, val text: Text)

data class SyncState(
    val lastSync: Text = T.syncNever,
    val pending: Long = 0,
    val running: Boolean = false,
    val progress: Text? = null,
    /** The steps the current (or last) round went through, in order, each once. */
    val round: List<Text> = emptyList(),
    val rejected: List<RejectedRow> = emptyList(),
    /** Cases removed from this phone, and the wipe, until the user dismisses them. */
    val notices: List<Text> = emptyList(),
    val offline: Text? = null,
    val message: Text? = null,
)

/**
 * The sync screen and the one place a sync round starts (the button, the scheduler). Progress
 * arrives from the syncing thread through the [SyncListener]; the state flow takes it as is.
 */
class SyncViewModel(
    private val session: AppSession,
    val policy: SyncPolicy = SyncPolicy(),
) {
    private val _state = MutableStateFlow(SyncState())
    val state: StateFlow<SyncState> = _state.asStateFlow()

    private fun record() = SyncRecord.load(session.settings)

    suspend fun refresh() {
        try {
            val (pending, rejected, lease) = session.call { d ->
                Triple(d.pendingChanges().toLong(), d.rejected(), d.enrollment()?.keyLeaseUntil)
            }
            val now = session.clock.now()
            val rec = record()
            _state.update {
                it.copy(
                    lastSync = rec.lastSuccess?.let { t -> T.syncedAgo(Duration.between(t, now).toMinutes()) }
                        ?: T.syncNever,
                    pending = pending,
                    rejected = rejected.map { r -> RejectedRow(r.clientSeq, r.kind, r.code, T.rejectedChange(r.kind, r.code)) },
                    offline = policy.offlineNotice(now, rec, lease?.let(Instant::parse)),
                )
            }
        } catch (e: Exception) {
            _state.update { it.copy(message = errorText(e)) }
        }
    }

    /** Whether the scheduler should sync now. */
    suspend fun due(): Boolean {
        val pending = try { session.call { it.pendingChanges().toLong() } } catch (e: Exception) { return false }
        return policy.due(session.clock.now(), record(), pending)
    }

    /** One sync round; returns whether it succeeded. Never throws. */
    suspend fun syncNow(): Boolean {
        if (_state.value.running) return false
        _state.update { it.copy(running = true, progress = T.syncing, round = emptyList(), message = null) }
        val removed = java.util.concurrent.atomic.AtomicInteger()
        val otherRemoved = java.util.concurrent.atomic.AtomicInteger()
        val listener = object : SyncListener {
            override fun progress(phase: SyncPhase, report: SyncReport) {
                val step = T.phase(phase)
                _state.update { it.copy(progress = step, round = if (it.round.lastOrNull() == step) it.round else it.round + step) }
            }
            override fun rejected(clientSeq: ULong, code: String) {}
            override fun scopeRemoved(scopeKind: String) {
                if (scopeKind == "person") removed.incrementAndGet() else otherRemoved.incrementAndGet()
            }
            override fun wiped() {}
        }
        val now = session.clock.now()
        val before = record()
        val ok = try {
            val report = session.call { it.sync(listener) }
            SyncRecord(session.clock.now(), now, 0).save(session.settings)
            val notices = buildList {
                if (removed.get() > 0) add(T.casesRemoved(removed.get()))
                if (otherRemoved.get() > 0) add(T.otherScopeRemoved)
            }
            _state.update {
                it.copy(
                    notices = it.notices + notices,
                    message = T.syncDone(report.pushed.toLong(), report.pulled.toLong(), report.rejected.toLong()),
                )
            }
            true
        } catch (e: Exception) {
            when (e) {
                is DonghanhException.Revoked -> _state.update { it.copy(notices = it.notices + T.wipedNotice) }
                // Only a failed contact backs off; a locked app simply did not try.
                is DonghanhException.Network, is DonghanhException.Server ->
                    SyncRecord(before.lastSuccess, now, before.failures + 1).save(session.settings)
                else -> {}
            }
            _state.update { it.copy(message = errorText(e)) }
            false
        } finally {
            _state.update { it.copy(running = false, progress = null) }
        }
        if (ok || session.gate.value is Gate.Open) refresh()
        return ok
    }

    suspend fun dismissRejected(clientSeq: ULong) {
        try { session.call { it.dismissRejected(clientSeq) } } catch (e: Exception) {
            _state.update { it.copy(message = errorText(e)) }
        }
        refresh()
    }

    fun dismissNotices() = _state.update { it.copy(notices = emptyList()) }
}
