package org.donghanh.field.android

import android.content.Intent
import org.donghanh.field.EnrollViewModel
import org.donghanh.field.Gate
import org.donghanh.field.Lang
import org.donghanh.field.T
import org.donghanh.field.Text
import org.donghanh.field.UnlockViewModel
import uniffi.donghanh.Role

/** The launcher: sends the user where the session's gate says (enrol, unlock, or their home). */
class MainActivity : Screen() {
    override val needsOpen = false

    override fun build() {
        val target = when (val gate = session.gate.value) {
            is Gate.NotEnrolled -> EnrollActivity::class.java
            is Gate.Locked -> UnlockActivity::class.java
            is Gate.Open -> when (gate.role) {
                Role.COUNSELLOR -> CounsellorHomeActivity::class.java
                Role.SUPERVISOR -> SupervisorHomeActivity::class.java
                else -> TodayActivity::class.java
            }
        }
        startActivity(Intent(this, target))
        finish()
    }
}

/** Enrol: server address, username, password, and a PIN chosen twice. */
class EnrollActivity : Screen() {
    override val needsOpen = false

    override fun build() {
        val vm = EnrollViewModel(session, app.deviceLabel())
        ui.title(T.enrollTitle)
        val notice = ui.message()
        ui.show(notice, (session.gate.value as? Gate.NotEnrolled)?.notice)
        val fields = mapOf(
            "server" to ui.field(T.serverLabel, URL_INPUT) { vm.server(it) },
            "username" to ui.field(T.usernameLabel) { vm.username(it) },
            "password" to ui.field(T.passwordLabel, PASSWORD_INPUT) { vm.password(it) },
            "pin" to ui.field(T.pinLabel, PIN_INPUT) { vm.pin(it) },
            "pinAgain" to ui.field(T.pinConfirmLabel, PIN_INPUT) { vm.pinAgain(it) },
        )
        val message = ui.message()
        val submit = ui.button(T.enrollTitle) { act { if (vm.submit()) finishToMain() } }
        ui.button(Text("English", "Tiếng Việt")) {
            app.lang = if (lang == Lang.VI) Lang.EN else Lang.VI
            recreate()
        }
        render(vm.state) { s ->
            ui.errors(s.errors, fields)
            ui.show(message, s.message)
            submit.isEnabled = !s.busy
            if (s.password.isEmpty()) fields.getValue("password").edit.text.clear()
        }
    }
}

/** Unlock with the PIN, showing why the app was locked. */
class UnlockActivity : Screen() {
    override val needsOpen = false

    override fun build() {
        val vm = UnlockViewModel(session)
        ui.title(T.unlockTitle)
        val reason = ui.message()
        val pin = ui.field(T.pinLabel, PIN_INPUT) { vm.pin(it) }
        val submit = ui.button(T.unlockTitle) {
            act { if (vm.submit()) finishToMain() }
        }
        render(vm.state) { s ->
            ui.show(reason, s.reason)
            ui.show(pin.error, s.error)
            if (s.pin.isEmpty()) pin.edit.text.clear()
            submit.isEnabled = !s.busy
        }
        // A wipe found at unlock (key lease run out) leads to enrolment, with its notice.
        render(session.gate) { if (it is Gate.NotEnrolled) finishToMain() }
    }
}
