package org.donghanh.field

import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.flow.update
import uniffi.donghanh.Device

/**
 * The base of every screen's state holder: one immutable state in a [StateFlow], changed only
 * here. Actions are `suspend` functions: the Android screen launches them on its main-thread
 * scope, tests call them in `runBlocking`; the blocking core call itself always runs on the
 * session's `io` dispatcher. Errors become the state's message; an action never throws.
 *
 * States may hold decrypted names and notes, in memory only: no state is written anywhere,
 * and no state's `toString` is logged.
 */
abstract class StateHolder<S>(initial: S, protected val session: AppSession) {
    private val _state = MutableStateFlow(initial)
    val state: StateFlow<S> = _state.asStateFlow()

    protected fun set(f: S.() -> S) = _state.update(f)

    /** Runs a core call; on failure puts its message on the state with `onError` and returns null. */
    protected suspend fun <R> attempt(onError: S.(Text) -> S, block: (Device) -> R): R? = try {
        session.call(block)
    } catch (e: CancellationException) {
        throw e
    } catch (e: Exception) {
        set { onError(errorText(e)) }
        null
    }
}
