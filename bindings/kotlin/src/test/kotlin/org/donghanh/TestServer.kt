package org.donghanh

import java.io.BufferedReader
import java.io.File
import java.io.InputStreamReader
import java.nio.file.Files
import java.security.SecureRandom
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger
import javax.crypto.Cipher
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey
import javax.crypto.spec.GCMParameterSpec
import uniffi.donghanh.DonghanhException
import uniffi.donghanh.KeyStore

const val PASSWORD = "mật-khẩu-thử-nghiệm"
const val PIN = "482615"

/**
 * The real `donghanh-server` as a process on a loopback port with a temporary data
 * directory, set up through the operator's command line and stopped by its pid.
 */
class TestServer : AutoCloseable {
    private val binary = System.getProperty("donghanh.server")
        ?: error("donghanh.server is not set (run scripts/bindings test)")
    val data: File = Files.createTempDirectory("donghanh-server").toFile()
    private val process: Process
    val url: String
    val commune: String
    val team: String
    val point: String
    private val users = AtomicInteger()

    init {
        val province = admin("org", "add", "--name", "Tỉnh Thử Nghiệm")
        commune = admin("org", "add", "--name", "Xã Thử Nghiệm", "--parent", province)
        team = admin("org", "add", "--name", "Đội Thử Nghiệm", "--parent", commune)
        point = admin("point", "add", "--name", "Điểm Tư Vấn Thử Nghiệm", "--org", commune)
        process = ProcessBuilder(binary, "--data", data.path, "serve", "--listen", "127.0.0.1:0")
            .redirectError(ProcessBuilder.Redirect.DISCARD)
            .start()
        val line = BufferedReader(InputStreamReader(process.inputStream)).readLine() ?: ""
        check(line.startsWith("listening on ")) { "server did not start: $line" }
        url = "http://" + line.removePrefix("listening on ")
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

    /** Adds a user with a fresh username built on `prefix`; returns the username. */
    fun addUser(prefix: String, role: String, org: String = commune, point: String? = null): String {
        val username = "$prefix.${users.incrementAndGet()}"
        val args = mutableListOf("user", "add", "--username", username, "--role", role,
            "--org", org, "--display-name", username)
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
 * A test stand-in for the Android Keystore: an AES-256-GCM key held in memory (`null` is a
 * key that was deleted).
 */
class MemoryKeyStore(var key: SecretKey? = newKey()) : KeyStore {
    companion object {
        fun newKey(): SecretKey = KeyGenerator.getInstance("AES").apply { init(256) }.generateKey()
    }

    override fun wrap(secret: ByteArray): ByteArray {
        val k = key ?: throw DonghanhException.KeyMissing()
        val nonce = ByteArray(12).also { SecureRandom().nextBytes(it) }
        val cipher = Cipher.getInstance("AES/GCM/NoPadding")
        cipher.init(Cipher.ENCRYPT_MODE, k, GCMParameterSpec(128, nonce))
        return nonce + cipher.doFinal(secret)
    }

    override fun unwrap(wrapped: ByteArray): ByteArray {
        val k = key ?: throw DonghanhException.KeyMissing()
        if (wrapped.size < 12) throw DonghanhException.KeyRejected()
        val cipher = Cipher.getInstance("AES/GCM/NoPadding")
        cipher.init(Cipher.DECRYPT_MODE, k, GCMParameterSpec(128, wrapped, 0, 12))
        return try {
            cipher.doFinal(wrapped, 12, wrapped.size - 12)
        } catch (e: javax.crypto.AEADBadTagException) {
            throw DonghanhException.KeyRejected()
        }
    }
}
