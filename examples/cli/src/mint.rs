//! `tokenkeeper mint`: server-side builders. Prints the token alone on stdout; bad input
//! exits 2 with one line on stderr naming the setting and the fix.
//!
//! Without `--issue-ts/--salt/--ctime/--nonce/--iv` the clock and the OS CSPRNG are used;
//! with them the output is reproducible.

use std::io::Read;
use std::process::ExitCode;

use tokenkeeper::clock::{Clock, SystemClock};
use tokenkeeper::mint::{agora, jwt, zego};

use crate::inspect::redacted;

/// What to mint.
#[derive(Debug, clap::Subcommand)]
pub enum MintCommand {
    /// Agora AccessToken2 (007) tokens.
    #[command(subcommand)]
    Agora(AgoraCommand),
    /// A ZEGO Token04.
    Zego(ZegoArgs),
    /// An HS256 JWT with arbitrary claims.
    Jwt(JwtArgs),
}

/// Agora token kinds.
#[derive(Debug, clap::Subcommand)]
pub enum AgoraCommand {
    /// An RTC token (RtcTokenBuilder2 buildTokenWithUid / buildTokenWithUserAccount).
    Rtc(RtcArgs),
    /// Any 007 (or 006) token from a JSON spec shaped like `inputs` in
    /// shared/vectors/agora_official.json.
    Raw(RawArgs),
}

/// `mint agora rtc`. `Debug` redacts the certificate.
#[derive(clap::Args)]
pub struct RtcArgs {
    /// App id (32 hex characters).
    #[arg(long, value_name = "A")]
    pub app_id: String,
    /// App certificate (32 hex characters).
    #[arg(long, value_name = "C")]
    pub app_certificate: String,
    /// Channel name (taken as given, even when it starts with `-`).
    #[arg(long, value_name = "CH", allow_hyphen_values = true)]
    pub channel: String,
    /// Numeric uid (0 = any uid may join).
    #[arg(
        long,
        value_name = "N",
        conflicts_with = "account",
        required_unless_present = "account"
    )]
    pub uid: Option<u32>,
    /// String user account (taken as given, even when it starts with `-`).
    #[arg(long, value_name = "S", allow_hyphen_values = true)]
    pub account: Option<String>,
    /// Publisher (join + publish audio/video/data) or subscriber (join only).
    #[arg(long, value_name = "ROLE", value_parser = ["publisher", "subscriber"])]
    pub role: String,
    /// Token lifetime in seconds after the issue time.
    #[arg(long, value_name = "SECS")]
    pub token_expire: u32,
    /// Privilege lifetime in seconds after the issue time. Default 0, as the official
    /// `buildTokenWithUid(..., privilege_expire = 0)`: no privilege-level expiry, so the
    /// privileges last as long as the token.
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    pub privilege_expire: u32,
    /// Issue time, unix seconds (default: now).
    #[arg(long, value_name = "UNIX")]
    pub issue_ts: Option<u32>,
    /// Salt (default: random 1..=99999999).
    #[arg(long, value_name = "N")]
    pub salt: Option<u32>,
}

/// `mint agora raw`.
#[derive(Debug, clap::Args)]
pub struct RawArgs {
    /// JSON spec file, or `-` for stdin.
    #[arg(long, value_name = "FILE")]
    pub spec: String,
}

/// `mint zego`. `Debug` redacts the secret.
#[derive(clap::Args)]
pub struct ZegoArgs {
    /// Numeric AppID (1 to 4294967295: ZEGO AppIDs are 32-bit).
    #[arg(long, value_name = "N")]
    pub app_id: u64,
    /// User id (1 to 64 bytes; taken as given, even when it starts with `-`).
    #[arg(long, value_name = "U", allow_hyphen_values = true)]
    pub user_id: String,
    /// ServerSecret: exactly 32 characters, used as raw bytes.
    #[arg(long, value_name = "S", allow_hyphen_values = true)]
    pub secret: String,
    /// Lifetime in seconds (> 0).
    #[arg(long, value_name = "SECS", allow_negative_numbers = true)]
    pub effective_time: i64,
    /// Payload string, embedded verbatim (e.g. privilege JSON, or text starting with `-`);
    /// default empty.
    #[arg(
        long,
        value_name = "TEXT",
        default_value = "",
        allow_hyphen_values = true
    )]
    pub payload: String,
    /// Encryption: gcm (current) or cbc (legacy).
    #[arg(long, value_name = "MODE", default_value = "gcm", value_parser = ["gcm", "cbc"])]
    pub mode: String,
    /// Creation time, unix seconds (default: now).
    #[arg(long, value_name = "UNIX", allow_negative_numbers = true)]
    pub ctime: Option<i64>,
    /// JSON nonce (default: random).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub nonce: Option<i32>,
    /// IV / GCM nonce as text (12 bytes for gcm, 16 for cbc; default: random).
    #[arg(
        long,
        value_name = "TEXT",
        conflicts_with = "iv_hex",
        allow_hyphen_values = true
    )]
    pub iv: Option<String>,
    /// IV / GCM nonce as hex.
    #[arg(long, value_name = "HEX")]
    pub iv_hex: Option<String>,
}

/// `mint jwt`. `Debug` redacts the key.
#[derive(clap::Args)]
pub struct JwtArgs {
    /// HMAC key (shared secret; taken as given, even when it starts with `-`).
    #[arg(long, value_name = "K", allow_hyphen_values = true)]
    pub key: String,
    /// Claims as a JSON object, e.g. '{"room":"r1","exp":1700000000}'.
    #[arg(long, value_name = "JSON", allow_hyphen_values = true)]
    pub claims: String,
}

impl std::fmt::Debug for RtcArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RtcArgs")
            .field("app_id", &self.app_id)
            .field("app_certificate", &redacted(Some(&self.app_certificate)))
            .field("channel", &self.channel)
            .field("uid", &self.uid)
            .field("account", &self.account)
            .field("role", &self.role)
            .field("token_expire", &self.token_expire)
            .field("privilege_expire", &self.privilege_expire)
            .field("issue_ts", &self.issue_ts)
            .field("salt", &self.salt)
            .finish()
    }
}

impl std::fmt::Debug for ZegoArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZegoArgs")
            .field("app_id", &self.app_id)
            .field("user_id", &self.user_id)
            .field("secret", &redacted(Some(&self.secret)))
            .field("effective_time", &self.effective_time)
            .field("payload", &self.payload)
            .field("mode", &self.mode)
            .field("ctime", &self.ctime)
            .field("nonce", &self.nonce)
            .field("iv", &self.iv)
            .field("iv_hex", &self.iv_hex)
            .finish()
    }
}

impl std::fmt::Debug for JwtArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtArgs")
            .field("key", &redacted(Some(&self.key)))
            .field("claims", &self.claims)
            .finish()
    }
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("tokenkeeper mint: {msg}");
    ExitCode::from(2)
}

fn now_unix() -> i64 {
    SystemClock::new().now_unix_ms().div_euclid(1000)
}

pub fn run(command: MintCommand) -> ExitCode {
    let result = match command {
        MintCommand::Agora(AgoraCommand::Rtc(a)) => mint_rtc(a),
        MintCommand::Agora(AgoraCommand::Raw(a)) => mint_raw(a),
        MintCommand::Zego(a) => mint_zego(a),
        MintCommand::Jwt(a) => match serde_json::from_str::<serde_json::Value>(&a.claims) {
            Ok(claims) => jwt::sign_hs256(a.key.as_bytes(), &claims).map_err(|e| e.to_string()),
            Err(e) => Err(format!(
                "--claims is not valid JSON ({e}): pass an object, e.g. '{{\"sub\":\"alice\",\"exp\":1700000000}}'"
            )),
        },
    };
    match result {
        Ok(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(msg) => fail(msg),
    }
}

fn mint_rtc(a: RtcArgs) -> Result<String, String> {
    let role = if a.role == "publisher" {
        agora::RtcRole::Publisher
    } else {
        agora::RtcRole::Subscriber
    };
    let issue_ts = match a.issue_ts {
        Some(t) => t,
        None => u32::try_from(now_unix()).map_err(|_| {
            "the system clock is outside the u32 range Agora uses: pass --issue-ts".to_owned()
        })?,
    };
    let salt = a.salt.unwrap_or_else(agora::random_salt);
    let account = match (a.uid, a.account) {
        (Some(uid), _) => agora::uid_string(uid),
        (None, Some(acc)) => acc,
        (None, None) => return Err("pass --uid N or --account S".into()),
    };
    agora::build_rtc_token_with_account(
        &a.app_id,
        &a.app_certificate,
        &a.channel,
        &account,
        role,
        a.token_expire,
        a.privilege_expire,
        issue_ts,
        salt,
    )
    .map_err(|e| e.to_string())
}

fn mint_raw(a: RawArgs) -> Result<String, String> {
    let text = if a.spec == "-" {
        let mut s = String::new();
        std::io::stdin()
            .take(16 * 1024 * 1024)
            .read_to_string(&mut s)
            .map_err(|e| format!("could not read the spec from stdin: {e}"))?;
        s
    } else {
        std::fs::read_to_string(&a.spec)
            .map_err(|e| format!("could not read --spec {}: {e}", a.spec))?
    };
    let spec: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        format!(
            "the spec is not valid JSON ({e}): see `inputs` in shared/vectors/agora_official.json"
        )
    })?;
    agora::build_from_spec(&spec).map_err(|e| e.to_string())
}

fn mint_zego(a: ZegoArgs) -> Result<String, String> {
    let mode = if a.mode == "cbc" {
        zego::Token04Mode::Cbc
    } else {
        zego::Token04Mode::Gcm
    };
    let iv = match (a.iv, a.iv_hex) {
        (Some(t), _) => t.into_bytes(),
        (None, Some(h)) => hex_decode(&h)
            .ok_or_else(|| "--iv-hex must be an even number of hex digits".to_owned())?,
        (None, None) => zego::random_iv(mode),
    };
    let app_id = u32::try_from(a.app_id).map_err(|_| {
        format!(
            "--app-id {} is out of range: ZEGO AppIDs are 32-bit (1 to 4294967295) and ZEGO services refuse tokens carrying a larger one; use the numeric AppID from the ZEGO console",
            a.app_id
        )
    })?;
    zego::generate_token04(
        app_id,
        &a.user_id,
        &a.secret,
        a.effective_time,
        &a.payload,
        mode,
        a.ctime.unwrap_or_else(now_unix),
        a.nonce.unwrap_or_else(zego::random_nonce),
        &iv,
    )
    .map_err(|e| e.to_string())
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}
