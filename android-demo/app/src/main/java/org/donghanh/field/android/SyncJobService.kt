package org.donghanh.field.android

import android.app.job.JobInfo
import android.app.job.JobParameters
import android.app.job.JobScheduler
import android.app.job.JobService
import android.content.ComponentName
import android.content.Context
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.Job
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.cancel
import kotlinx.coroutines.launch
import org.donghanh.field.Gate

/**
 * Periodic sync through the framework's JobScheduler: every 15 minutes (the framework's
 * shortest period) when a network is up; the shared [org.donghanh.field.SyncPolicy] decides
 * whether this run actually syncs (pending changes soon, otherwise every two hours, back-off
 * after failures). The store is encrypted under the user's PIN, so a job that finds the app
 * locked does nothing: the sync happens after the next unlock.
 */
class SyncJobService : JobService() {
    private val scope = CoroutineScope(SupervisorJob() + Dispatchers.Default)
    private var running: Job? = null

    override fun onStartJob(params: JobParameters): Boolean {
        val app = FieldApp.of(this)
        if (app.session.gate.value !is Gate.Open) return false
        running = scope.launch {
            // A sync round is not a user action: it must not keep an idle session open.
            if (!app.session.lockIfIdle() && app.sync.due()) app.sync.syncNow()
            jobFinished(params, false)
        }
        return true
    }

    override fun onStopJob(params: JobParameters): Boolean {
        running?.cancel()
        return true
    }

    override fun onDestroy() {
        scope.cancel()
        super.onDestroy()
    }

    companion object {
        private const val JOB_ID = 4201
        private const val PERIOD_MS = 15L * 60 * 1000

        fun schedule(context: Context) {
            val jobs = context.getSystemService(JobScheduler::class.java) ?: return
            if (jobs.getPendingJob(JOB_ID) != null) return
            val job = JobInfo.Builder(JOB_ID, ComponentName(context, SyncJobService::class.java))
                .setRequiredNetworkType(JobInfo.NETWORK_TYPE_ANY)
                .setPeriodic(PERIOD_MS)
                .setPersisted(true)
                .build()
            jobs.schedule(job)
        }
    }
}
