package org.donghanh.field.android

import org.donghanh.field.AttendanceViewModel
import org.donghanh.field.CounsellingNoteViewModel
import org.donghanh.field.PlanSessionViewModel
import org.donghanh.field.SessionsViewModel
import org.donghanh.field.T
import org.donghanh.field.Text
import uniffi.donghanh.SessionKind

/** Counsellor home: the sessions of my community point. */
class CounsellorHomeActivity : Screen() {
    private lateinit var vm: SessionsViewModel

    override fun onResume() {
        super.onResume()
        act { vm.load() }
    }

    override fun build() {
        vm = SessionsViewModel(session)
        ui.title(T.sessionsTitle)
        val list = ui.list()
        val message = ui.message()
        ui.button(T.planSession) { go(PlanSessionActivity::class.java) }
        ui.button(T.counsellingNote) { go(CounsellingNoteActivity::class.java) }
        homeMenu()
        render(vm.state) { s ->
            list.removeAllViews()
            for (row in s.sessions) {
                val line = "${row.time} · ${row.kind[lang]} · ${row.topic} · ${row.status[lang]} · ${row.attendances}"
                ui.button(Text(line, line), list) { go(AttendanceActivity::class.java, SESSION to row.id) }
            }
            ui.show(message, s.message)
        }
    }
}

/** Plan a session: kind, topic, day and time. */
class PlanSessionActivity : Screen() {
    override fun build() {
        val vm = PlanSessionViewModel(session)
        ui.title(T.planSession)
        ui.choice(Text("Loại buổi", "Kind"), SessionKind.entries.map { it to T.sessionKind(it) }, SessionKind.GROUP) { vm.kind(it) }
        val fields = mapOf(
            "topic" to ui.field(T.topicLabel) { vm.topic(it) },
            "day" to ui.field(T.dayLabel, DATE_INPUT) { vm.day(it) },
            "time" to ui.field(T.timeLabel, TIME_INPUT) { vm.time(it) },
        )
        val message = ui.message()
        ui.button(Text("Lưu", "Save")) { act { if (vm.save() != null) finish() } }
        render(vm.state) { s ->
            ui.errors(s.errors, fields)
            ui.show(message, s.message)
        }
    }
}

/** Take attendance: search and tick people, count anonymous walk-ins. */
class AttendanceActivity : Screen() {
    override fun build() {
        val vm = AttendanceViewModel(session, arg(SESSION))
        val title = ui.title(T.attendanceTitle)
        ui.field(Text("Tìm theo tên", "Search by name")) { q -> act { vm.search(q) } }
        val list = ui.list()
        val walkIns = ui.field(T.walkInsLabel, NUMBER_INPUT) { vm.walkIns(it) }
        val count = ui.line()
        val message = ui.message()
        ui.button(Text("Lưu điểm danh", "Save attendance")) { act { vm.save() } }
        render(vm.state) { s ->
            title.text = "${T.attendanceTitle[lang]} · ${s.topic}"
            list.removeAllViews()
            for (p in s.people) {
                ui.check(Text(p.name, p.name), list, p.ticked) { vm.toggle(p.personId) }.isEnabled = !p.alreadyMarked
            }
            if (s.walkIns.isEmpty()) walkIns.edit.text.clear()
            count.text = s.count[lang]
            ui.errors(s.errors, mapOf("walkIns" to walkIns))
            ui.show(message, s.message)
        }
        act { vm.load() }
    }
}

/** An individual counselling note for one of my clients. */
class CounsellingNoteActivity : Screen() {
    override fun build() {
        val vm = CounsellingNoteViewModel(session)
        ui.title(T.counsellingNote)
        val clients = ui.list()
        val clientError = ui.message()
        val note = ui.field(T.noteLabel, multiline = true) { vm.note(it) }
        val message = ui.message()
        ui.button(Text("Lưu", "Save")) { act { if (vm.save()) finish() } }
        var shown = 0
        render(vm.state) { s ->
            if (s.clients.size != shown) {
                shown = s.clients.size
                clients.removeAllViews()
                clients.addView(android.widget.RadioGroup(this).apply {
                    for (c in s.clients) addView(android.widget.RadioButton(this@CounsellingNoteActivity).apply {
                        text = c.name
                        setOnClickListener { vm.client(c.id) }
                    })
                })
            }
            ui.show(clientError, s.errors["client"])
            ui.errors(s.errors, mapOf("note" to note))
            ui.show(message, s.message)
        }
        act { vm.load() }
    }
}
