package org.donghanh.field.android

import android.app.Activity
import android.content.Intent
import android.graphics.Color
import android.graphics.Typeface
import android.os.Bundle
import android.os.Handler
import android.os.Looper
import android.text.Editable
import android.text.InputType
import android.text.TextWatcher
import android.view.View
import android.view.WindowManager
import android.widget.Button
import android.widget.CheckBox
import android.widget.EditText
import android.widget.LinearLayout
import android.widget.RadioButton
import android.widget.RadioGroup
import android.widget.ScrollView
import android.widget.TextView
import kotlin.coroutines.CoroutineContext
import kotlinx.coroutines.CoroutineDispatcher
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.cancel
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.launch
import org.donghanh.field.AppSession
import org.donghanh.field.Gate
import org.donghanh.field.Lang
import org.donghanh.field.T
import org.donghanh.field.Text

/** The main thread as a coroutine dispatcher (kotlinx-coroutines-android is not needed for this). */
object MainThread : CoroutineDispatcher() {
    private val handler = Handler(Looper.getMainLooper())
    override fun dispatch(context: CoroutineContext, block: Runnable) {
        handler.post(block)
    }
}

/**
 * Every screen: views built in code, one state holder, its state rendered on each change.
 * Screens need an unlocked session: when the gate closes (the lock button, inactivity, a
 * wipe), every screen finishes and [MainActivity] shows the PIN or enrolment screen. Screens
 * are kept out of screenshots and the recent-apps preview (FLAG_SECURE): they show names.
 */
abstract class Screen : Activity() {
    protected val scope = CoroutineScope(SupervisorJob() + MainThread)
    protected val app: FieldApp get() = FieldApp.of(this)
    protected val session: AppSession get() = app.session
    protected val lang: Lang get() = app.lang
    protected lateinit var ui: Column

    /** Whether this screen needs the session open (all but enrolment and unlocking). */
    protected open val needsOpen = true

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        window.setFlags(WindowManager.LayoutParams.FLAG_SECURE, WindowManager.LayoutParams.FLAG_SECURE)
        ui = Column(this, lang)
        setContentView(ScrollView(this).apply { addView(ui.root) })
        if (needsOpen) {
            scope.launch {
                session.gate.collect { if (it !is Gate.Open) finishToMain() }
            }
        }
        build()
    }

    /** Builds the views and starts collecting the state holder. */
    protected abstract fun build()

    override fun onResume() {
        super.onResume()
        if (needsOpen) session.lockIfIdle()
    }

    override fun onDestroy() {
        scope.cancel()
        super.onDestroy()
    }

    protected fun finishToMain() {
        startActivity(Intent(this, MainActivity::class.java).addFlags(Intent.FLAG_ACTIVITY_NEW_TASK or Intent.FLAG_ACTIVITY_CLEAR_TASK))
        finish()
    }

    protected fun <S> render(state: StateFlow<S>, block: (S) -> Unit) {
        scope.launch { state.collect { block(it) } }
    }

    protected fun go(cls: Class<out Activity>, vararg extras: Pair<String, String>) {
        val i = Intent(this, cls)
        for ((k, v) in extras) i.putExtra(k, v)
        startActivity(i)
    }

    protected fun arg(key: String): String = intent.getStringExtra(key) ?: run {
        finish()
        ""
    }

    /** Runs a state holder's action on the main-thread scope (its core call runs on io). */
    protected fun act(block: suspend () -> Unit) {
        scope.launch { block() }
    }

    /** The bottom of every home screen: sync status and button, lock, language. */
    protected fun homeMenu() {
        ui.label(Text("Đồng bộ", "Sync"))
        val status = ui.line()
        ui.button(Text("Đồng bộ", "Sync")) { go(SyncActivity::class.java) }
        ui.button(Text("Khóa", "Lock")) { session.lock() }
        ui.button(Text("English", "Tiếng Việt")) {
            app.lang = if (lang == Lang.VI) Lang.EN else Lang.VI
            recreate()
        }
        render(app.sync.state) { s ->
            status.text = listOfNotNull(s.lastSync[lang], T.pending(s.pending)[lang], s.offline?.get(lang))
                .joinToString("\n")
        }
        act { app.sync.refresh() }
    }

    companion object {
        const val PERSON = "person"
        const val SESSION = "session"
    }
}

/** A vertical column of views with the few widgets the screens use. */
class Column(private val activity: Activity, private val lang: Lang) {
    val root = LinearLayout(activity).apply {
        orientation = LinearLayout.VERTICAL
        setPadding(40, 40, 40, 40)
    }

    private fun <V : View> add(v: V, into: LinearLayout = root): V {
        into.addView(v)
        return v
    }

    fun title(t: Text): TextView = add(TextView(activity).apply {
        text = t[lang]
        textSize = 22f
        setTypeface(typeface, Typeface.BOLD)
    })

    fun label(t: Text, into: LinearLayout = root): TextView = add(TextView(activity).apply {
        text = t[lang]
        setTypeface(typeface, Typeface.BOLD)
        setPadding(0, 24, 0, 0)
    }, into)

    fun line(s: String = "", into: LinearLayout = root): TextView = add(TextView(activity).apply { text = s }, into)

    /** A message line (form-level errors and confirmations); hidden when empty. */
    fun message(): TextView = add(TextView(activity).apply {
        setTextColor(Color.rgb(0xB0, 0x30, 0x20))
        visibility = View.GONE
    })

    fun show(view: TextView, t: Text?) {
        view.text = t?.get(lang) ?: ""
        view.visibility = if (t == null) View.GONE else View.VISIBLE
    }

    /** A labelled text field and its field-level error line. */
    fun field(name: Text, type: Int = InputType.TYPE_CLASS_TEXT, multiline: Boolean = false, onChange: (String) -> Unit): Field {
        label(name)
        val edit = add(EditText(activity).apply {
            inputType = type or (if (multiline) InputType.TYPE_TEXT_FLAG_MULTI_LINE else 0)
            if (multiline) minLines = 3
        })
        edit.addTextChangedListener(object : TextWatcher {
            override fun beforeTextChanged(s: CharSequence?, start: Int, count: Int, after: Int) {}
            override fun onTextChanged(s: CharSequence?, start: Int, before: Int, count: Int) {}
            override fun afterTextChanged(s: Editable?) = onChange(s?.toString() ?: "")
        })
        return Field(edit, message())
    }

    fun button(t: Text, into: LinearLayout = root, onClick: () -> Unit): Button = add(Button(activity).apply {
        text = t[lang]
        isAllCaps = false
        setOnClickListener { onClick() }
    }, into)

    fun check(t: Text, into: LinearLayout = root, checked: Boolean = false, onChange: (Boolean) -> Unit): CheckBox = add(CheckBox(activity).apply {
        text = t[lang]
        isChecked = checked
        setOnCheckedChangeListener { _, on -> onChange(on) }
    }, into)

    /** One choice among options, shown as radio buttons. */
    fun <E> choice(name: Text, options: List<Pair<E, Text>>, selected: E?, onPick: (E) -> Unit): RadioGroup {
        label(name)
        val group = add(RadioGroup(activity))
        for ((value, text) in options) {
            group.addView(RadioButton(activity).apply {
                id = View.generateViewId()
                this.text = text[lang]
                isChecked = value == selected
                setOnClickListener { onPick(value) }
            })
        }
        return group
    }

    /** Shows each field's error from a form state's `errors`. */
    fun errors(errors: Map<String, Text>, fields: Map<String, Field>) {
        for ((name, f) in fields) show(f.error, errors[name])
    }

    /** A container refilled at each state (lists). */
    fun list(): LinearLayout = add(LinearLayout(activity).apply { orientation = LinearLayout.VERTICAL })
}

/** A text field and its error line. */
class Field(val edit: EditText, val error: TextView)

const val PIN_INPUT = InputType.TYPE_CLASS_NUMBER or InputType.TYPE_NUMBER_VARIATION_PASSWORD
const val PASSWORD_INPUT = InputType.TYPE_CLASS_TEXT or InputType.TYPE_TEXT_VARIATION_PASSWORD
const val DATE_INPUT = InputType.TYPE_CLASS_DATETIME or InputType.TYPE_DATETIME_VARIATION_DATE
const val TIME_INPUT = InputType.TYPE_CLASS_DATETIME or InputType.TYPE_DATETIME_VARIATION_TIME
const val NUMBER_INPUT = InputType.TYPE_CLASS_NUMBER
const val URL_INPUT = InputType.TYPE_CLASS_TEXT or InputType.TYPE_TEXT_VARIATION_URI
