package org.donghanh.field.android

import android.widget.RadioButton
import android.widget.RadioGroup
import org.donghanh.field.Choice
import org.donghanh.field.ConflictsViewModel
import org.donghanh.field.MonthViewModel
import org.donghanh.field.ReassignViewModel
import org.donghanh.field.SupervisionNoteViewModel
import org.donghanh.field.T
import org.donghanh.field.TaskFormViewModel
import org.donghanh.field.Text

/** Supervisor home: the commune's caseload, and the supervisor's other screens. */
class SupervisorHomeActivity : Screen() {
    override fun build() {
        ui.title(T.caseloadTitle)
        ui.button(T.caseloadTitle) { go(PeopleActivity::class.java) }
        ui.button(T.conflictsTitle) { go(ConflictsActivity::class.java) }
        ui.button(T.supervisionTitle) { go(SupervisionNoteActivity::class.java) }
        ui.button(T.monthTitle) { go(MonthActivity::class.java) }
        homeMenu()
    }
}

/** A list of colleagues to pick one from, refilled when the directory arrives. */
private fun Screen.colleagues(into: android.widget.LinearLayout, choices: List<Choice>, lang: org.donghanh.field.Lang, onPick: (String) -> Unit) {
    into.removeAllViews()
    into.addView(RadioGroup(this).apply {
        for (c in choices) addView(RadioButton(this@colleagues).apply {
            text = "${c.name} · ${c.role[lang]}"
            setOnClickListener { onPick(c.username) }
        })
    })
}

/** Reassign a case. */
class ReassignActivity : Screen() {
    override fun build() {
        val vm = ReassignViewModel(session, arg(PERSON))
        val title = ui.title(T.reassignTitle)
        val helpers = ui.list()
        val error = ui.message()
        val message = ui.message()
        ui.button(T.reassignTitle) { act { if (vm.save()) finish() } }
        var shown = -1
        render(vm.state) { s ->
            title.text = "${T.reassignTitle[lang]} · ${s.personName}"
            if (s.helpers.size != shown) {
                shown = s.helpers.size
                colleagues(helpers, s.helpers, lang) { vm.choose(it) }
            }
            ui.show(error, s.errors["helper"])
            ui.show(message, s.message)
        }
        act { vm.load() }
    }
}

/** Add a follow-up task about a person. */
class TaskActivity : Screen() {
    override fun build() {
        val vm = TaskFormViewModel(session, arg(PERSON))
        ui.title(T.taskTitle)
        val fields = mapOf(
            "due" to ui.field(T.dueLabel, DATE_INPUT) { vm.due(it) },
            "reason" to ui.field(T.reasonLabel, multiline = true) { vm.reason(it) },
        )
        ui.label(Text("Giao cho", "For"))
        val helpers = ui.list()
        val message = ui.message()
        ui.button(Text("Lưu", "Save")) { act { if (vm.save()) finish() } }
        var shown = -1
        render(vm.state) { s ->
            if (s.helpers.size != shown) {
                shown = s.helpers.size
                colleagues(helpers, s.helpers, lang) { vm.assignee(it) }
            }
            ui.errors(s.errors, fields)
            ui.show(message, s.message)
        }
        act { vm.load() }
    }
}

/** A supervision note for a volunteer. */
class SupervisionNoteActivity : Screen() {
    override fun build() {
        val vm = SupervisionNoteViewModel(session)
        ui.title(T.supervisionTitle)
        val volunteers = ui.list()
        val error = ui.message()
        val note = ui.field(T.noteLabel, multiline = true) { vm.note(it) }
        val message = ui.message()
        ui.button(Text("Lưu", "Save")) { act { if (vm.save()) finish() } }
        var shown = -1
        render(vm.state) { s ->
            if (s.volunteers.size != shown) {
                shown = s.volunteers.size
                colleagues(volunteers, s.volunteers, lang) { vm.volunteer(it) }
            }
            ui.show(error, s.errors["volunteer"])
            ui.errors(s.errors, mapOf("note" to note))
            ui.show(message, s.message)
        }
        act { vm.load() }
    }
}

/** Conflicts to resolve: keep the current value or restore the one that lost. Online. */
class ConflictsActivity : Screen() {
    override fun build() {
        val vm = ConflictsViewModel(session)
        ui.title(T.conflictsTitle)
        val list = ui.list()
        val message = ui.message()
        render(vm.state) { s ->
            list.removeAllViews()
            for (c in s.conflicts) {
                ui.line("${c.what[lang]} · ${c.personName ?: ""} · ${c.field}\n= ${c.kept[lang]}\n≠ ${c.lost[lang]}", list)
                ui.button(Text("Giữ giá trị hiện tại", "Keep the current value"), list) { act { vm.resolve(c.id, false) } }
                ui.button(Text("Khôi phục giá trị bị ghi đè", "Restore the overwritten value"), list) { act { vm.resolve(c.id, true) } }
            }
            s.empty?.let { ui.line(it[lang], list) }
            ui.show(message, s.message)
        }
        act { vm.load() }
    }
}

/** The commune's month at a glance (form 01-BCN), computed on the phone. */
class MonthActivity : Screen() {
    override fun build() {
        val vm = MonthViewModel(session)
        val title = ui.title(T.monthTitle)
        val list = ui.list()
        val message = ui.message()
        render(vm.state) { s ->
            title.text = "${s.title?.get(lang) ?: T.monthTitle[lang]} · ${s.period}"
            list.removeAllViews()
            for (l in s.lines) ui.line("${l.no}. ${l.label[lang]}: ${l.value}", list)
            ui.show(message, s.message)
        }
        act { vm.load() }
    }
}
