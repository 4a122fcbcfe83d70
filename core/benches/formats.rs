//! Token format benchmarks: Agora 007 mint/decode, ZEGO GCM mint/decrypt, JWT decode/verify.
//! Run: `cargo bench -p tokenkeeper --features mint --bench formats`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tokenkeeper::formats::{agora, jwt, zego};
use tokenkeeper::mint::agora::{RtcRole, build_rtc_token_with_uid};
use tokenkeeper::mint::zego::{Token04Mode, generate_token04};

const APP_ID: &str = "970CA35de60c44645bbae8a215061b33";
const CERT: &str = "5CFd2fd1755d40ecb72977518be15d3b";
const CHANNEL: &str = "7d72365eb983485397e3e3f9d460bdda";
const SECRET: &str = "fa94dd0f974cf2e293728a526b028271";

fn formats(c: &mut Criterion) {
    c.bench_function("agora007_mint_rtc_publisher", |b| {
        b.iter(|| {
            build_rtc_token_with_uid(
                black_box(APP_ID),
                black_box(CERT),
                black_box(CHANNEL),
                black_box(2_882_341_273),
                RtcRole::Publisher,
                3600,
                3600,
                black_box(1_700_000_000),
                black_box(12345),
            )
            .unwrap()
        })
    });
    let token007 = build_rtc_token_with_uid(
        APP_ID,
        CERT,
        CHANNEL,
        2_882_341_273,
        RtcRole::Publisher,
        3600,
        3600,
        1_700_000_000,
        1,
    )
    .unwrap();
    c.bench_function("agora007_decode", |b| {
        b.iter(|| agora::decode_007(black_box(&token007)).unwrap())
    });

    let iv = *b"k3j9x0q2m8zt";
    c.bench_function("zego04_gcm_mint", |b| {
        b.iter(|| {
            generate_token04(
                black_box(1_234_567_890),
                black_box("user1"),
                black_box(SECRET),
                3600,
                "",
                Token04Mode::Gcm,
                black_box(1_700_000_000),
                52853,
                &iv,
            )
            .unwrap()
        })
    });
    let token04 = generate_token04(
        1_234_567_890,
        "user1",
        SECRET,
        3600,
        "",
        Token04Mode::Gcm,
        1_700_000_000,
        52853,
        &iv,
    )
    .unwrap();
    c.bench_function("zego04_gcm_decrypt", |b| {
        b.iter(|| zego::decrypt_04(black_box(&token04), SECRET).unwrap())
    });

    let jwt_token = tokenkeeper::mint::jwt::sign_hs256(
        b"key",
        &serde_json::json!({"user_id": "alice", "room": "r1", "user_type": 1, "nbf": 1_700_000_000, "exp": 1_700_003_600}),
    )
    .unwrap();
    c.bench_function("jwt_decode", |b| {
        b.iter(|| jwt::decode(black_box(&jwt_token)).unwrap())
    });
    c.bench_function("jwt_verify_hs256", |b| {
        b.iter(|| {
            jwt::verify(
                black_box(&jwt_token),
                black_box(b"key"),
                jwt::JwtAlgorithm::Hs256,
                black_box(1_700_000_100),
                jwt::DEFAULT_LEEWAY_SECS,
            )
            .unwrap()
        })
    });
}

criterion_group!(benches, formats);
criterion_main!(benches);
