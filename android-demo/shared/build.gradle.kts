// The pure-Kotlin module: state holders, validation, sync policy, texts, and the generated
// uniffi bindings (see the root build file).
plugins {
    id("org.jetbrains.kotlin.jvm")
}

kotlin {
    jvmToolchain(17)
    sourceSets["main"].kotlin.srcDir(rootProject.layout.buildDirectory.dir("generated/uniffi"))
}

dependencies {
    implementation("org.jetbrains.kotlinx:kotlinx-coroutines-core:1.8.0")
    // The JVM jar to compile against; the app packages JNA's Android AAR instead.
    compileOnly("net.java.dev.jna:jna:5.17.0")
}

tasks.named("compileKotlin") { dependsOn(":generateUniffiBindings") }
