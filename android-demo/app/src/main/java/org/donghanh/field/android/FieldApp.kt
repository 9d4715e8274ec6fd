package org.donghanh.field.android

import android.app.Application
import android.content.Context
import android.os.Build
import java.io.File
import org.donghanh.field.AppSession
import org.donghanh.field.Lang
import org.donghanh.field.Settings
import org.donghanh.field.SyncViewModel
import uniffi.donghanh.uniffiEnsureInitialized

/**
 * The process: loads the native library and checks that the generated bindings match it
 * (`uniffiEnsureInitialized()`, before any other call), holds the one [AppSession] and the
 * one [SyncViewModel], and schedules the periodic sync job.
 */
class FieldApp : Application() {
    lateinit var session: AppSession
        private set
    lateinit var sync: SyncViewModel
        private set

    /** The language screens show; Vietnamese unless the user switched. */
    var lang: Lang
        get() = if (prefs().getString(LANG, "vi") == "en") Lang.EN else Lang.VI
        set(value) { prefs().edit().putString(LANG, if (value == Lang.EN) "en" else "vi").apply() }

    override fun onCreate() {
        super.onCreate()
        uniffiEnsureInitialized()
        val settings = PreferenceSettings(prefs())
        // The store's own directory in the app's private files (never on shared storage).
        session = AppSession(File(filesDir, "device").path, AndroidKeyStore(), settings = settings)
        sync = SyncViewModel(session)
        SyncJobService.schedule(this)
    }

    private fun prefs() = getSharedPreferences("donghanh", Context.MODE_PRIVATE)

    /** A label for the admin's device list: the model, never the user. */
    fun deviceLabel(): String = "${Build.MANUFACTURER} ${Build.MODEL}".take(60)

    companion object {
        private const val LANG = "lang"

        fun of(context: Context): FieldApp = context.applicationContext as FieldApp
    }
}

/** [Settings] in SharedPreferences: sync times and counts only, nothing personal. */
class PreferenceSettings(private val prefs: android.content.SharedPreferences) : Settings {
    override fun getLong(key: String): Long? = if (prefs.contains(key)) prefs.getLong(key, 0) else null
    override fun putLong(key: String, value: Long) { prefs.edit().putLong(key, value).apply() }
    override fun remove(key: String) { prefs.edit().remove(key).apply() }
}
