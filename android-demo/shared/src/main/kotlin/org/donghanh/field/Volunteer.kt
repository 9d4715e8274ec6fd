package org.donghanh.field

import java.time.LocalDate
import uniffi.donghanh.BenefitKind
import uniffi.donghanh.NewDrugTest
import uniffi.donghanh.NewVisit
import uniffi.donghanh.RiskSign
import uniffi.donghanh.Service
import uniffi.donghanh.Sex
import uniffi.donghanh.TestKind
import uniffi.donghanh.TestMethod
import uniffi.donghanh.TestResult
import uniffi.donghanh.VisitMode

/** A task as the lists show it. */
data class TaskRow(val id: String, val personId: String, val personName: String, val due: String, val reason: String)

/** Someone to visit, and why. */
data class VisitRow(val personId: String, val name: String, val why: Text)

data class TodayState(
    val day: String = "",
    val overdue: List<TaskRow> = emptyList(),
    val dueToday: List<TaskRow> = emptyList(),
    val upcoming: List<TaskRow> = emptyList(),
    val toVisit: List<VisitRow> = emptyList(),
    val message: Text? = null,
)

/**
 * Volunteer, "Today": my open tasks split into overdue, due today and the coming week; the
 * people to visit (next visit due, never visited, or not seen for [STALE_DAYS] days).
 */
class TodayViewModel(session: AppSession) : StateHolder<TodayState>(TodayState(), session) {
    suspend fun load() {
        val today = session.clock.today()
        val data = attempt({ copy(message = it) }) { d ->
            val caseload = d.caseload()
            val visits = caseload.associate { it.person.id to d.visits(it.person.id) }
            Triple(caseload, d.myTasks(), visits)
        } ?: return
        val (caseload, tasks, visits) = data
        val names = caseload.associate { it.person.id to it.person.fullName }
        val rows = tasks.map { TaskRow(it.id, it.person, names[it.person] ?: "—", it.due, it.reason) }
        val toVisit = caseload.mapNotNull { e ->
            val last = visits[e.person.id].orEmpty().maxByOrNull { it.at }
            val why: Pair<LocalDate, Text>? = when {
                last == null -> LocalDate.MIN to T.neverVisited
                last.nextVisitDue != null && LocalDate.parse(last.nextVisitDue) <= today ->
                    LocalDate.parse(last.nextVisitDue) to T.visitDue(last.nextVisitDue!!)
                last.nextVisitDue == null && LocalDate.parse(vnDay(last.at)) <= today.minusDays(STALE_DAYS) ->
                    LocalDate.parse(vnDay(last.at)) to T.lastVisit(vnDay(last.at))
                else -> null
            }
            why?.let { (order, text) -> Triple(order, e.person.fullName, VisitRow(e.person.id, e.person.fullName, text)) }
        }.sortedWith(compareBy({ it.first }, { it.second })).map { it.third }
        val t = today.toString()
        val week = today.plusDays(7).toString()
        set {
            TodayState(
                day = t,
                overdue = rows.filter { it.due < t },
                dueToday = rows.filter { it.due == t },
                upcoming = rows.filter { it.due > t && it.due <= week },
                toVisit = toVisit,
            )
        }
    }

    companion object {
        const val STALE_DAYS = 30L
    }
}

data class PersonRow(val id: String, val name: String, val birth: String, val lastVisit: String?, val nextDue: String?)

data class PeopleState(val query: String = "", val people: List<PersonRow> = emptyList(), val empty: Text? = null, val message: Text? = null)

/** "My people" (a supervisor's: the commune's caseload): everyone held, or a search without diacritics. */
class PeopleViewModel(session: AppSession) : StateHolder<PeopleState>(PeopleState(), session) {
    suspend fun search(query: String) {
        set { copy(query = query) }
        val rows = attempt({ copy(message = it) }) { d ->
            val caseload = d.caseload()
            val matches = if (query.isBlank()) null else d.findPeople(query.trim()).map { it.id }.toSet()
            caseload.filter { matches == null || it.person.id in matches }
                .map { PersonRow(it.person.id, it.person.fullName, it.person.birthDate, it.lastVisit, it.nextDue) }
        } ?: return
        set { copy(people = rows, empty = if (rows.isEmpty()) T.noMatch else null, message = null) }
    }
}

data class EpisodeRow(val kind: Text, val status: Text, val start: String, val plannedEnd: Text)
data class VisitLine(val day: String, val mode: Text, val notes: String, val risks: List<Text>, val services: List<Text>, val relapseSuspected: Boolean, val nextDue: String?)
data class TestLine(val day: String, val kind: Text, val result: Text)
data class SupportLine(val day: String, val kind: Text, val amountVnd: Long)

data class PersonState(
    val id: String = "",
    val name: String = "",
    val birth: String = "",
    val sex: Sex? = null,
    val phone: String? = null,
    val episodes: List<EpisodeRow> = emptyList(),
    val lastVisits: List<VisitLine> = emptyList(),
    val tasks: List<TaskRow> = emptyList(),
    val tests: List<TestLine> = emptyList(),
    val support: List<SupportLine> = emptyList(),
    val gone: Boolean = false,
    val message: Text? = null,
)

/** A person: identity, episodes with their planned end, the last visits, open tasks, tests, support. */
class PersonViewModel(session: AppSession, private val personId: String) : StateHolder<PersonState>(PersonState(id = personId), session) {
    suspend fun load() {
        val s = attempt({ copy(message = it, gone = true) }) { d ->
            val p = d.person(personId)
            PersonState(
                id = p.id, name = p.fullName, birth = p.birthDate, sex = p.sex, phone = p.phone,
                episodes = d.episodes(personId).map {
                    EpisodeRow(T.episodeKind(it.kind), T.episodeStatus(it.status), it.start, T.plannedEnd(it.plannedEnd))
                },
                lastVisits = d.visits(personId).sortedByDescending { it.at }.take(LAST_VISITS).map { v ->
                    VisitLine(vnDay(v.at), T.mode(v.mode), v.notes, v.riskSigns.map(T::risk), v.services.map(T::service),
                        v.relapseSuspected, v.nextVisitDue)
                },
                tasks = d.openTasks().filter { it.person == personId }
                    .map { TaskRow(it.id, it.person, p.fullName, it.due, it.reason) },
                tests = d.drugTests(personId).sortedByDescending { it.at }.take(LAST_VISITS)
                    .map { TestLine(vnDay(it.at), T.testKind(it.kind), T.result(it.result)) },
                support = d.supportBenefits(personId).sortedByDescending { it.on }
                    .map { SupportLine(it.on, T.benefit(it.kind), it.amountVnd) },
            )
        } ?: return
        set { s }
    }

    suspend fun completeTask(taskId: String) {
        attempt({ copy(message = it) }) { it.completeTask(taskId) } ?: return
        load()
    }

    companion object {
        const val LAST_VISITS = 3
    }
}

data class VisitForm(
    val mode: VisitMode = VisitMode.HOME,
    val observations: String = "",
    val risks: Set<RiskSign> = emptySet(),
    val relapseSuspected: Boolean = false,
    val services: Set<Service> = emptySet(),
    val nextVisitDue: String = "",
    val errors: Map<String, Text> = emptyMap(),
    val saved: Boolean = false,
    val message: Text? = null,
)

/** "Record a visit": written to the encrypted store at once, sent at the next sync (fully offline). */
class VisitFormViewModel(session: AppSession, val personId: String) : StateHolder<VisitForm>(VisitForm(), session) {
    fun mode(m: VisitMode) = set { copy(mode = m) }
    fun observations(text: String) = set { copy(observations = text, errors = errors - "observations") }
    fun toggle(r: RiskSign) = set { copy(risks = if (r in risks) risks - r else risks + r) }
    fun toggle(s: Service) = set { copy(services = if (s in services) services - s else services + s) }
    fun relapseSuspected(on: Boolean) = set { copy(relapseSuspected = on) }
    fun nextVisitDue(day: String) = set { copy(nextVisitDue = day, errors = errors - "nextVisitDue") }

    suspend fun save(): Boolean {
        val f = state.value
        val v = Fields()
        val notes = v.required("observations", f.observations)
        val next = v.day("nextVisitDue", f.nextVisitDue, notBefore = session.clock.today())
        if (!v.ok) {
            set { copy(errors = v.toMap(), saved = false) }
            return false
        }
        attempt({ copy(message = it) }) { d ->
            d.addVisit(NewVisit(personId, notes!!, null, f.mode, f.risks.sortedBy { it.ordinal },
                f.relapseSuspected, f.services.sortedBy { it.ordinal }, next?.toString()))
        } ?: return false
        set { VisitForm(saved = true, message = T.saved) }
        return true
    }
}

data class DrugTestForm(
    val kind: TestKind = TestKind.PERIODIC,
    val method: TestMethod = TestMethod.URINE_RAPID,
    val result: TestResult? = null,
    val note: String = "",
    val errors: Map<String, Text> = emptyMap(),
    val saved: Boolean = false,
    val message: Text? = null,
)

/** A drug test result (a positive is not a relapse: the screen says so). */
class DrugTestViewModel(session: AppSession, val personId: String) : StateHolder<DrugTestForm>(DrugTestForm(), session) {
    fun kind(k: TestKind) = set { copy(kind = k) }
    fun method(m: TestMethod) = set { copy(method = m) }
    fun result(r: TestResult) = set { copy(result = r, errors = errors - "result") }
    fun note(t: String) = set { copy(note = t) }

    suspend fun save(): Boolean {
        val f = state.value
        val v = Fields()
        val result = v.chosen("result", f.result)
        val note = v.optional("note", f.note)
        if (!v.ok) {
            set { copy(errors = v.toMap()) }
            return false
        }
        attempt({ copy(message = it) }) { it.addDrugTest(NewDrugTest(personId, null, f.kind, f.method, result!!, note)) }
            ?: return false
        set { DrugTestForm(saved = true, message = T.saved) }
        return true
    }
}

data class SupportForm(
    val kind: BenefitKind? = null,
    val amount: String = "",
    val day: String = "",
    val note: String = "",
    val errors: Map<String, Text> = emptyMap(),
    val saved: Boolean = false,
    val message: Text? = null,
)

/** Support given: kind, amount in đồng (0 for support in kind), day (today by default). */
class SupportViewModel(session: AppSession, val personId: String) :
    StateHolder<SupportForm>(SupportForm(day = session.clock.today().toString()), session) {
    fun kind(k: BenefitKind) = set { copy(kind = k, errors = errors - "kind") }
    fun amount(t: String) = set { copy(amount = t, errors = errors - "amount") }
    fun day(t: String) = set { copy(day = t, errors = errors - "day") }
    fun note(t: String) = set { copy(note = t) }

    suspend fun save(): Boolean {
        val f = state.value
        val v = Fields()
        val kind = v.chosen("kind", f.kind)
        val amount = v.amount("amount", f.amount)
        val day = v.day("day", f.day, required = true, notAfter = session.clock.today())
        val note = v.optional("note", f.note)
        if (!v.ok) {
            set { copy(errors = v.toMap()) }
            return false
        }
        attempt({ copy(message = it) }) { it.addSupportBenefit(personId, kind!!, amount!!, day!!.toString(), note) }
            ?: return false
        set { SupportForm(day = session.clock.today().toString(), saved = true, message = T.saved) }
        return true
    }
}
