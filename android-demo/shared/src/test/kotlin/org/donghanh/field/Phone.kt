package org.donghanh.field

import java.io.File
import java.nio.file.Path
import java.time.Duration
import uniffi.donghanh.Device
import uniffi.donghanh.EpisodeKind
import uniffi.donghanh.NewPerson
import uniffi.donghanh.PriorRehab
import uniffi.donghanh.Sex

/** One field phone in a test: an app session over a real device store in a temporary directory. */
class Phone(dir: Path, val clock: Clock = Clock.SYSTEM, idle: Duration = Duration.ofMinutes(5)) {
    val session = AppSession(dir.toString(), MemoryKeyStore(), clock, MemorySettings(), idleTimeout = idle)
    val sync = SyncViewModel(session)

    /** Enrols through the enrolment screen, as a user would. */
    suspend fun enroll(server: String, username: String) {
        val vm = EnrollViewModel(session, "junit")
        vm.server(server)
        vm.username(username)
        vm.password(PASSWORD)
        vm.pin(PIN)
        vm.pinAgain(PIN)
        check(vm.submit()) { "enrolment failed: ${vm.state.value.message}" }
    }

    /** A sync that must succeed. */
    suspend fun synced() {
        check(sync.syncNow()) { "sync failed: ${sync.state.value.message}" }
    }

    /** Direct access to the device, for what no screen does (seeding a test's cases). */
    suspend fun <R> device(block: (Device) -> R): R = session.call(block)

    val dataDir get() = File(session.dataDir)
}

/**
 * A supervisor's new case: a person of the commune under post-rehab management from a month
 * ago (file opened and decided 25 days ago).
 */
suspend fun Phone.newCase(name: String, commune: String): String = device { d ->
    val person = d.addPerson(NewPerson(name, "1990-06-07", Sex.MALE, "0912345678", null, null, commune))
    val today = Clock.SYSTEM.today()
    val episode = d.addEpisode(person, EpisodeKind.POST_REHAB, today.minusDays(30).toString(), PriorRehab.VOLUNTARY)
    d.proposeEpisode(episode, today.minusDays(25).toString())
    d.activateEpisode(episode, today.minusDays(25).toString())
    person
}
