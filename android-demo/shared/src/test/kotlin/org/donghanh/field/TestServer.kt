package org.donghanh.field

import java.io.BufferedReader
import java.io.File
import java.io.InputStreamReader
import java.net.InetAddress
import java.net.ServerSocket
import java.net.Socket
import java.nio.file.Files
import java.security.SecureRandom
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger
import javax.crypto.Cipher
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey
import javax.crypto.spec.GCMParameterSpec
import kotlin.concurrent.thread
import uniffi.donghanh.DonghanhException
import uniffi.donghanh.KeyStore

const val PASSWORD = "mật-khẩu-thử-nghiệm"
const val PIN = "482615"

/**
 * The real `donghanh-server` as a process on a loopback port with a temporary data
 * directory, set up through the operator's command line and stopped by its pid (as in
 * bindings/kotlin). `extra` are more `serve` options (a short key lease, for example).
 */
class TestServer(vararg extra: String) : AutoCloseable {
    private val binary = System.getProperty("donghanh.server")
        ?: error("donghanh.server is not set (run scripts/bindings test)")
    val data: File = Files.createTempDirectory("donghanh-server").toFile()
    private val process: Process
    val url: String
    val port: Int
    val province: String
    val commune: String
    val team: String
    val point: String
    private val users = AtomicInteger()

    init {
        province = admin("org", "add", "--name", "Tỉnh Thử Nghiệm")
        commune = admin("org", "add", "--name", "Xã Thử Nghiệm", "--parent", province)
        team = admin("org", "add", "--name", "Đội Thử Nghiệm", "--parent", commune)
        point = admin("point", "add", "--name", "Điểm Tư Vấn Thử Nghiệm", "--org", commune)
        process = ProcessBuilder(listOf(binary, "--data", data.path, "serve", "--listen", "127.0.0.1:0") + extra)
            .redirectError(ProcessBuilder.Redirect.DISCARD)
            .start()
        val line = BufferedReader(InputStreamReader(process.inputStream)).readLine() ?: ""
        check(line.startsWith("listening on ")) { "server did not start: $line" }
        url = "http://" + line.removePrefix("listening on ")
        port = url.substringAfterLast(':').toInt()
    }

    fun admin(vararg args: String): String {
        val pb = ProcessBuilder(listOf(binary, "--data", data.path, "admin") + args)
        pb.environment()["DONGHANH_NEW_PASSWORD"] = PASSWORD
        val p = pb.start()
        val out = p.inputStream.bufferedReader().readText().trim()
        val err = p.errorStream.bufferedReader().readText()
        check(p.waitFor() == 0) { "admin ${args.toList()} failed: $err" }
        return out
    }

    /** Adds a user with a fresh username built on `prefix` and its display name; returns the username. */
    fun addUser(prefix: String, role: String, name: String, org: String = commune, point: String? = null): String {
        val username = "$prefix.${users.incrementAndGet()}"
        val args = mutableListOf("user", "add", "--username", username, "--role", role,
            "--org", org, "--display-name", name)
        if (point != null) args += listOf("--point", point)
        admin(*args.toTypedArray())
        return username
    }

    override fun close() {
        process.destroy()
        process.waitFor(30, TimeUnit.SECONDS)
        data.deleteRecursively()
    }
}

/**
 * A loopback relay in front of the server that can drop the network: while `online` is false,
 * every connection is closed at once, as a phone without signal sees it (the core answers
 * `Network`). Only the relay is stopped, never the server.
 */
class Signal(private val targetPort: Int) : AutoCloseable {
    private val socket = ServerSocket(0, 50, InetAddress.getLoopbackAddress())
    val url = "http://127.0.0.1:${socket.localPort}"
    @Volatile var online = true

    private val acceptor = thread(isDaemon = true, name = "signal") {
        while (!socket.isClosed) {
            val client = try { socket.accept() } catch (e: Exception) { break }
            if (!online) {
                client.close()
                continue
            }
            val upstream = try { Socket(InetAddress.getLoopbackAddress(), targetPort) } catch (e: Exception) {
                client.close()
                continue
            }
            pipe(client, upstream)
            pipe(upstream, client)
        }
    }

    private fun pipe(from: Socket, to: Socket) = thread(isDaemon = true) {
        try {
            from.getInputStream().copyTo(to.getOutputStream())
        } catch (e: Exception) {
            // The other side closed.
        } finally {
            runCatching { to.shutdownOutput() }
            runCatching { from.shutdownInput() }
        }
    }

    override fun close() {
        socket.close()
        acceptor.join(5000)
    }
}

/** A test stand-in for the Android Keystore: an AES-256-GCM key held in memory. */
class MemoryKeyStore(private val key: SecretKey = KeyGenerator.getInstance("AES").apply { init(256) }.generateKey()) : KeyStore {
    override fun wrap(secret: ByteArray): ByteArray {
        val nonce = ByteArray(12).also { SecureRandom().nextBytes(it) }
        val cipher = Cipher.getInstance("AES/GCM/NoPadding")
        cipher.init(Cipher.ENCRYPT_MODE, key, GCMParameterSpec(128, nonce))
        return nonce + cipher.doFinal(secret)
    }

    override fun unwrap(wrapped: ByteArray): ByteArray {
        if (wrapped.size < 12) throw DonghanhException.KeyRejected()
        val cipher = Cipher.getInstance("AES/GCM/NoPadding")
        cipher.init(Cipher.DECRYPT_MODE, key, GCMParameterSpec(128, wrapped, 0, 12))
        return try {
            cipher.doFinal(wrapped, 12, wrapped.size - 12)
        } catch (e: javax.crypto.AEADBadTagException) {
            throw DonghanhException.KeyRejected()
        }
    }
}

/** A clock the test moves by hand. */
class ManualClock(var now: java.time.Instant = java.time.Instant.now()) : Clock {
    override fun now(): java.time.Instant = now
    fun advance(d: java.time.Duration) { now = now.plus(d) }
}
