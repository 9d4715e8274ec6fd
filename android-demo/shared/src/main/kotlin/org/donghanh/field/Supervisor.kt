package org.donghanh.field

import uniffi.donghanh.DonghanhException
import uniffi.donghanh.Role

/** A colleague to choose in a form. */
data class Choice(val username: String, val name: String, val role: Text)

private fun helpers(d: uniffi.donghanh.Device): List<Choice> = d.directory()
    .filter { it.role == Role.VOLUNTEER || it.role == Role.COUNSELLOR }
    .sortedBy { it.displayName }
    .map { Choice(it.username, "${it.displayName} (${it.username})", T.role(it.role)) }

data class ReassignForm(
    val personName: String = "",
    val helpers: List<Choice> = emptyList(),
    val chosen: String? = null,
    val errors: Map<String, Text> = emptyMap(),
    val done: Boolean = false,
    val message: Text? = null,
)

/** Supervisor: reassign a case to a volunteer (or a counsellor) of the commune, from today. */
class ReassignViewModel(session: AppSession, private val personId: String) : StateHolder<ReassignForm>(ReassignForm(), session) {
    suspend fun load() {
        val (name, helpers) = attempt({ copy(message = it) }) { d -> d.person(personId).fullName to helpers(d) } ?: return
        set { copy(personName = name, helpers = helpers) }
    }

    fun choose(username: String) = set { copy(chosen = username, errors = errors - "helper") }

    suspend fun save(): Boolean {
        val v = Fields()
        val to = v.chosen("helper", state.value.chosen)
        if (!v.ok) {
            set { copy(errors = v.toMap()) }
            return false
        }
        attempt({ copy(message = it) }) { it.assignCase(personId, to!!) } ?: return false
        set { copy(done = true, message = T.saved) }
        return true
    }
}

data class TaskForm(
    val helpers: List<Choice> = emptyList(),
    val assignee: String? = null,
    val due: String = "",
    val reason: String = "",
    val errors: Map<String, Text> = emptyMap(),
    val saved: Boolean = false,
    val message: Text? = null,
)

/** Supervisor: a follow-up task about a person, for a colleague (or for whoever holds the case). */
class TaskFormViewModel(session: AppSession, private val personId: String) : StateHolder<TaskForm>(TaskForm(), session) {
    suspend fun load() {
        val helpers = attempt({ copy(message = it) }) { helpers(it) } ?: return
        set { copy(helpers = helpers) }
    }

    fun assignee(username: String?) = set { copy(assignee = username) }
    fun due(t: String) = set { copy(due = t, errors = errors - "due") }
    fun reason(t: String) = set { copy(reason = t, errors = errors - "reason") }

    suspend fun save(): Boolean {
        val f = state.value
        val v = Fields()
        val due = v.day("due", f.due, required = true, notBefore = session.clock.today())
        val reason = v.required("reason", f.reason)
        if (!v.ok) {
            set { copy(errors = v.toMap()) }
            return false
        }
        attempt({ copy(message = it) }) { it.addTask(personId, due.toString(), reason!!, f.assignee) } ?: return false
        set { TaskForm(helpers = helpers, saved = true, message = T.saved) }
        return true
    }
}

data class SupervisionForm(
    val volunteers: List<Choice> = emptyList(),
    val volunteer: String? = null,
    val note: String = "",
    val errors: Map<String, Text> = emptyMap(),
    val saved: Boolean = false,
    val message: Text? = null,
)

/** Supervisor: a supervision note on a volunteer (caseload reviewed, concerns, what was agreed). */
class SupervisionNoteViewModel(session: AppSession) : StateHolder<SupervisionForm>(SupervisionForm(), session) {
    suspend fun load() {
        val v = attempt({ copy(message = it) }) { d -> helpers(d).filter { it.role == T.role(Role.VOLUNTEER) } } ?: return
        set { copy(volunteers = v) }
    }

    fun volunteer(username: String) = set { copy(volunteer = username, errors = errors - "volunteer") }
    fun note(t: String) = set { copy(note = t, errors = errors - "note") }

    suspend fun save(): Boolean {
        val f = state.value
        val v = Fields()
        val who = v.chosen("volunteer", f.volunteer)
        val note = v.required("note", f.note)
        if (!v.ok) {
            set { copy(errors = v.toMap()) }
            return false
        }
        attempt({ copy(message = it) }) { it.addSupervisionNote(who!!, note!!) } ?: return false
        set { SupervisionForm(volunteers = volunteers, saved = true, message = T.saved) }
        return true
    }
}

data class ConflictRow(val id: String, val what: Text, val personName: String?, val field: String, val kept: Text, val lost: Text)

/** A conflict's value for the screen: status codes in words, other values as they are. */
private fun conflictValue(field: String, value: String?): Text {
    val v = value ?: return Text("(trống)", "(empty)")
    if (field == "status") {
        val code = if (v.startsWith("{\"terminated\"")) "terminated" else v
        val t = T.episodeStatus(code)
        if (t != T.episodeStatus("?")) return t
    }
    return Text(v, v)
}

data class ConflictsState(val conflicts: List<ConflictRow> = emptyList(), val empty: Text? = null, val message: Text? = null)

/**
 * Supervisor: fields two phones changed at once. Online (the server keeps them). The values may
 * identify a person: they are shown, never logged.
 */
class ConflictsViewModel(session: AppSession) : StateHolder<ConflictsState>(ConflictsState(), session) {
    suspend fun load() {
        val rows = attempt({ copy(message = if (it == errorText(DonghanhException.Network("x"))) T.conflictsNeedNetwork else it) }) { d ->
            d.conflicts().map { c ->
                val name = c.person?.let { p -> runCatching { d.person(p).fullName }.getOrNull() }
                ConflictRow(c.id, Text(T.kindVi(c.kind), T.kindEn(c.kind)), name, c.field,
                    conflictValue(c.field, c.kept), conflictValue(c.field, c.lost))
            }
        } ?: return
        set { ConflictsState(rows, if (rows.isEmpty()) T.noConflicts else null) }
    }

    /** Keeps the current value, or (`restore`) puts the losing one back. */
    suspend fun resolve(id: String, restore: Boolean) {
        attempt({ copy(message = it) }) { it.resolveConflict(id, restore) } ?: return
        load()
    }
}

data class ReportLine(val no: String, val label: Text, val value: String)

data class MonthState(val period: String = "", val title: Text? = null, val lines: List<ReportLine> = emptyList(), val message: Text? = null)

/** Supervisor: the commune's month at a glance, computed on the phone from what it holds (form 01-BCN). */
class MonthViewModel(session: AppSession) : StateHolder<MonthState>(MonthState(), session) {
    suspend fun load(period: String = session.clock.today().toString().substring(0, 7)) {
        val r = attempt({ copy(period = period, message = it) }) { it.report("", period) } ?: return
        set {
            MonthState(
                period = r.period,
                title = Text(r.titleVi.ifBlank { r.template }, r.titleEn.ifBlank { r.template }),
                lines = r.sections.flatMap { s -> s.rows }.map { ReportLine(it.no, Text(it.labelVi.ifBlank { it.code }, it.labelEn.ifBlank { it.code }), it.value.text) },
            )
        }
    }
}
