// The native library and its Kotlin bindings, built from the repository's Rust workspace (the
// parent directory). Needs the Android NDK, cargo-ndk (`cargo install cargo-ndk`) and the Rust
// Android targets (`rustup target add aarch64-linux-android armv7-linux-androideabi
// x86_64-linux-android`). The bindings are generated from one of the unstripped libraries of
// the same build, so that what is generated and what is loaded always match (a mismatch
// crashes instead of erroring).
plugins {
    id("com.android.application") version "8.7.3" apply false
    id("org.jetbrains.kotlin.android") version "2.1.20" apply false
    id("org.jetbrains.kotlin.jvm") version "2.1.20" apply false
}

val repo = rootDir.parentFile
val rustProfile = if (gradle.startParameter.taskNames.any { it.contains("Release") }) "release" else "debug"
val jniLibs = layout.buildDirectory.dir("rust/jniLibs")
val uniffiOut = layout.buildDirectory.dir("generated/uniffi")

/** libdonghanh for every ABI the app ships, into build/rust/jniLibs/<abi>/. */
tasks.register<Exec>("cargoNdk") {
    workingDir = repo
    val args = mutableListOf("cargo", "ndk", "-t", "arm64-v8a", "-t", "armeabi-v7a", "-t", "x86_64",
        "-o", jniLibs.get().asFile.path, "build", "--locked", "-p", "donghanh-ffi")
    if (rustProfile == "release") args += "--release"
    commandLine(args)
}

/** The Kotlin bindings (package uniffi.donghanh), generated from the arm64 library just built. */
tasks.register<Exec>("generateUniffiBindings") {
    dependsOn("cargoNdk")
    workingDir = repo
    val lib = repo.resolve("target/aarch64-linux-android/$rustProfile/libdonghanh.so")
    commandLine("sh", "-c",
        "cargo build --locked -p uniffi-bindgen && target/debug/uniffi-bindgen generate " +
            "--library '${lib.path}' --language kotlin --out-dir '${uniffiOut.get().asFile.path}'")
}
