package org.donghanh.field.android

import org.donghanh.field.T
import org.donghanh.field.Text

/**
 * Sync: last sync, pending changes, progress while running, refused changes with their reason,
 * and the notices (cases removed from the phone, the phone wiped).
 */
class SyncActivity : Screen() {
    override fun build() {
        val vm = app.sync
        ui.title(Text("Đồng bộ", "Sync"))
        val status = ui.line()
        val progress = ui.line()
        val notices = ui.list()
        val rejected = ui.list()
        val message = ui.message()
        val now = ui.button(Text("Đồng bộ ngay", "Sync now")) { act { vm.syncNow() } }
        render(vm.state) { s ->
            status.text = listOfNotNull(s.lastSync[lang], T.pending(s.pending)[lang], s.offline?.get(lang)).joinToString("\n")
            progress.text = s.round.joinToString("\n") { "· ${it[lang]}" }
            now.isEnabled = !s.running
            notices.removeAllViews()
            for (n in s.notices) ui.line("ℹ ${n[lang]}", notices)
            if (s.notices.isNotEmpty()) ui.button(Text("Đã hiểu", "Understood"), notices) { vm.dismissNotices() }
            rejected.removeAllViews()
            for (r in s.rejected) {
                ui.line("✗ ${r.text[lang]}", rejected)
                ui.button(Text("Đã xem", "Seen"), rejected) { act { vm.dismissRejected(r.clientSeq) } }
            }
            ui.show(message, s.message)
        }
        act { vm.refresh() }
    }
}
