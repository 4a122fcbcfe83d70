//! Token minting for the three RTC vendors, through `tokenkeeper::mint`.

use serde_json::json;

use crate::config::Secrets;

/// Which vendor format to mint (the core's vendor names: `agora`, `zego`, `jwt`).
pub use tokenkeeper::formats::Vendor;

/// Who the token is for.
#[derive(Debug, Clone)]
pub(crate) struct Grant<'a> {
    pub channel: &'a str,
    pub user_id: &'a str,
    pub uid: u32,
    /// Agora: mint for the user account (string) instead of the numeric uid.
    pub agora_account: bool,
    pub publisher: bool,
    pub ttl_secs: u32,
    pub now_secs: i64,
}

/// A minted token and its validity window (unix s).
pub(crate) struct Minted {
    pub token: String,
    pub issued_at: i64,
    pub expires_at: i64,
}

impl std::fmt::Debug for Minted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Minted")
            .field("token", &crate::config::redact(&self.token))
            .field("issued_at", &self.issued_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Mints a token of `vendor` for `grant`. Errors are configuration problems (bad secret shape).
pub(crate) fn mint(secrets: &Secrets, vendor: Vendor, grant: &Grant<'_>) -> Result<Minted, String> {
    let issued_at = grant.now_secs;
    let expires_at = issued_at.saturating_add(i64::from(grant.ttl_secs));
    let token = match vendor {
        Vendor::Agora => mint_agora(secrets, grant)?,
        Vendor::Zego => mint_zego(secrets, grant)?,
        Vendor::Jwt => {
            let claims = json!({
                "iss": "tokenkeeper-server",
                "sub": grant.user_id,
                "uid": grant.uid,
                "channel": grant.channel,
                "role": if grant.publisher { "publisher" } else { "subscriber" },
                "iat": issued_at,
                "nbf": issued_at,
                "exp": expires_at,
            });
            sign_hs256(secrets.jwt_key.as_bytes(), &claims)?
        }
    };
    Ok(Minted {
        token,
        issued_at,
        expires_at,
    })
}

/// Signs `claims` as an HS256 JWT.
pub(crate) fn sign_hs256(key: &[u8], claims: &serde_json::Value) -> Result<String, String> {
    tokenkeeper::mint::jwt::sign_hs256(key, claims).map_err(|e| e.to_string())
}

fn mint_agora(secrets: &Secrets, grant: &Grant<'_>) -> Result<String, String> {
    use tokenkeeper::mint::agora::{
        RtcRole, build_rtc_token_with_account, build_rtc_token_with_uid, random_salt,
    };
    let role = if grant.publisher {
        RtcRole::Publisher
    } else {
        RtcRole::Subscriber
    };
    let issue_ts = u32::try_from(grant.now_secs)
        .map_err(|_| "server clock is outside the Agora u32 range".to_owned())?;
    let (app_id, cert) = (&secrets.agora_app_id, &secrets.agora_app_certificate);
    let ttl = grant.ttl_secs;
    let r = if grant.agora_account {
        build_rtc_token_with_account(
            app_id,
            cert,
            grant.channel,
            grant.user_id,
            role,
            ttl,
            ttl,
            issue_ts,
            random_salt(),
        )
    } else {
        build_rtc_token_with_uid(
            app_id,
            cert,
            grant.channel,
            grant.uid,
            role,
            ttl,
            ttl,
            issue_ts,
            random_salt(),
        )
    };
    r.map_err(|e| e.to_string())
}

fn mint_zego(secrets: &Secrets, grant: &Grant<'_>) -> Result<String, String> {
    use tokenkeeper::mint::zego::{generate_token04_now, privilege_payload};
    let payload = privilege_payload(grant.channel, true, grant.publisher, None);
    generate_token04_now(
        secrets.zego_app_id,
        grant.user_id,
        &secrets.zego_server_secret,
        i64::from(grant.ttl_secs),
        &payload,
        grant.now_secs,
    )
    .map_err(|e| e.to_string())
}
