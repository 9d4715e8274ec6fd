package org.donghanh.field

import java.io.File

/**
 * Screen states as plain text, for the README ("what the app shows"): each test that walks a
 * role's day writes what its screens held to target/screens/NAME.txt. Test data only (invented
 * names); this never runs in the app.
 */
object ScreenText {
    private val dir = System.getProperty("donghanh.screens")?.let(::File)

    fun capture(name: String, title: Text, state: Any, lang: Lang = Lang.VI) {
        val d = dir ?: return
        d.mkdirs()
        File(d, "$name.txt").writeText("┌ ${title[lang]}\n" + render(state, lang).joinToString("") { "│ $it\n" } + "└\n")
    }

    private fun Text?.l(lang: Lang) = this?.get(lang)
    private fun err(errors: Map<String, Text>, lang: Lang) = errors.map { (f, t) -> "  ⚠ $f: ${t[lang]}" }
    private fun msg(m: Text?, lang: Lang) = listOfNotNull(m?.let { "» ${it[lang]}" })
    private fun tick(on: Boolean) = if (on) "[x]" else "[ ]"

    fun render(state: Any, lang: Lang): List<String> = when (state) {
        is EnrollForm -> listOf(
            "${T.serverLabel[lang]}: ${state.server}", "${T.usernameLabel[lang]}: ${state.username}",
            "${T.passwordLabel[lang]}: ${"•".repeat(state.password.length)}",
            "${T.pinLabel[lang]}: ${"•".repeat(state.pin.length)}", "${T.pinConfirmLabel[lang]}: ${"•".repeat(state.pinAgain.length)}",
        ) + err(state.errors, lang) + msg(state.message, lang)
        is UnlockForm -> listOfNotNull(state.reason.l(lang), "${T.pinLabel[lang]}: ${"•".repeat(state.pin.length)}") +
            msg(state.error, lang)
        is TodayState -> listOf(state.day) +
            listOf(T.overdue to state.overdue, T.dueToday to state.dueToday, T.upcoming to state.upcoming).flatMap { (h, rows) ->
                listOf("${h[lang]} (${rows.size})") + rows.map { "  ${it.due}  ${it.personName}: ${it.reason}" }
            } + listOf("${T.toVisit[lang]} (${state.toVisit.size})") + state.toVisit.map { "  ${it.name} — ${it.why[lang]}" } +
            msg(state.message, lang)
        is PeopleState -> listOf("🔍 ${state.query}") + state.people.map {
            "  ${it.name} (${it.birth})  ${it.lastVisit?.let { d -> T.lastVisit(d)[lang] } ?: T.neverVisited[lang]}" +
                (it.nextDue?.let { d -> ", ${T.dueLabel[lang]} $d" } ?: "")
        } + listOfNotNull(state.empty.l(lang)) + msg(state.message, lang)
        is PersonState -> listOf("${state.name} (${state.birth})") +
            state.episodes.map { "  ${it.kind[lang]}: ${it.status[lang]}, ${it.start} → ${it.plannedEnd[lang]}" } +
            state.lastVisits.map {
                "  ${it.day} ${it.mode[lang]}: ${it.notes}" +
                    (if (it.risks.isEmpty()) "" else " ⚠ " + it.risks.joinToString { r -> r[lang] }) +
                    (if (it.services.isEmpty()) "" else " ✓ " + it.services.joinToString { s -> s[lang] }) +
                    (it.nextDue?.let { d -> " → $d" } ?: "")
            } + state.tasks.map { "  ☐ ${it.due} ${it.reason}" } + state.tests.map { "  🧪 ${it.day} ${it.kind[lang]}: ${it.result[lang]}" } +
            state.support.map { "  ♥ ${it.day} ${it.kind[lang]} ${vnd(it.amountVnd)}" } + msg(state.message, lang)
        is VisitForm -> listOf(
            "${state.mode.let(T::mode)[lang]}",
            "${T.observationsLabel[lang]}: ${state.observations}",
        ) + uniffi.donghanh.RiskSign.entries.map { "  ${tick(it in state.risks)} ${T.risk(it)[lang]}" } +
            listOf("  ${tick(state.relapseSuspected)} ${T.relapseSuspectedLabel[lang]}") +
            uniffi.donghanh.Service.entries.map { "  ${tick(it in state.services)} ${T.service(it)[lang]}" } +
            listOf("${T.nextVisitLabel[lang]}: ${state.nextVisitDue}") + err(state.errors, lang) + msg(state.message, lang)
        is DrugTestForm -> listOf("${T.testKind(state.kind)[lang]}, ${T.method(state.method)[lang]}: ${state.result?.let { T.result(it)[lang] } ?: "?"}") +
            err(state.errors, lang) + msg(state.message, lang)
        is SupportForm -> listOf("${state.kind?.let { T.benefit(it)[lang] } ?: "?"}, ${T.amountLabel[lang]}: ${state.amount}, ${T.dayLabel[lang]}: ${state.day}") +
            err(state.errors, lang) + msg(state.message, lang)
        is SessionsState -> state.sessions.map { "  ${it.time} ${it.kind[lang]} — ${it.topic} [${it.status[lang]}] ${it.attendances}" } +
            msg(state.message, lang)
        is PlanSessionForm -> listOf("${T.sessionKind(state.kind)[lang]} — ${T.topicLabel[lang]}: ${state.topic}",
            "${T.dayLabel[lang]}: ${state.day} ${T.timeLabel[lang]}: ${state.time}") + err(state.errors, lang) + msg(state.message, lang)
        is AttendanceForm -> listOf(state.topic, "🔍 ${state.query}") + state.people.map { "  ${tick(it.ticked)} ${it.name}" } +
            listOf("${T.walkInsLabel[lang]}: ${state.walkIns}", state.count[lang]) + err(state.errors, lang) + msg(state.message, lang)
        is CounsellingNoteForm -> state.clients.map { "  (${if (it.id == state.client) "•" else " "}) ${it.name}" } +
            listOf("${T.noteLabel[lang]}: ${state.note}") + err(state.errors, lang) + msg(state.message, lang)
        is ReassignForm -> listOf(state.personName) + state.helpers.map { "  (${if (it.username == state.chosen) "•" else " "}) ${it.name} — ${it.role[lang]}" } +
            err(state.errors, lang) + msg(state.message, lang)
        is TaskForm -> listOf("${T.dueLabel[lang]}: ${state.due}", "${T.reasonLabel[lang]}: ${state.reason}", "→ ${state.assignee ?: "—"}") +
            err(state.errors, lang) + msg(state.message, lang)
        is SupervisionForm -> state.volunteers.map { "  (${if (it.username == state.volunteer) "•" else " "}) ${it.name}" } +
            listOf("${T.noteLabel[lang]}: ${state.note}") + err(state.errors, lang) + msg(state.message, lang)
        is ConflictsState -> state.conflicts.map { "  ${it.what[lang]} ${it.personName ?: ""} · ${it.field}: ${it.kept[lang]} ⟵ ${it.lost[lang]}" } +
            listOfNotNull(state.empty.l(lang)) + msg(state.message, lang)
        is MonthState -> listOfNotNull(state.title.l(lang), state.period) + state.lines.map { "  ${it.no}. ${it.label[lang]}: ${it.value}" } +
            msg(state.message, lang)
        is SyncState -> listOfNotNull(state.lastSync[lang], T.pending(state.pending)[lang], state.progress.l(lang), state.offline.l(lang)) +
            state.round.map { "  · ${it[lang]}" } + state.rejected.map { "  ✗ ${it.text[lang]}" } + state.notices.map { "  ℹ ${it[lang]}" } + msg(state.message, lang)
        else -> listOf(state.toString())
    }
}
