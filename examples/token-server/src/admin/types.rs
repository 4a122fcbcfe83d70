//! Request and response bodies of the admin endpoints. `Debug` redacts every credential.

use serde::{Deserialize, Serialize};

use crate::config::redact;

/// A created user and its API key (shown once; only its hash is stored).
#[derive(Clone, Serialize)]
pub struct CreatedUser {
    /// User id (string).
    pub id: String,
    /// Numeric uid (Agora).
    pub uid: u32,
    /// Display name.
    pub name: String,
    /// Bearer credential for the RTC token endpoint.
    pub api_key: String,
}

impl std::fmt::Debug for CreatedUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedUser")
            .field("id", &self.id)
            .field("uid", &self.uid)
            .field("name", &self.name)
            .field("api_key", &redact(&self.api_key))
            .finish()
    }
}

/// `POST /admin/users` body. Every field is optional. `Debug` redacts the key.
#[derive(Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// Default: `user-<random>`.
    #[serde(default)]
    pub id: Option<String>,
    /// Default: the next free uid from 1000.
    #[serde(default)]
    pub uid: Option<u32>,
    /// Default: the id.
    #[serde(default)]
    pub name: Option<String>,
    /// Default: random `tku_…`.
    #[serde(default)]
    pub api_key: Option<String>,
}

impl std::fmt::Debug for NewUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser")
            .field("id", &self.id)
            .field("uid", &self.uid)
            .field("name", &self.name)
            .field("api_key", &self.api_key.as_deref().map(redact))
            .finish()
    }
}

/// `POST /admin/streams` body.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewStream {
    /// Channel / room name.
    pub channel: String,
    /// Owner user id (the only one allowed to publish).
    pub owner: String,
}

/// `POST /admin/oauth/clients` body.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewClient {
    /// Client id.
    pub client_id: String,
    /// Secret of a confidential client; absent/`null` with `public: true` for a public client;
    /// absent otherwise: generated and returned.
    #[serde(default)]
    pub client_secret: Option<String>,
    /// A public client (no secret; must use PKCE). Default false.
    #[serde(default)]
    pub public: bool,
}

/// `POST /admin/oauth/clients` body: a [`NewClient`] and its redirect URIs.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClientBody {
    pub client_id: String,
    #[serde(default)]
    pub client_secret: Option<String>,
    #[serde(default)]
    pub public: bool,
    /// Redirect URIs the client may name in an authorization request (exact match).
    #[serde(default)]
    pub redirect_uris: Vec<String>,
}

impl ClientBody {
    pub fn split(self) -> (NewClient, Vec<String>) {
        (
            NewClient {
                client_id: self.client_id,
                client_secret: self.client_secret,
                public: self.public,
            },
            self.redirect_uris,
        )
    }
}

impl std::fmt::Debug for NewClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewClient")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_deref().map(redact))
            .field("public", &self.public)
            .finish()
    }
}

/// An authorization request, as a consent page would see it (`POST /admin/oauth/codes`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCode {
    /// The client the code is for (must exist).
    pub client_id: String,
    /// The user who "consented" (must exist and not be banned).
    pub user_id: String,
    /// Default `rtc`.
    #[serde(default)]
    pub scope: Option<String>,
    /// PKCE S256 challenge (base64url of sha256 of the verifier). Required for public clients.
    #[serde(default)]
    pub code_challenge: Option<String>,
}

/// `POST /admin/oauth/codes` body: a [`NewCode`] with the method and redirect URI.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CodeBody {
    pub client_id: String,
    pub user_id: String,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub code_challenge: Option<String>,
    /// `S256` (the default; `plain` is refused).
    #[serde(default)]
    pub code_challenge_method: Option<String>,
    /// One of the client's registered redirect URIs; the token request must then repeat it.
    #[serde(default)]
    pub redirect_uri: Option<String>,
}

/// What an authorization request adds to a [`NewCode`].
#[derive(Debug, Clone, Default)]
pub struct CodeOptions {
    /// `S256` (the default; `plain` is refused).
    pub code_challenge_method: Option<String>,
    /// One of the client's registered redirect URIs; the token request must then repeat it.
    pub redirect_uri: Option<String>,
}

impl CodeBody {
    pub fn split(self) -> (NewCode, CodeOptions) {
        (
            NewCode {
                client_id: self.client_id,
                user_id: self.user_id,
                scope: self.scope,
                code_challenge: self.code_challenge,
            },
            CodeOptions {
                code_challenge_method: self.code_challenge_method,
                redirect_uri: self.redirect_uri,
            },
        )
    }
}

/// `POST /admin/oauth/revoke` body: both absent revokes every live token family.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeFilter {
    /// Only this user's tokens.
    #[serde(default)]
    pub user_id: Option<String>,
    /// Only this client's tokens.
    #[serde(default)]
    pub client_id: Option<String>,
}
