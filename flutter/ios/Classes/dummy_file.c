// Intentionally empty: CocoaPods needs at least one source file in a pod. The plugin's code is
// the Rust static library that cargokit builds (see ../tokenkeeper.podspec), called from Dart.
