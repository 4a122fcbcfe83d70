// swift-tools-version:5.9
// Swift package of the tokenkeeper SDK. It sits at the repository root because SwiftPM resolves a
// package from its repository's root; the sources live in swift/:
//
//   .package(url: "https://example.invalid/tokenkeeper", from: "0.1.0")
//
// Swift 5 language mode, on purpose (tools version 5.9 compiles every target in Swift 5 mode,
// also with Swift 6 compilers): the bindings uniffi 0.32.2 generates for async foreign traits
// (our TokenSource, CredentialStore) fail to compile in Swift 6 mode (uniffi-rs#2929, fixed on
// uniffi's main branch after 0.32.0 but in no release yet). Move to Swift 6 mode once the
// bindings come from a uniffi release with that fix.
//
// The Rust library, target TokenKeeperFFI:
// - Apple platforms, releases: an XCFramework of static frameworks (iOS devices, iOS simulator,
//   macOS) downloaded from the release and verified by its checksum. scripts/release-swift.sh
//   builds and zips it on a Mac and stamps `releaseChecksum` below.
// - Apple platforms, development: TOKENKEEPER_LOCAL_XCFRAMEWORK=1 in the environment (or
//   `useLocalXCFramework = true`) uses swift/TokenKeeperFFI.xcframework as built by
//   scripts/build-xcframework.sh, nothing downloaded.
// - Linux: a system-library target over the generated C header, linked against
//   libtokenkeeper_uniffi.so from `cargo build -p tokenkeeper-uniffi --lib`:
//     swift test -Xlinker -L"$PWD/target/debug"    (with LD_LIBRARY_PATH="$PWD/target/debug")
//
// `version` and `repository` are stamped from Cargo.toml by scripts/version.py.
import Foundation
import PackageDescription

let version = "0.1.0"
let repository = "https://example.invalid/tokenkeeper"
let releaseChecksum = "0000000000000000000000000000000000000000000000000000000000000000"
let useLocalXCFramework = ProcessInfo.processInfo.environment["TOKENKEEPER_LOCAL_XCFRAMEWORK"] != nil

#if os(Linux)
let ffiTarget: Target = .systemLibrary(
    name: "TokenKeeperFFI",
    path: "swift/Sources/TokenKeeperFFI/include"
)
let ffiLinkerSettings: [LinkerSetting] = [.linkedLibrary("tokenkeeper_uniffi")]
#else
let ffiTarget: Target = useLocalXCFramework
    ? .binaryTarget(name: "TokenKeeperFFI", path: "swift/TokenKeeperFFI.xcframework")
    : .binaryTarget(
        name: "TokenKeeperFFI",
        url: "\(repository)/releases/download/v\(version)/TokenKeeperFFI.xcframework.zip",
        checksum: releaseChecksum
    )
let ffiLinkerSettings: [LinkerSetting] = []
#endif

let package = Package(
    name: "TokenKeeper",
    platforms: [.iOS(.v15), .macOS(.v12)],
    products: [
        .library(name: "TokenKeeper", targets: ["TokenKeeper"]),
    ],
    targets: [
        ffiTarget,
        .target(
            name: "TokenKeeper",
            dependencies: ["TokenKeeperFFI"],
            path: "swift/Sources/TokenKeeper",
            resources: [.copy("Resources/PrivacyInfo.xcprivacy")],
            linkerSettings: ffiLinkerSettings
        ),
        .testTarget(
            name: "TokenKeeperTests",
            dependencies: ["TokenKeeper"],
            path: "swift/Tests/TokenKeeperTests"
        ),
    ],
    swiftLanguageVersions: [.v5]
)
