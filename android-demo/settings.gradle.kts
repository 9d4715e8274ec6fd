// The field app for Android Studio (Gradle is not run in CI: these machines have no Android SDK
// and no Google Maven; CI builds shared/ and compiles app/ with Maven, see pom.xml).
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}
dependencyResolutionManagement {
    repositories {
        google()
        mavenCentral()
    }
}
rootProject.name = "donghanh-field"
include(":shared", ":app")
