package org.donghanh.field.android

import org.donghanh.field.DrugTestViewModel
import org.donghanh.field.PeopleViewModel
import org.donghanh.field.PersonViewModel
import org.donghanh.field.SupportViewModel
import org.donghanh.field.T
import org.donghanh.field.Text
import org.donghanh.field.TodayViewModel
import org.donghanh.field.VisitFormViewModel
import org.donghanh.field.vnd
import uniffi.donghanh.BenefitKind
import uniffi.donghanh.RiskSign
import uniffi.donghanh.Role
import uniffi.donghanh.Service
import uniffi.donghanh.TestKind
import uniffi.donghanh.TestMethod
import uniffi.donghanh.TestResult
import uniffi.donghanh.VisitMode

/** Volunteer home, "Today": tasks overdue, due today and this week; people to visit. */
class TodayActivity : Screen() {
    private lateinit var vm: TodayViewModel

    override fun onResume() {
        super.onResume()
        act { vm.load() }
    }

    override fun build() {
        vm = TodayViewModel(session)
        ui.title(T.todayTitle)
        val list = ui.list()
        val message = ui.message()
        ui.button(T.myPeople) { go(PeopleActivity::class.java) }
        homeMenu()
        render(vm.state) { s ->
            list.removeAllViews()
            ui.line(s.day, list)
            for ((heading, rows) in listOf(T.overdue to s.overdue, T.dueToday to s.dueToday, T.upcoming to s.upcoming)) {
                ui.label(heading, list)
                for (t in rows) ui.button(Text("${t.due} · ${t.personName}: ${t.reason}", "${t.due} · ${t.personName}: ${t.reason}"), list) {
                    go(PersonActivity::class.java, PERSON to t.personId)
                }
            }
            ui.label(T.toVisit, list)
            for (v in s.toVisit) ui.button(Text("${v.name} — ${v.why.vi}", "${v.name} — ${v.why.en}"), list) {
                go(PersonActivity::class.java, PERSON to v.personId)
            }
            ui.show(message, s.message)
        }
    }
}

/** "My people" (a supervisor's commune caseload): search as you type, without diacritics. */
class PeopleActivity : Screen() {
    override fun build() {
        val vm = PeopleViewModel(session)
        ui.title(if (session.role == Role.SUPERVISOR) T.caseloadTitle else T.myPeople)
        ui.field(Text("Tìm theo tên", "Search by name")) { q -> act { vm.search(q) } }
        val list = ui.list()
        val message = ui.message()
        render(vm.state) { s ->
            list.removeAllViews()
            for (p in s.people) {
                val last = p.lastVisit?.let { T.lastVisit(it) } ?: T.neverVisited
                ui.button(Text("${p.name} (${p.birth}) · ${last.vi}", "${p.name} (${p.birth}) · ${last.en}"), list) {
                    go(PersonActivity::class.java, PERSON to p.id)
                }
            }
            s.empty?.let { ui.line(it[lang], list) }
            ui.show(message, s.message)
        }
        act { vm.search("") }
    }
}

/** A person: episodes with planned end, last visits, tasks, tests, support; and what one can do next. */
class PersonActivity : Screen() {
    private lateinit var vm: PersonViewModel

    override fun build() {
        val person = arg(PERSON)
        vm = PersonViewModel(session, person)
        val name = ui.title(T.personTitle)
        val list = ui.list()
        val message = ui.message()
        ui.button(T.recordVisit) { go(VisitActivity::class.java, PERSON to person) }
        ui.button(T.drugTestTitle) { go(DrugTestActivity::class.java, PERSON to person) }
        ui.button(T.supportTitle) { go(SupportActivity::class.java, PERSON to person) }
        if (session.role == Role.SUPERVISOR) {
            ui.button(T.reassignTitle) { go(ReassignActivity::class.java, PERSON to person) }
            ui.button(T.taskTitle) { go(TaskActivity::class.java, PERSON to person) }
        }
        render(vm.state) { s ->
            name.text = s.name.ifEmpty { T.personTitle[lang] }
            list.removeAllViews()
            ui.line("${s.birth} ${s.phone ?: ""}", list)
            for (e in s.episodes) ui.line("${e.status[lang]} · ${e.start} → ${e.plannedEnd[lang]}", list)
            ui.label(Text("Các lần thăm gần đây", "Last visits"), list)
            for (v in s.lastVisits) {
                ui.line("${v.day} · ${v.mode[lang]}\n${v.notes}" +
                    (if (v.risks.isEmpty()) "" else "\n⚠ " + v.risks.joinToString { it[lang] }) +
                    (if (v.services.isEmpty()) "" else "\n✓ " + v.services.joinToString { it[lang] }) +
                    (v.nextDue?.let { "\n→ ${T.visitDue(it)[lang]}" } ?: ""), list)
            }
            ui.label(Text("Việc cần làm", "Tasks"), list)
            for (t in s.tasks) ui.check(Text("${t.due} · ${t.reason}", "${t.due} · ${t.reason}"), list) { on ->
                if (on) act { vm.completeTask(t.id) }
            }
            ui.label(T.drugTestTitle, list)
            for (t in s.tests) ui.line("${t.day} · ${t.kind[lang]}: ${t.result[lang]}", list)
            ui.label(T.supportTitle, list)
            for (b in s.support) ui.line("${b.day} · ${b.kind[lang]} · ${vnd(b.amountVnd)}", list)
            ui.show(message, s.message)
        }
    }

    override fun onResume() {
        super.onResume()
        act { vm.load() }
    }
}

/** Record a visit: mode, observations, risk and relapse signs, services, next visit due. Offline. */
class VisitActivity : Screen() {
    override fun build() {
        val vm = VisitFormViewModel(session, arg(PERSON))
        ui.title(T.recordVisit)
        ui.choice(Text("Hình thức", "Mode"), VisitMode.entries.map { it to T.mode(it) }, VisitMode.HOME) { vm.mode(it) }
        val observations = ui.field(T.observationsLabel, multiline = true) { vm.observations(it) }
        ui.label(Text("Dấu hiệu nguy cơ", "Risk signs"))
        for (r in RiskSign.entries) ui.check(T.risk(r)) { vm.toggle(r) }
        ui.check(T.relapseSuspectedLabel) { vm.relapseSuspected(it) }
        ui.label(Text("Dịch vụ đã cung cấp", "Services given"))
        for (sv in Service.entries) ui.check(T.service(sv)) { vm.toggle(sv) }
        val next = ui.field(T.nextVisitLabel, DATE_INPUT) { vm.nextVisitDue(it) }
        val message = ui.message()
        ui.button(Text("Lưu", "Save")) { act { if (vm.save()) finish() } }
        render(vm.state) { s ->
            ui.errors(s.errors, mapOf("observations" to observations, "nextVisitDue" to next))
            ui.show(message, s.message)
        }
    }
}

/** A drug test result. */
class DrugTestActivity : Screen() {
    override fun build() {
        val vm = DrugTestViewModel(session, arg(PERSON))
        ui.title(T.drugTestTitle)
        ui.choice(Text("Loại", "Kind"), TestKind.entries.map { it to T.testKind(it) }, TestKind.PERIODIC) { vm.kind(it) }
        ui.choice(Text("Phương pháp", "Method"), TestMethod.entries.map { it to T.method(it) }, TestMethod.URINE_RAPID) { vm.method(it) }
        ui.choice(Text("Kết quả", "Result"), TestResult.entries.map { it to T.result(it) }, null) { vm.result(it) }
        val resultError = ui.message()
        ui.field(T.noteLabel, multiline = true) { vm.note(it) }
        val message = ui.message()
        ui.button(Text("Lưu", "Save")) { act { if (vm.save()) finish() } }
        render(vm.state) { s ->
            ui.show(resultError, s.errors["result"])
            ui.show(message, s.message)
        }
    }
}

/** Support given. */
class SupportActivity : Screen() {
    override fun build() {
        val vm = SupportViewModel(session, arg(PERSON))
        ui.title(T.supportTitle)
        ui.choice(Text("Loại hỗ trợ", "Kind of support"), BenefitKind.entries.map { it to T.benefit(it) }, null) { vm.kind(it) }
        val kindError = ui.message()
        val amount = ui.field(T.amountLabel, NUMBER_INPUT) { vm.amount(it) }
        val day = ui.field(T.dayLabel, DATE_INPUT) { vm.day(it) }
        day.edit.setText(vm.state.value.day)
        ui.field(T.noteLabel, multiline = true) { vm.note(it) }
        val message = ui.message()
        ui.button(Text("Lưu", "Save")) { act { if (vm.save()) finish() } }
        render(vm.state) { s ->
            ui.show(kindError, s.errors["kind"])
            ui.errors(s.errors, mapOf("amount" to amount, "day" to day))
            ui.show(message, s.message)
        }
    }
}
