package org.donghanh.field

import java.time.Instant
import uniffi.donghanh.AttendanceStatus
import uniffi.donghanh.Device
import uniffi.donghanh.NewVisit
import uniffi.donghanh.Service
import uniffi.donghanh.SessionKind
import uniffi.donghanh.SessionStatus
import uniffi.donghanh.VisitMode

private val RFC3339 = java.time.format.DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH:mm:ssXXX")

/** The counsellor's community point: their own entry of the directory the last sync brought. */
internal fun myPoint(d: Device, userId: String?): String? =
    d.directory().firstOrNull { it.id == userId }?.point

data class SessionRow(val id: String, val time: String, val kind: Text, val topic: String, val status: Text, val attendances: Int)

data class SessionsState(val point: String? = null, val sessions: List<SessionRow> = emptyList(), val message: Text? = null)

/** Counsellor: the sessions of my community point, most recent first, with their attendance (lượt). */
class SessionsViewModel(session: AppSession) : StateHolder<SessionsState>(SessionsState(), session) {
    suspend fun load() {
        val userId = session.userId
        val s = attempt({ copy(message = it) }) { d ->
            val point = myPoint(d, userId)
            SessionsState(
                point = point,
                sessions = d.sessions().filter { point == null || it.point == point }.map { s ->
                    val rows = d.attendance(s.id)
                    SessionRow(s.id, vnTime(s.at), T.sessionKind(s.kind), s.topic, T.sessionStatus(s.status),
                        rows.sumOf { if (it.person != null) 1 else it.walkIns.toInt() })
                },
                message = if (point == null) T.noPoint else null,
            )
        } ?: return
        set { s }
    }
}

data class PlanSessionForm(
    val kind: SessionKind = SessionKind.GROUP,
    val topic: String = "",
    val day: String = "",
    val time: String = "",
    val errors: Map<String, Text> = emptyMap(),
    val savedId: String? = null,
    val message: Text? = null,
)

/** Plan a session at my point: kind, topic, day and time (Vietnam time). */
class PlanSessionViewModel(session: AppSession) : StateHolder<PlanSessionForm>(PlanSessionForm(), session) {
    fun kind(k: SessionKind) = set { copy(kind = k) }
    fun topic(t: String) = set { copy(topic = t, errors = errors - "topic") }
    fun day(t: String) = set { copy(day = t, errors = errors - "day") }
    fun time(t: String) = set { copy(time = t, errors = errors - "time") }

    suspend fun save(): String? {
        val f = state.value
        val v = Fields()
        val topic = v.required("topic", f.topic, Fields.NAME_MAX)
        val day = v.day("day", f.day, required = true)
        val time = v.time("time", f.time)
        if (!v.ok) {
            set { copy(errors = v.toMap()) }
            return null
        }
        val at = day!!.atTime(time!!).atOffset(VN).format(RFC3339)
        val userId = session.userId
        val id = attempt({ copy(message = it) }) { d ->
            val point = myPoint(d, userId) ?: return@attempt null
            d.addSession(point, f.kind, topic!!, at)
        }
        if (id == null) {
            if (state.value.message == null) set { copy(message = T.noPoint) }
            return null
        }
        set { PlanSessionForm(savedId = id, message = T.saved) }
        return id
    }
}

data class Attendee(val personId: String, val name: String, val ticked: Boolean, val alreadyMarked: Boolean)

data class AttendanceForm(
    val sessionId: String = "",
    val topic: String = "",
    val query: String = "",
    val people: List<Attendee> = emptyList(),
    val walkIns: String = "",
    val count: Text = T.attendanceCount(0, 0),
    val errors: Map<String, Text> = emptyMap(),
    val saved: Boolean = false,
    val message: Text? = null,
)

/**
 * Take attendance: search the people this phone holds (without diacritics), tick who came,
 * count anonymous walk-ins. Saving marks each ticked person present once, adds the walk-ins,
 * and marks a planned session that has started as held.
 */
class AttendanceViewModel(session: AppSession, private val sessionId: String) :
    StateHolder<AttendanceForm>(AttendanceForm(sessionId = sessionId), session) {
    private var ticked = setOf<String>()
    private var marked = setOf<String>()
    private var markedWalkIns = 0

    suspend fun load() = search(state.value.query)

    suspend fun search(query: String) {
        val data = attempt({ copy(message = it) }) { d ->
            val s = d.sessions().first { it.id == sessionId }
            val rows = d.attendance(sessionId)
            val people = if (query.isBlank()) d.people() else d.findPeople(query.trim())
            Triple(s, rows, people)
        } ?: return
        val (s, rows, people) = data
        marked = rows.mapNotNull { it.person }.toSet()
        markedWalkIns = rows.sumOf { it.walkIns.toInt() }
        set {
            copy(topic = s.topic, query = query,
                people = people.map { Attendee(it.id, it.fullName, it.id in ticked || it.id in marked, it.id in marked) })
                .recount()
        }
    }

    fun toggle(personId: String) {
        if (personId in marked) return
        ticked = if (personId in ticked) ticked - personId else ticked + personId
        set { copy(people = people.map { if (it.personId == personId) it.copy(ticked = personId in ticked) else it }).recount() }
    }

    fun walkIns(t: String) = set { copy(walkIns = t, errors = errors - "walkIns").recount() }

    private fun AttendanceForm.recount() =
        copy(count = T.attendanceCount((marked + ticked).size, markedWalkIns + (walkIns.trim().toIntOrNull() ?: 0)))

    suspend fun save(): Boolean {
        val v = Fields()
        val walkIns = v.count("walkIns", state.value.walkIns)
        if (!v.ok) {
            set { copy(errors = v.toMap()) }
            return false
        }
        val toMark = ticked - marked
        if (toMark.isEmpty() && walkIns == 0) {
            set { copy(message = T.nothingToSave) }
            return false
        }
        val now = session.clock.now()
        attempt({ copy(message = it) }) { d ->
            for (p in toMark) d.markAttendance(sessionId, p, AttendanceStatus.PRESENT)
            if (walkIns!! > 0) d.markWalkIns(sessionId, walkIns.toUInt())
            val s = d.sessions().first { it.id == sessionId }
            if (s.status == SessionStatus.PLANNED && !Instant.parse(s.at).isAfter(now)) d.holdSession(sessionId)
        } ?: return false
        ticked = emptySet()
        set { copy(walkIns = "", saved = true, message = T.saved) }
        search(state.value.query)
        return true
    }
}

data class CounsellingNoteForm(
    val clients: List<PersonRow> = emptyList(),
    val client: String? = null,
    val note: String = "",
    val errors: Map<String, Text> = emptyMap(),
    val saved: Boolean = false,
    val message: Text? = null,
)

/**
 * An individual counselling note for one of my clients (people assigned to me): recorded as an
 * individual session at my point, held now, with the client present (it counts in the point's
 * sessions and attendances), and the note itself as an at-the-point contact with the
 * counselling service in the client's case, where the people who follow the case read it.
 */
class CounsellingNoteViewModel(session: AppSession) : StateHolder<CounsellingNoteForm>(CounsellingNoteForm(), session) {
    suspend fun load() {
        val clients = attempt({ copy(message = it) }) { d ->
            d.caseload().map { PersonRow(it.person.id, it.person.fullName, it.person.birthDate, it.lastVisit, it.nextDue) }
        } ?: return
        set { copy(clients = clients) }
    }

    fun client(id: String) = set { copy(client = id, errors = errors - "client") }
    fun note(t: String) = set { copy(note = t, errors = errors - "note") }

    suspend fun save(): Boolean {
        val f = state.value
        val v = Fields()
        val client = v.chosen("client", f.client)
        val note = v.required("note", f.note)
        if (!v.ok) {
            set { copy(errors = v.toMap()) }
            return false
        }
        val userId = session.userId
        val done = attempt({ copy(message = it) }) { d ->
            val point = myPoint(d, userId) ?: return@attempt false
            val s = d.addSession(point, SessionKind.INDIVIDUAL, T.counsellingTopic.vi, null)
            d.holdSession(s)
            d.markAttendance(s, client!!, AttendanceStatus.PRESENT)
            d.addVisit(NewVisit(client, note!!, null, VisitMode.AT_POINT, emptyList(), false, listOf(Service.COUNSELLING), null))
            true
        } ?: return false
        if (!done) {
            set { copy(message = T.noPoint) }
            return false
        }
        set { copy(client = null, note = "", saved = true, message = T.saved) }
        return true
    }
}
