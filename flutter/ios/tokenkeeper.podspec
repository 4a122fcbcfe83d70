# iOS side of the tokenkeeper FFI plugin. Cargokit (../cargokit, vendored as flutter_rust_bridge
# 2.13.0's plugin template ships it) builds the Rust crate bindings/frb into a static library
# during the Xcode build (script phase below), for the SDK and architectures being built, and
# the library is force-loaded so that Dart finds its symbols at run time although no Swift or
# Objective-C code references them. Needs a Rust toolchain (rustup) on the Mac; cargokit adds
# the iOS targets.
#
# Prebuilt instead: when Frameworks/TokenKeeperFrb.xcframework exists (scripts/build-native.sh
# ios), it is vendored and force-loaded, and no Rust build runs.
prebuilt = File.exist?(File.join(__dir__, 'Frameworks', 'TokenKeeperFrb.xcframework'))

Pod::Spec.new do |s|
  s.name             = 'tokenkeeper'
  s.version          = '0.1.0'
  s.summary          = 'Keeps short-lived RTC access tokens alive (tokenkeeper Rust core).'
  s.homepage         = 'https://example.invalid/tokenkeeper'
  s.license          = { :type => 'Apache-2.0' }
  s.author           = { 'tokenkeeper' => 'tokenkeeper@example.invalid' }
  s.source           = { :path => '.' }
  s.source_files     = 'Classes/**/*'
  s.dependency 'Flutter'
  s.platform         = :ios, '12.0'
  s.swift_version    = '5.0'
  # Apple privacy manifest (the same file as the Swift package's).
  s.resource_bundles = { 'tokenkeeper_privacy' => ['Resources/PrivacyInfo.xcprivacy'] }

  if prebuilt
    s.vendored_frameworks = 'Frameworks/TokenKeeperFrb.xcframework'
    s.pod_target_xcconfig = { 'DEFINES_MODULE' => 'YES' }
    s.user_target_xcconfig = {
      'OTHER_LDFLAGS' => '-force_load "${PODS_XCFRAMEWORKS_BUILD_DIR}/tokenkeeper/libtokenkeeper_frb.a"',
    }
  else
    s.module_name = 'tokenkeeper_frb'
    s.script_phase = {
      :name => 'Build Rust library',
      # Arguments: the crate directory relative to this podspec, and the library name.
      :script => 'sh "$PODS_TARGET_SRCROOT/../cargokit/build_pod.sh" ../../bindings/frb tokenkeeper_frb',
      :execution_position => :before_compile,
      :input_files => ['${BUILT_PRODUCTS_DIR}/cargokit_phony'],
      # Tells Xcode that the library force-loaded below is produced by this step.
      :output_files => ['${PODS_CONFIGURATION_BUILD_DIR}/tokenkeeper_frb/libtokenkeeper_frb.a'],
    }
    s.pod_target_xcconfig = {
      'DEFINES_MODULE' => 'YES',
      # Flutter.framework has no i386 slice.
      'EXCLUDED_ARCHS[sdk=iphonesimulator*]' => 'i386',
      'OTHER_LDFLAGS' => '-force_load ${PODS_CONFIGURATION_BUILD_DIR}/tokenkeeper_frb/libtokenkeeper_frb.a',
    }
  end
end
