// Android library `dev.tokenkeeper:tokenkeeper` (AAR): the generated uniffi Kotlin
// (src/main/kotlin/dev/tokenkeeper/tokenkeeper.kt), the hand-written sugar beside it, and
// libtokenkeeper_uniffi.so for four ABIs, built from the Rust workspace (the parent directory) by
// cargo-ndk during the build. Coordinates, version and POM metadata: gradle.properties.
//
//   ./gradlew assembleRelease                    # AAR in build/outputs/aar/
//   ./gradlew publishReleasePublicationToLocalRepository   # Maven layout in build/repo/
//   ./gradlew assembleRelease -Ptokenkeeper.jniLibsDir=/path/to/jniLibs   # prebuilt .so files
//
// Sources: src/main/kotlin (shared with the JVM jar) and src/androidMain/kotlin (the Android
// lifecycle and network helpers, AAR only).
//
// Needs the Android SDK + NDK, a Rust toolchain with the four Android targets and cargo-ndk
// (README.md). Not run on the machine that wrote it (no Android SDK, no Gradle distribution).
import org.gradle.api.publish.maven.MavenPublication

plugins {
    id("com.android.library") version "8.7.3"
    id("org.jetbrains.kotlin.android") version "2.2.21"
    `maven-publish`
}

fun prop(name: String): String = providers.gradleProperty(name).get()

group = prop("GROUP")
version = prop("VERSION_NAME")

// minSdk 24 (Android 7.0): JNA 5.15 and later, needed for 16 KB page support, crash on older
// Android versions. The Rust library itself needs API 21.
val tokenkeeperMinSdk = 24
// The ABIs cargo-ndk builds (Rust targets aarch64-linux-android, armv7-linux-androideabi,
// x86_64-linux-android, i686-linux-android).
val rustAbis = listOf("arm64-v8a", "armeabi-v7a", "x86_64", "x86")
val workspaceDir = rootDir.parentFile
val rustJniLibs = layout.buildDirectory.dir("rustJniLibs")
val prebuiltJniLibs = providers.gradleProperty("tokenkeeper.jniLibsDir")

android {
    namespace = "dev.tokenkeeper"
    compileSdk = 35

    defaultConfig {
        minSdk = tokenkeeperMinSdk
        consumerProguardFiles("consumer-rules.pro")
    }

    sourceSets["main"].jniLibs.srcDir(
        if (prebuiltJniLibs.isPresent) file(prebuiltJniLibs.get()) else rustJniLibs.get().asFile
    )
    // Android-only Kotlin (the lifecycle and network helpers) beside the shared src/main/kotlin,
    // which the JVM jar of scripts/test-kotlin.sh is built from without it. The Kotlin Android
    // plugin compiles the Java source directories too.
    sourceSets["main"].java.srcDir("src/androidMain/kotlin")

    // The bindings use java.time (API 26+). Apps with minSdk 24-25 turn on core library
    // desugaring (README.md); turning it on here would force it on every app.
    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }

    buildTypes {
        release {
            isMinifyEnabled = false
        }
    }

    publishing {
        singleVariant("release") {
            withSourcesJar()
        }
    }
}

kotlin {
    jvmToolchain(17)
}

dependencies {
    // The generated bindings call the Rust library through JNA; the AAR flavour ships
    // libjnidispatch.so for every Android ABI (16 KB aligned from 5.17 on).
    api("net.java.dev.jna:jna:${prop("JNA_VERSION")}@aar")
    // api: the sugar's public signatures use Flow and StateFlow.
    api("org.jetbrains.kotlinx:kotlinx-coroutines-core:${prop("COROUTINES_VERSION")}")
    implementation("org.jetbrains.kotlinx:kotlinx-coroutines-android:${prop("COROUTINES_VERSION")}")
    // ProcessLifecycleOwner for src/androidMain (ForegroundSignal takes a Lifecycle: api).
    api("androidx.lifecycle:lifecycle-process:${prop("LIFECYCLE_VERSION")}")

    // src/test/kotlin runs on the JVM against the reference backend; scripts/test-kotlin.sh runs
    // it (with the host library) on machines without Android tooling.
    testImplementation("junit:junit:4.13.2")
    testImplementation("org.jetbrains.kotlin:kotlin-test-junit:2.2.21")
    testImplementation("net.java.dev.jna:jna:${prop("JNA_VERSION")}")
}

// libtokenkeeper_uniffi.so for every ABI, size-tuned (profile release-small) and linked with 16 KB
// page alignment (bindings/elf_page_size.rs). Skipped when -Ptokenkeeper.jniLibsDir is given.
val cargoNdkBuild by tasks.registering(Exec::class) {
    group = "build"
    description = "Builds libtokenkeeper_uniffi.so for $rustAbis with cargo-ndk."
    onlyIf { !prebuiltJniLibs.isPresent }
    workingDir = workspaceDir
    inputs.files(
        fileTree(workspaceDir.resolve("core/src")),
        fileTree(workspaceDir.resolve("bindings/uniffi/src")),
        workspaceDir.resolve("bindings/elf_page_size.rs"),
        workspaceDir.resolve("Cargo.lock"),
    )
    outputs.dir(rustJniLibs)
    commandLine(
        listOf("cargo", "ndk", "--platform", "$tokenkeeperMinSdk") +
            rustAbis.flatMap { listOf("-t", it) } +
            listOf(
                "-o", rustJniLibs.get().asFile.absolutePath,
                "build", "-p", "tokenkeeper-uniffi", "--lib", "--profile", "release-small", "--locked",
            )
    )
    doFirst {
        // cargo-ndk finds the NDK through ANDROID_NDK_HOME; use the one this build resolved.
        environment("ANDROID_NDK_HOME", android.ndkDirectory.absolutePath)
    }
}
tasks.named("preBuild") { dependsOn(cargoNdkBuild) }

publishing {
    publications {
        register<MavenPublication>("release") {
            groupId = prop("GROUP")
            artifactId = "tokenkeeper"
            version = prop("VERSION_NAME")
            afterEvaluate { from(components["release"]) }
            pom {
                name.set(prop("POM_NAME"))
                description.set(prop("POM_DESCRIPTION"))
                url.set(prop("POM_URL"))
                licenses {
                    license {
                        name.set(prop("POM_LICENSE_NAME"))
                        url.set(prop("POM_LICENSE_URL"))
                    }
                }
                scm {
                    url.set(prop("POM_URL"))
                }
            }
        }
    }
    repositories {
        // A Maven repository layout under build/repo, to inspect or to upload as it is.
        maven {
            name = "local"
            url = uri(layout.buildDirectory.dir("repo"))
        }
    }
}
