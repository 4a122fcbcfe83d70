//! `tokenkeeper inspect`: decode a token (Agora 007/006, ZEGO 04, JWT), optionally verify
//! it, and say when it expires.
//!
//! Exit codes: 0 decoded (and, with a key, verified); 1 decoded but the signature or
//! decryption check failed, or the token verifies but cannot be used (then `--json` adds a
//! `problem` string, e.g. a ZEGO app id out of range); 2 bad input (one line on stderr).

use std::io::Read;
use std::process::ExitCode;

use serde_json::{Value, json};
use tokenkeeper::clock::{Clock, SystemClock};
use tokenkeeper::formats::{self, FormatError, TokenDetails, TokenFormat, Vendor, agora, jwt};

/// Arguments of `tokenkeeper inspect`. `Debug` redacts the token and keys.
#[derive(clap::Args)]
pub struct InspectArgs {
    /// Print one JSON object (field names as in `shared/vectors`) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Agora app certificate (32 hex characters): verify the signature.
    #[arg(long, value_name = "C", conflicts_with_all = ["secret", "key"])]
    pub app_certificate: Option<String>,
    /// ZEGO ServerSecret (32 characters): decrypt and check the payload.
    #[arg(
        long,
        value_name = "S",
        conflicts_with = "key",
        allow_hyphen_values = true
    )]
    pub secret: Option<String>,
    /// JWT HMAC key: verify the signature (taken as given, even when it starts with `-`).
    #[arg(long, value_name = "K", allow_hyphen_values = true)]
    pub key: Option<String>,
    /// JWT algorithm the key is for (the token's header must match).
    #[arg(long, value_name = "ALG", default_value = "hs256", value_parser = ["hs256", "hs384", "hs512"])]
    pub alg: String,
    /// Channel name, to verify an Agora 006 token (its signature covers it). Taken as given,
    /// even when it starts with `-`.
    #[arg(long, value_name = "CH", allow_hyphen_values = true)]
    pub channel: Option<String>,
    /// Uid or account, to verify an Agora 006 token ("0" or "" for any uid). Taken as given,
    /// even when it starts with `-`.
    #[arg(long, value_name = "UID", allow_hyphen_values = true)]
    pub uid: Option<String>,
    /// Say in plain words if the token is not of this vendor's format.
    #[arg(long, value_name = "agora|zego|jwt")]
    pub expect: Option<Vendor>,
    /// Judge expiry at this unix time instead of now.
    #[arg(long, value_name = "UNIX")]
    pub now: Option<i64>,
    /// The token, or `-` to read it from stdin.
    #[arg(value_name = "TOKEN")]
    pub token: String,
}

/// `Some(<N chars>)` for a secret, never its value.
pub(crate) fn redacted(v: Option<&str>) -> Option<String> {
    v.map(|s| format!("<{} chars>", s.chars().count()))
}

impl std::fmt::Debug for InspectArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InspectArgs")
            .field("json", &self.json)
            .field(
                "app_certificate",
                &redacted(self.app_certificate.as_deref()),
            )
            .field("secret", &redacted(self.secret.as_deref()))
            .field("key", &redacted(self.key.as_deref()))
            .field("alg", &self.alg)
            .field("channel", &self.channel)
            .field("uid", &self.uid)
            .field("expect", &self.expect)
            .field("now", &self.now)
            .field("token", &redacted(Some(&self.token)))
            .finish()
    }
}

/// Bad input: one line on stderr, exit code 2.
fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("tokenkeeper inspect: {msg}");
    ExitCode::from(2)
}

fn read_token(arg: &str) -> Result<String, String> {
    if arg != "-" {
        return Ok(arg.trim().to_owned());
    }
    let mut s = String::new();
    std::io::stdin()
        .take(formats::MAX_TOKEN_LEN as u64 + 1)
        .read_to_string(&mut s)
        .map_err(|e| format!("could not read the token from stdin: {e}"))?;
    Ok(s.trim().to_owned())
}

/// "3 h 2 min", "45 s", "2 d 1 h".
fn human_duration(secs: i64) -> String {
    let s = secs.unsigned_abs();
    let (d, h, m, sec) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60, s % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{sec} s"),
        (0, 0, _) => format!("{m} min {sec} s"),
        (0, _, _) => format!("{h} h {m} min"),
        _ => format!("{d} d {h} h"),
    }
}

/// `YYYY-MM-DD HH:MM:SS UTC` for a unix time (proleptic Gregorian; days-from-civil inverse).
fn utc(ts: i64) -> String {
    let days = ts.div_euclid(86_400);
    let rem = ts.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Validity in plain words at `now`.
fn validity(info: &formats::TokenInfo, now: i64) -> String {
    if let Some(nbf) = info.not_before.filter(|&n| n > now) {
        return format!("NOT YET VALID: starts in {}", human_duration(nbf - now));
    }
    match info.expires_at {
        Some(exp) if exp <= now => format!("EXPIRED {} ago", human_duration(now - exp)),
        Some(exp) => format!("valid for another {}", human_duration(exp - now)),
        None => "no expiry in the token".to_owned(),
    }
}

pub fn run(args: InspectArgs) -> ExitCode {
    let token = match read_token(&args.token) {
        Ok(t) => t,
        Err(e) => return fail(e),
    };
    let checked = match args.expect {
        Some(vendor) => formats::expect_vendor(&token, vendor),
        None => formats::detect(&token),
    };
    let format = match checked {
        Ok(f) => f,
        Err(e) => return fail(e),
    };
    let wrong_key = |flag: &str, fits: &str| {
        fail(format!(
            "{flag} does not apply: this is {}; use {fits}",
            format.describe_plain()
        ))
    };
    match format {
        TokenFormat::Agora007 | TokenFormat::Agora006 => {
            if args.secret.is_some() {
                return wrong_key("--secret (a ZEGO ServerSecret)", "--app-certificate");
            }
            if args.key.is_some() {
                return wrong_key("--key (a JWT key)", "--app-certificate");
            }
        }
        TokenFormat::Zego04 => {
            if args.app_certificate.is_some() || args.key.is_some() {
                return wrong_key(
                    "--app-certificate/--key",
                    "--secret with the ZEGO ServerSecret",
                );
            }
        }
        TokenFormat::Jwt => {
            if args.app_certificate.is_some() || args.secret.is_some() {
                return wrong_key("--app-certificate/--secret", "--key with the HMAC key");
            }
        }
    }
    let info = match formats::describe(&token) {
        Ok(i) => i,
        Err(e) => return fail(e),
    };
    let now = args
        .now
        .unwrap_or_else(|| SystemClock::new().now_unix_ms().div_euclid(1000));

    // Verification: Some(true/false) when a key was given; a malformed key is bad input.
    let mut signature_valid: Option<bool> = None;
    let mut check_note: Option<String> = None;
    // Set when the key checks out but the token is unusable all the same.
    let mut problem: Option<String> = None;
    let mut decrypted: Option<Value> = None;
    let mut verdict = |r: Result<(), FormatError>| -> Result<(), ExitCode> {
        match r {
            Ok(()) => signature_valid = Some(true),
            Err(e @ (FormatError::InvalidKey { .. } | FormatError::JwtAlgNone)) => {
                return Err(fail(e));
            }
            Err(e @ FormatError::ZegoAppIdOutOfRange { .. }) => {
                signature_valid = Some(true);
                problem = Some(e.to_string());
            }
            Err(e) => {
                signature_valid = Some(false);
                check_note = Some(e.to_string());
            }
        }
        Ok(())
    };
    let outcome = match &info.details {
        TokenDetails::Agora007(t) => match &args.app_certificate {
            Some(c) => verdict(t.verify(c)),
            None => Ok(()),
        },
        TokenDetails::Agora006(t) => match (&args.app_certificate, &args.channel) {
            (Some(c), Some(ch)) => {
                let uid = match args.uid.as_deref() {
                    None | Some("0") => "",
                    Some(u) => u,
                };
                verdict(t.verify(c, ch, uid))
            }
            (Some(_), None) => {
                return fail(
                    "a 006 signature covers the channel and uid: pass --channel CH and --uid UID with --app-certificate",
                );
            }
            _ => Ok(()),
        },
        TokenDetails::Zego04(t) => match &args.secret {
            Some(s) => match t.decrypt(s) {
                Ok(p) => {
                    decrypted = Some(p.to_json());
                    verdict(Ok(()))
                }
                Err(e) => verdict(Err(e)),
            },
            None => Ok(()),
        },
        TokenDetails::Jwt(_) => match &args.key {
            Some(k) => {
                let alg = match args.alg.as_str() {
                    "hs384" => jwt::JwtAlgorithm::Hs384,
                    "hs512" => jwt::JwtAlgorithm::Hs512,
                    _ => jwt::JwtAlgorithm::Hs256,
                };
                verdict(jwt::verify_signature(&token, k.as_bytes(), alg).map(|_| ()))
            }
            None => Ok(()),
        },
        _ => Ok(()),
    };
    if let Err(code) = outcome {
        return code;
    }

    if args.json {
        let mut out = info.details.to_json();
        if let Some(d) = decrypted {
            out["decrypted"] = d;
        }
        out["format"] = json!(info.format.as_str());
        out["expires_at"] = json!(info.expires_at);
        out["signature_valid"] = json!(signature_valid);
        if let Some(p) = &problem {
            out["problem"] = json!(p);
        }
        println!("{out}");
    } else {
        print_human(
            &info,
            now,
            signature_valid,
            check_note.as_deref(),
            problem.as_deref(),
            decrypted.as_ref(),
        );
    }
    if signature_valid == Some(false) || problem.is_some() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn print_human(
    info: &formats::TokenInfo,
    now: i64,
    signature_valid: Option<bool>,
    note: Option<&str>,
    problem: Option<&str>,
    decrypted: Option<&Value>,
) {
    let row = |k: &str, v: &str| println!("{k:<12} {v}");
    row(
        "format",
        &format!("{} ({})", info.format, info.format.describe_plain()),
    );
    if let Some(a) = &info.app_id {
        row("app id", a);
    }
    if let Some(t) = info.issued_at {
        row("issued at", &format!("{} ({t})", utc(t)));
    }
    if let Some(t) = info.not_before {
        row("not before", &format!("{} ({t})", utc(t)));
    }
    if let Some(t) = info.expires_at {
        row("expires at", &format!("{} ({t})", utc(t)));
    }
    row("status", &validity(info, now));
    if let Some(c) = &info.channel {
        row("channel", c);
    }
    if let Some(u) = &info.user {
        row("user", u);
    }
    match &info.details {
        TokenDetails::Agora007(t) => {
            row("salt", &t.salt.to_string());
            for s in &t.services {
                let privs: Vec<String> = s
                    .privileges
                    .iter()
                    .map(|&(id, e)| {
                        let name =
                            agora::privilege_name(s.kind.service_type(), id).unwrap_or("unknown");
                        format!(
                            "{name}={}",
                            if e == 0 {
                                "token".to_owned()
                            } else {
                                format!("+{e}s")
                            }
                        )
                    })
                    .collect();
                row(
                    "service",
                    &format!(
                        "{} ({}): {}",
                        s.kind.name(),
                        s.kind.service_type(),
                        privs.join(", ")
                    ),
                );
            }
            if let Some(t) = t.unknown_service_type {
                row(
                    "note",
                    &format!(
                        "service type {t} is unknown to this tool: decoding stopped there, as official parsers do"
                    ),
                );
            }
        }
        TokenDetails::Agora006(t) => {
            for &(id, e) in &t.privileges {
                let name = agora::privilege_name_006(id).unwrap_or("unknown");
                let when = if e == 0 {
                    "no expiry".to_owned()
                } else {
                    utc(i64::from(e))
                };
                row("privilege", &format!("{name} until {when}"));
            }
        }
        TokenDetails::Zego04(t) => {
            row("variant", t.variant.as_str());
            if let Some(d) = decrypted {
                row("decrypted", &d.to_string());
            }
        }
        TokenDetails::Jwt(t) => {
            row("header", &t.header().to_string());
            row("claims", &t.claims().to_string());
        }
        _ => {}
    }
    let sig = match signature_valid {
        Some(true) => "valid".to_owned(),
        Some(false) => format!("INVALID: {}", note.unwrap_or("check failed")),
        None => {
            let hint = match info.format {
                TokenFormat::Agora007 => "pass --app-certificate to verify",
                TokenFormat::Agora006 => "pass --app-certificate, --channel and --uid to verify",
                TokenFormat::Zego04 => "pass --secret to decrypt and check",
                TokenFormat::Jwt => "pass --key to verify",
            };
            format!("not checked ({hint})")
        }
    };
    row("signature", &sig);
    if let Some(p) = problem {
        row("problem", p);
    }
}
