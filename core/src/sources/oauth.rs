//! [`OAuthSource`]: OAuth 2.0 access tokens from a refresh token (RFC 6749 §6), with rotation.
//!
//! Built on the `oauth2` crate (request encoding, client authentication per RFC 6749 §2.3.1,
//! response parsing) over a redirect-free reqwest client. A thin wrapper around that client
//! records the HTTP status, `Retry-After` and `Date` of each answer, which `oauth2` does not
//! report, so that `5xx`/`429` are retried and the server's clock corrects skew.
//!
//! Guarantees:
//! - **Rotation is saved before use, and never lost.** When the server returns a new refresh
//!   token, it is saved through the configured [`CredentialStore`] *before* the access token is
//!   returned. A store that fails or stalls does not withhold the access token (the server
//!   already rotated): the refresh token stays in memory, the save is retried in the background
//!   and [`OAuthTokens::unsaved`] says so. (With a lifecycle `Keeper`, the new refresh token is
//!   also returned in [`FetchedToken::rotated`] for the session's store.)
//! - **The store is read before every refresh** (under its cross-process lock, see
//!   [`CredentialStore::lock`]), unless this source holds a newer, unsaved token: two processes
//!   sharing a [`FileStore`](crate::sources::FileStore) key never replay each other's consumed
//!   refresh token.
//! - **One refresh at a time.** Refresh tokens are single-use: two concurrent refreshes with
//!   the same one make the server revoke the family. All refreshes of one source are serialized,
//!   and an [`AuthProvider`] caller that waited for another's refresh gets its result.
//! - **A refresh is never abandoned half-way.** It runs in its own task: if the caller gives up
//!   (timeout, session closed), the answer is still received and the rotated token saved.
//!
//! Errors: `invalid_client` → [`SourceError::Misconfigured`] naming the client id that was sent
//! (the classic mismatch of a user-managed app's client id with a server-to-server secret, or
//! the reverse); `invalid_grant` → [`SourceError::ReauthRequired`], naming the client id and,
//! when the server says the token belongs to another client, that mix-up (a refresh signed with
//! the wrong app's credentials); network, `5xx`, `429` → [`SourceError::RetryLater`] with the
//! server's `Retry-After` (seconds or an HTTP date). Server text quoted in a message
//! (`error_description`, or a `reason`/`message` field as Zoom sends) has the refresh token and
//! client secret that were sent replaced by `[redacted]`, should it echo them. Answers larger
//! than [`MAX_RESPONSE_BYTES`] are refused without being buffered.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use oauth2::basic::{BasicClient, BasicErrorResponseType};
use oauth2::{
    AsyncHttpClient, AuthType, ClientId, ClientSecret, EndpointNotSet, EndpointSet,
    HttpClientError, RefreshToken, RequestTokenError, Scope, TokenResponse, TokenUrl,
};
use parking_lot::Mutex;
use sha2::{Digest, Sha256};

use crate::clock::{Clock, SystemClock};
use crate::lifecycle::CredentialSlot;
use crate::source::{Credentials, FetchRequest, FetchedToken, SourceError, Token, TokenSource};
use crate::sources::http::{
    AuthProvider, Capped, MAX_RESPONSE_BYTES, read_capped, retry_after, scrub,
};
use crate::store::CredentialStore;

/// Each call to the credential store gives up after 10 s (the save goes on in the background).
const STORE_TIMEOUT: Duration = Duration::from_secs(10);

/// How a confidential client authenticates to the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    /// HTTP Basic with the form-encoded id and secret (`client_secret_basic`, the default).
    #[default]
    Basic,
    /// `client_id` and `client_secret` in the form body (`client_secret_post`).
    Post,
}

/// Settings of an [`OAuthSource`]. `Debug` never shows the secret.
///
/// ```
/// use tokenkeeper::sources::{ClientAuth, OAuthConfig};
/// let public = OAuthConfig::public("https://auth.example.com/oauth/token", "mobile-app");
/// let confidential = OAuthConfig::confidential("https://auth.example.com/oauth/token", "backend", "s3cret")
///     .with_client_auth(ClientAuth::Post)
///     .with_scopes(["rtc"]);
/// assert!(!format!("{confidential:?}").contains("s3cret"));
/// # let _ = public;
/// ```
#[derive(Clone)]
pub struct OAuthConfig {
    /// The token endpoint, e.g. `https://auth.example.com/oauth/token`.
    pub token_url: String,
    /// The client id registered with the authorization server.
    pub client_id: String,
    /// The client secret; `None` for a public client (mobile or single-page app), which sends
    /// only its `client_id`.
    pub client_secret: Option<String>,
    /// How a confidential client authenticates. Default [`ClientAuth::Basic`].
    pub client_auth: ClientAuth,
    /// Scopes to request on refresh; empty (default) keeps the originally granted scope.
    pub scopes: Vec<String>,
}

impl OAuthConfig {
    /// A public client (no secret).
    pub fn public(token_url: &str, client_id: &str) -> Self {
        Self {
            token_url: token_url.to_owned(),
            client_id: client_id.to_owned(),
            client_secret: None,
            client_auth: ClientAuth::Basic,
            scopes: Vec::new(),
        }
    }

    /// A confidential client with a secret.
    pub fn confidential(token_url: &str, client_id: &str, client_secret: &str) -> Self {
        Self {
            client_secret: Some(client_secret.to_owned()),
            ..Self::public(token_url, client_id)
        }
    }

    /// Sets the client authentication method.
    pub fn with_client_auth(mut self, auth: ClientAuth) -> Self {
        self.client_auth = auth;
        self
    }

    /// Sets the scopes requested on refresh.
    pub fn with_scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }
}

impl fmt::Debug for OAuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthConfig")
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self
                    .client_secret
                    .as_ref()
                    .map(|s| format!("<redacted, len {}>", s.len())),
            )
            .field("client_auth", &self.client_auth)
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// The result of one refresh. `Debug` is redacted.
#[derive(Clone, Debug)]
pub struct OAuthTokens {
    /// The new access token.
    pub access_token: Token,
    /// Its lifetime, when the server said (`expires_in`).
    pub expires_in: Option<Duration>,
    /// The refresh token to use next time (the rotated one, or the same when the server does
    /// not rotate). Already saved when a store is configured.
    pub refresh_token: Credentials,
    /// Whether the server rotated the refresh token.
    pub rotated: bool,
    /// The rotated refresh token could not be saved yet (the store failed or did not answer):
    /// it is kept in memory, used by the next refresh and saved in the background.
    pub unsaved: bool,
    /// The server's clock (`Date` header) when it answered, unix ms (+500 ms, see
    /// [`crate::sources::HttpSourceBuilder::date_header`]).
    pub server_time_ms: Option<i64>,
}

type Client =
    BasicClient<EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// How many consumed refresh tokens are remembered (as hashes) to recognise a stale one.
const CONSUMED_MEMORY: usize = 16;
/// A cached access token is reused by [`AuthProvider::auth_header`] until this long before its
/// expiry (or half its lifetime, if that is shorter): 30 s.
pub const ACCESS_REUSE_MARGIN: Duration = Duration::from_secs(30);

/// A [`TokenSource`] (and [`AuthProvider`]) that refreshes OAuth 2.0 access tokens.
///
/// Which refresh token is sent: the session's credentials in the [`FetchRequest`] unless this
/// source already used them (then the engine missed a rotation); else the newest this source
/// holds (the last rotated one, or the one given with [`OAuthSource::with_refresh_token`]);
/// else the one in the store given with [`OAuthSource::with_store`]. With none, the fetch is
/// [`SourceError::ReauthRequired`]. Clones share the refresh token and the one-at-a-time lock.
///
/// ```no_run
/// # async fn demo() -> Result<(), tokenkeeper::source::SourceError> {
/// use std::sync::Arc;
/// use tokenkeeper::sources::{FileStore, OAuthConfig, OAuthSource};
///
/// let config = OAuthConfig::public("https://auth.example.com/oauth/token", "mobile-app");
/// let source = OAuthSource::new(config)?
///     .with_store(Arc::new(FileStore::new("/var/lib/myapp/credentials")), "oauth:alice");
/// let tokens = source.refresh().await?; // the rotated refresh token is on disk already
/// # let _ = tokens; Ok(()) }
/// ```
#[derive(Clone)]
pub struct OAuthSource {
    client: Arc<Client>,
    http: reqwest::Client,
    client_id: Arc<str>,
    /// Kept only to redact it from the server's error text.
    client_secret: Option<Credentials>,
    client_auth: &'static str,
    token_url: Arc<str>,
    scopes: Arc<[String]>,
    store: Option<(Arc<dyn CredentialStore>, Arc<str>)>,
    clock: Arc<dyn Clock>,
    shared: Arc<Shared>,
}

struct Shared {
    /// Held for the whole of a refresh: one at a time.
    refresh_lock: tokio::sync::Mutex<()>,
    /// The newest refresh token: in memory, and in the store if there is one.
    slot: Mutex<Arc<CredentialSlot>>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// sha256 of refresh tokens already sent to the server.
    consumed: VecDeque<[u8; 32]>,
    /// The last access token and until when to reuse it (device clock, unix ms).
    access: Option<(Token, i64)>,
    /// Bumped by every successful refresh.
    generation: u64,
}

fn digest(credentials: &Credentials) -> [u8; 32] {
    Sha256::digest(credentials.expose().as_bytes()).into()
}

impl fmt::Debug for OAuthSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthSource")
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .field("client_auth", &self.client_auth)
            .field(
                "store",
                &self.store.as_ref().map(|(store, key)| (store, key)),
            )
            .finish_non_exhaustive()
    }
}

/// What the token endpoint's HTTP layer said, which `oauth2` does not report.
#[derive(Debug, Clone, Default)]
struct Seen {
    status: u16,
    retry_after: Option<Duration>,
    date_ms: Option<i64>,
    /// A `reason` or `message` field of an error answer (Zoom sends `reason`).
    reason: Option<String>,
}

/// The reqwest client, recording status, `Retry-After`, `Date` and an error answer's reason,
/// and reading at most [`MAX_RESPONSE_BYTES`] of body.
struct Recording {
    http: reqwest::Client,
    /// Device wall clock when the request was made, for an HTTP-date `Retry-After` when the
    /// answer has no `Date`.
    now_ms: i64,
    seen: Arc<Mutex<Seen>>,
}

fn reqwest_error(e: reqwest::Error) -> HttpClientError<reqwest::Error> {
    HttpClientError::Reqwest(Box::new(e))
}

/// The `reason` (Zoom) or `message` field of a JSON error answer.
fn server_reason(body: &[u8]) -> Option<String> {
    let doc: serde_json::Value = serde_json::from_slice(body).ok()?;
    ["reason", "message"]
        .iter()
        .find_map(|k| doc.get(*k)?.as_str().map(str::to_owned))
}

impl<'c> AsyncHttpClient<'c> for Recording {
    type Error = HttpClientError<reqwest::Error>;
    type Future =
        Pin<Box<dyn Future<Output = Result<oauth2::HttpResponse, Self::Error>> + Send + 'c>>;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(async move {
            let request = reqwest::Request::try_from(request).map_err(reqwest_error)?;
            let mut response = self.http.execute(request).await.map_err(reqwest_error)?;
            let status = response.status();
            let headers = std::mem::take(response.headers_mut());
            let body = read_capped(&mut response, MAX_RESPONSE_BYTES)
                .await
                .map_err(|e| match e {
                    Capped::Transport(e) => reqwest_error(e),
                    Capped::TooLarge => HttpClientError::Other(format!(
                        "the answer is larger than {MAX_RESPONSE_BYTES} bytes"
                    )),
                })?;
            *self.seen.lock() = Seen {
                status: status.as_u16(),
                retry_after: retry_after(&headers, self.now_ms),
                // `Date` has whole seconds: the true time lies in [date, date + 1 s).
                date_ms: headers
                    .get(reqwest::header::DATE)
                    .and_then(|d| d.to_str().ok())
                    .and_then(|d| chrono::DateTime::parse_from_rfc2822(d.trim()).ok())
                    .map(|t| t.timestamp_millis() + 500),
                reason: (!status.is_success())
                    .then(|| server_reason(&body))
                    .flatten(),
            };
            let mut answer = oauth2::HttpResponse::new(body);
            *answer.status_mut() = status;
            *answer.headers_mut() = headers;
            Ok(answer)
        })
    }
}

impl OAuthSource {
    /// A source for `config`.
    ///
    /// # Errors
    /// [`SourceError::Misconfigured`] when `token_url` is not an http(s) URL, the client id is
    /// empty, or the HTTP client cannot be created.
    pub fn new(config: OAuthConfig) -> Result<Self, SourceError> {
        let bad = |setting: &str, message: String| SourceError::Misconfigured {
            setting: setting.to_owned(),
            message,
        };
        let url = url::Url::parse(&config.token_url).map_err(|e| {
            bad(
                "token_url",
                format!("`{}` is not a URL: {e}", config.token_url),
            )
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad(
                "token_url",
                format!("scheme `{}` is not http(s)", url.scheme()),
            ));
        }
        if config.client_id.is_empty() {
            return Err(bad("client_id", "the client id is empty".into()));
        }
        let token_url = format!(
            "{}://{}{}{}",
            url.scheme(),
            url.host_str().unwrap_or_default(),
            url.port().map(|p| format!(":{p}")).unwrap_or_default(),
            url.path()
        );
        let mut client = BasicClient::new(ClientId::new(config.client_id.clone()))
            .set_token_uri(TokenUrl::from_url(url))
            .set_auth_type(match config.client_auth {
                ClientAuth::Basic => AuthType::BasicAuth,
                ClientAuth::Post => AuthType::RequestBody,
            });
        let client_auth = match (&config.client_secret, config.client_auth) {
            (None, _) => "public client",
            (Some(_), ClientAuth::Basic) => "client_secret_basic",
            (Some(_), ClientAuth::Post) => "client_secret_post",
        };
        if let Some(secret) = &config.client_secret {
            client = client.set_client_secret(ClientSecret::new(secret.clone()));
        }
        // No redirects: a token request must not be replayed elsewhere (oauth2's advice).
        let clock: Arc<dyn Clock> = Arc::new(SystemClock::new());
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("tokenkeeper/", env!("CARGO_PKG_VERSION")))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| bad("client", format!("cannot create the HTTP client: {e}")))?;
        Ok(Self {
            client: Arc::new(client),
            http,
            client_id: config.client_id.into(),
            client_secret: config.client_secret.map(Credentials::new),
            client_auth,
            token_url: token_url.into(),
            scopes: config.scopes.into(),
            store: None,
            clock: clock.clone(),
            shared: Arc::new(Shared {
                refresh_lock: tokio::sync::Mutex::new(()),
                slot: Mutex::new(CredentialSlot::new(None, None, clock, None)),
                state: Mutex::new(State::default()),
            }),
        })
    }

    /// A new slot with the current store and clock, keeping the refresh token held in memory.
    fn rebuild_slot(&self) {
        let (store, key) = match &self.store {
            Some((store, key)) => (Some(store.clone()), Some(key.as_ref())),
            None => (None, None),
        };
        let slot = CredentialSlot::new(key, store, self.clock.clone(), None);
        let mut current = self.shared.slot.lock();
        if let Some(held) = current.current() {
            slot.rotate(held);
        }
        *current = slot;
    }

    fn slot(&self) -> Arc<CredentialSlot> {
        self.shared.slot.lock().clone()
    }

    /// Persists rotated refresh tokens under `key` in `store` (before returning the access
    /// token), and reads the refresh token from there when nothing newer is known.
    pub fn with_store(mut self, store: Arc<dyn CredentialStore>, key: &str) -> Self {
        self.store = Some((store, key.into()));
        self.rebuild_slot();
        self
    }

    /// Starts from `refresh_token` (e.g. just received with the authorization code) instead of
    /// the store's; its rotation is saved to the store as usual.
    pub fn with_refresh_token(self, refresh_token: Credentials) -> Self {
        self.slot().rotate(refresh_token);
        self
    }

    /// The clock used to decide when a cached access token is too old to reuse.
    /// Default [`SystemClock`].
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self.rebuild_slot();
        self
    }

    /// The client id this source authenticates with.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// Refreshes now with the newest known refresh token: saves the rotated one, then returns
    /// the new tokens.
    ///
    /// # Errors
    /// See the [module docs](self). A failed save is not an error: see
    /// [`OAuthTokens::unsaved`].
    pub async fn refresh(&self) -> Result<OAuthTokens, SourceError> {
        self.refresh_detached(None, None).await
    }

    /// Runs [`Self::refresh_locked`] in its own task, so that a caller giving up (the engine's
    /// timeout, a dropped session) does not lose a refresh token the server already rotated.
    async fn refresh_detached(
        &self,
        offered: Option<Credentials>,
        seen_generation: Option<u64>,
    ) -> Result<OAuthTokens, SourceError> {
        let this = self.clone();
        let task = tokio::spawn(async move { this.refresh_locked(offered, seen_generation).await });
        match task.await {
            Ok(result) => result,
            Err(e) => Err(SourceError::network(format!(
                "the OAuth refresh task failed: {e}"
            ))),
        }
    }

    /// One refresh under the lock. With `seen_generation`, a refresh someone else completed
    /// since then is reused instead (single flight for [`AuthProvider`] callers).
    async fn refresh_locked(
        &self,
        offered: Option<Credentials>,
        seen_generation: Option<u64>,
    ) -> Result<OAuthTokens, SourceError> {
        let _guard = self.shared.refresh_lock.lock().await;
        let slot = self.slot();
        if let Some(seen) = seen_generation {
            let state = self.shared.state.lock();
            if state.generation > seen {
                if let (Some((token, _)), Some(latest)) = (&state.access, slot.current()) {
                    return Ok(OAuthTokens {
                        access_token: token.clone(),
                        expires_in: None,
                        refresh_token: latest,
                        rotated: false,
                        unsaved: false,
                        server_time_ms: None,
                    });
                }
            }
        }
        // Unless this source already sent it (the engine missed a rotation), an offered token
        // is the newest: the one the engine holds, or a fresh sign-in.
        let offered = offered.filter(|o| !self.shared.state.lock().consumed.contains(&digest(o)));
        let held = match &offered {
            Some(_) => None,
            // Reads the store again under its lock, unless we hold a newer unsaved token.
            None => Some(slot.begin_fetch(STORE_TIMEOUT).await.map_err(|e| {
                SourceError::RetryLater {
                    kind: crate::source::RetryKind::Network,
                    retry_after: None,
                    message: format!("cannot read the refresh token: {}", e.message),
                }
            })?),
        };
        let refresh_token = match offered.or_else(|| held.as_ref()?.credentials.clone()) {
            Some(t) if !self.shared.state.lock().consumed.contains(&digest(&t)) => t,
            _ => return Err(self.no_refresh_token()),
        };
        let (result, seen) = self.exchange(&refresh_token).await;
        let response = result?;
        let rotated = response
            .refresh_token()
            .map(|rt| Credentials::new(rt.secret().as_str()))
            .filter(|rt| rt != &refresh_token);
        let next = rotated.clone().unwrap_or_else(|| refresh_token.clone());
        if rotated.is_some() {
            let mut state = self.shared.state.lock();
            state.consumed.push_back(digest(&refresh_token));
            while state.consumed.len() > CONSUMED_MEMORY {
                state.consumed.pop_front();
            }
        }
        slot.rotate(next.clone());
        let unsaved = !slot.persist(STORE_TIMEOUT, STORE_TIMEOUT, held).await;
        if unsaved {
            tracing::warn!(
                client_id = %self.client_id,
                "the rotated refresh token could not be saved yet; kept in memory, retrying the save"
            );
        }
        let access_token = Token::new(response.access_token().secret().as_str());
        let expires_in = response.expires_in();
        let now = self.clock.now_unix_ms();
        let reuse_until = match expires_in {
            Some(lifetime) => {
                let margin = ACCESS_REUSE_MARGIN.min(lifetime / 2);
                now.saturating_add(millis(lifetime.saturating_sub(margin)))
            }
            None => now, // unknown lifetime: never reuse
        };
        {
            let mut state = self.shared.state.lock();
            state.access = Some((access_token.clone(), reuse_until));
            state.generation += 1;
        }
        tracing::debug!(
            token_url = %self.token_url,
            client_id = %self.client_id,
            rotated = rotated.is_some(),
            "OAuth refresh succeeded"
        );
        Ok(OAuthTokens {
            access_token,
            expires_in,
            refresh_token: next,
            rotated: rotated.is_some(),
            unsaved,
            server_time_ms: seen.date_ms,
        })
    }

    fn no_refresh_token(&self) -> SourceError {
        SourceError::ReauthRequired {
            message: format!(
                "no refresh token for client `{}`{}; sign the user in (authorization code flow) \
                 first",
                self.client_id,
                self.store
                    .as_ref()
                    .map(|(_, key)| format!(" under `{key}`"))
                    .unwrap_or_default()
            ),
        }
    }

    async fn exchange(
        &self,
        refresh_token: &Credentials,
    ) -> (Result<oauth2::basic::BasicTokenResponse, SourceError>, Seen) {
        let recording = Recording {
            http: self.http.clone(),
            now_ms: self.clock.now_unix_ms(),
            seen: Arc::default(),
        };
        let token = RefreshToken::new(refresh_token.expose().to_owned());
        let mut request = self.client.exchange_refresh_token(&token);
        for scope in self.scopes.iter() {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let result = request.request_async(&recording).await;
        let seen = recording.seen.lock().clone();
        let result = result.map_err(|e| self.classify(e, &seen, refresh_token));
        (result, seen)
    }

    fn classify(
        &self,
        error: RequestTokenError<
            HttpClientError<reqwest::Error>,
            oauth2::basic::BasicErrorResponse,
        >,
        seen: &Seen,
        refresh_token: &Credentials,
    ) -> SourceError {
        let url = &self.token_url;
        let id = &self.client_id;
        // A server may echo what it was sent; its text goes into messages and logs.
        let secrets = [
            refresh_token.expose(),
            self.client_secret.as_ref().map_or("", Credentials::expose),
        ];
        let said = |text: &str, max_chars| clip(&scrub(text, &secrets), max_chars);
        match error {
            RequestTokenError::ServerResponse(response) => {
                let told: Vec<String> = [response.error_description(), seen.reason.as_ref()]
                    .into_iter()
                    .flatten()
                    .map(|d| said(d, 240))
                    .collect();
                let description = if told.is_empty() {
                    String::new()
                } else {
                    format!(": {}", told.join("; "))
                };
                match response.error() {
                    BasicErrorResponseType::InvalidClient => SourceError::Misconfigured {
                        setting: "client_id".into(),
                        message: format!(
                            "{url} rejected client id `{id}` ({}) with invalid_client{description}. \
                             The client id and secret do not belong together: typically the id of a \
                             user-managed (public) app sent with a server-to-server secret, or the \
                             reverse. Use the id and secret of the same OAuth app, and the \
                             authentication method it was registered with",
                            self.client_auth
                        ),
                    },
                    BasicErrorResponseType::InvalidGrant => {
                        let other_client = told.iter().any(|t| t.to_lowercase().contains("client"));
                        let message = if other_client {
                            format!(
                                "{url} refused the refresh token sent with client id `{id}` \
                                 (invalid_grant{description}): it was issued to another OAuth app. \
                                 Refresh with the client id and secret of the app that issued it \
                                 (a refresh signed with another app's credentials is refused), or \
                                 sign the user in again through `{id}`"
                            )
                        } else {
                            format!(
                                "{url} refused the refresh token sent with client id `{id}` \
                                 (invalid_grant{description}): it expired, was revoked or was \
                                 already used, so sign the user in again; if it was issued to \
                                 another OAuth app, refresh with that app's client id and secret"
                            )
                        };
                        SourceError::ReauthRequired { message }
                    }
                    BasicErrorResponseType::UnauthorizedClient => SourceError::Misconfigured {
                        setting: "client_id".into(),
                        message: format!(
                            "{url}: client `{id}` may not use the refresh_token grant \
                             (unauthorized_client{description}); enable it for this client"
                        ),
                    },
                    BasicErrorResponseType::InvalidScope => SourceError::Misconfigured {
                        setting: "scopes".into(),
                        message: format!(
                            "{url}: the requested scopes were refused (invalid_scope{description}); \
                             request at most the scopes originally granted"
                        ),
                    },
                    BasicErrorResponseType::InvalidRequest
                    | BasicErrorResponseType::UnsupportedGrantType => SourceError::Misconfigured {
                        setting: "token_url".into(),
                        message: format!(
                            "{url} refused the request ({}{description}); check that token_url is \
                             the server's OAuth token endpoint",
                            response.error()
                        ),
                    },
                    BasicErrorResponseType::Extension(code) => {
                        let status = if seen.status >= 400 { seen.status } else { 503 };
                        let retry = matches!(
                            code.as_str(),
                            "temporarily_unavailable" | "server_error" | "slow_down"
                        );
                        let status = if retry && status < 500 && status != 429 {
                            503
                        } else {
                            status
                        };
                        SourceError::from_http_status(
                            status,
                            seen.retry_after,
                            "token_url",
                            format!("{url} answered {}{description}", said(code, 60)),
                        )
                    }
                }
            }
            RequestTokenError::Request(HttpClientError::Reqwest(e)) => {
                let cause = std::error::Error::source(&*e)
                    .map(|s| clip(&s.to_string(), 160))
                    .unwrap_or_else(|| "no detail".into());
                if e.is_timeout() {
                    SourceError::timeout(format!("{url} did not answer in time; will retry"))
                } else {
                    SourceError::network(format!(
                        "cannot reach {url} ({cause}); check the network and token_url"
                    ))
                }
            }
            RequestTokenError::Request(HttpClientError::Other(too_large)) => {
                SourceError::Misconfigured {
                    setting: "token_url".into(),
                    message: format!(
                        "{url}: {too_large}; check that token_url is the OAuth token endpoint"
                    ),
                }
            }
            RequestTokenError::Request(other) => {
                SourceError::network(format!("request to {url} failed: {other}"))
            }
            RequestTokenError::Parse(_, _) | RequestTokenError::Other(_) => {
                if seen.status == 200 || seen.status == 0 {
                    SourceError::Misconfigured {
                        setting: "token_url".into(),
                        message: format!(
                            "{url} did not answer with an OAuth token response; check that \
                             token_url is the token endpoint"
                        ),
                    }
                } else {
                    SourceError::from_http_status(
                        seen.status,
                        seen.retry_after,
                        "token_url",
                        format!("{url} answered without an OAuth error body"),
                    )
                }
            }
        }
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn clip(text: &str, max_chars: usize) -> String {
    let mut out: String = text
        .chars()
        .filter(|c| !c.is_control())
        .take(max_chars)
        .collect();
    if text.chars().count() > max_chars {
        out.push('…');
    }
    out
}

#[async_trait::async_trait]
impl TokenSource for OAuthSource {
    async fn fetch(&self, request: FetchRequest) -> Result<FetchedToken, SourceError> {
        let tokens = self.refresh_detached(request.credentials, None).await?;
        let mut fetched = FetchedToken::new(tokens.access_token);
        fetched.expires_in = tokens.expires_in;
        fetched.server_time_ms = tokens.server_time_ms;
        if tokens.rotated {
            fetched.rotated = Some(tokens.refresh_token);
        }
        Ok(fetched)
    }
}

#[async_trait::async_trait]
impl AuthProvider for OAuthSource {
    /// `Bearer <access token>`: the cached one while it is fresh, else a refresh.
    async fn auth_header(&self, refresh: bool) -> Result<Token, SourceError> {
        let generation = {
            let state = self.shared.state.lock();
            if !refresh {
                if let Some((token, until)) = &state.access {
                    if self.clock.now_unix_ms() < *until {
                        return Ok(Token::new(format!("Bearer {}", token.expose())));
                    }
                }
            }
            state.generation
        };
        let tokens = self.refresh_detached(None, Some(generation)).await?;
        Ok(Token::new(format!(
            "Bearer {}",
            tokens.access_token.expose()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_debug_hides_the_secret() {
        let config = OAuthConfig::confidential("https://a.example/t", "backend", "TOPSECRET");
        let shown = format!("{config:?}");
        assert!(!shown.contains("TOPSECRET"), "{shown}");
        assert!(shown.contains("<redacted, len 9>"), "{shown}");
    }

    #[test]
    fn bad_token_url_names_the_setting() {
        let err = OAuthSource::new(OAuthConfig::public("ftp://a.example/t", "app")).unwrap_err();
        assert!(
            matches!(&err, SourceError::Misconfigured { setting, .. } if setting == "token_url"),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn no_refresh_token_means_sign_in_first() {
        let source = OAuthSource::new(OAuthConfig::public("http://127.0.0.1:9/t", "app")).unwrap();
        let err = source.refresh().await.unwrap_err();
        assert!(
            matches!(&err, SourceError::ReauthRequired { message } if message.contains("client `app`")),
            "{err:?}"
        );
    }
}
