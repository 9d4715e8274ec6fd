package org.donghanh.field.android

import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyProperties
import java.security.KeyStore as JavaKeyStore
import java.security.UnrecoverableKeyException
import javax.crypto.AEADBadTagException
import javax.crypto.Cipher
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey
import javax.crypto.spec.GCMParameterSpec
import uniffi.donghanh.DonghanhException
import uniffi.donghanh.KeyStore

/**
 * The core's [KeyStore] over the Android Keystore: an AES-256-GCM key that never leaves the
 * platform's key store (the TEE or StrongBox where the phone has one) wraps the device secret.
 *
 * The key is created in `wrap` (called once, when the store is created), never in `unwrap`: a
 * missing key at unwrap is `KeyMissing` (the phone was reset, or the app's keys cleared), and
 * making a new one there would orphan every record. The blob is the 12-byte IV followed by the
 * ciphertext and tag.
 */
class AndroidKeyStore(private val alias: String = "donghanh-device-secret") : KeyStore {
    private fun keystore(): JavaKeyStore = JavaKeyStore.getInstance(PROVIDER).apply { load(null) }

    private fun existingKey(): SecretKey? = try {
        keystore().getKey(alias, null) as SecretKey?
    } catch (e: UnrecoverableKeyException) {
        throw DonghanhException.KeyRejected()
    }

    private fun newKey(): SecretKey {
        val spec = KeyGenParameterSpec.Builder(alias, KeyProperties.PURPOSE_ENCRYPT or KeyProperties.PURPOSE_DECRYPT)
            .setBlockModes(KeyProperties.BLOCK_MODE_GCM)
            .setEncryptionPaddings(KeyProperties.ENCRYPTION_PADDING_NONE)
            .setKeySize(256)
            .setRandomizedEncryptionRequired(true)
            .build()
        return KeyGenerator.getInstance(KeyProperties.KEY_ALGORITHM_AES, PROVIDER).run {
            init(spec)
            generateKey()
        }
    }

    override fun wrap(secret: ByteArray): ByteArray {
        val key = existingKey() ?: newKey()
        val cipher = Cipher.getInstance(TRANSFORMATION)
        cipher.init(Cipher.ENCRYPT_MODE, key)
        return cipher.iv + cipher.doFinal(secret)
    }

    override fun unwrap(wrapped: ByteArray): ByteArray {
        val key = existingKey() ?: throw DonghanhException.KeyMissing()
        if (wrapped.size <= IV_BYTES) throw DonghanhException.KeyRejected()
        val cipher = Cipher.getInstance(TRANSFORMATION)
        cipher.init(Cipher.DECRYPT_MODE, key, GCMParameterSpec(128, wrapped, 0, IV_BYTES))
        return try {
            cipher.doFinal(wrapped, IV_BYTES, wrapped.size - IV_BYTES)
        } catch (e: AEADBadTagException) {
            throw DonghanhException.KeyRejected()
        }
    }

    private companion object {
        const val PROVIDER = "AndroidKeyStore"
        const val TRANSFORMATION = "AES/GCM/NoPadding"
        const val IV_BYTES = 12
    }
}
