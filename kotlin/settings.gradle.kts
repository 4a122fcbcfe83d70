// Android library module `tokenkeeper` (Kotlin bindings of the tokenkeeper Rust SDK).
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

rootProject.name = "tokenkeeper"
