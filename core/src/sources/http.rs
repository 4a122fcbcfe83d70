//! [`HttpSource`]: fetches tokens from an app backend over HTTP(S) (reqwest + rustls).
//!
//! It is configured, not coded: the endpoint, method, headers, an auth header the host supplies
//! (and refreshes on `401`), a request body built from the session, and where the token and its
//! lifetime sit in the response (JSON pointers), so an existing backend works as it is.
//!
//! ```no_run
//! use std::sync::Arc;
//! use tokenkeeper::sources::{HttpSource, ResponseMapping, StaticAuth};
//!
//! // A backend answering {"success":true,"data":{"token":"…","expiresAt":"2026-…Z"}}
//! let source = HttpSource::builder("https://api.example.com/rtc/token")
//!     .json_body(serde_json::json!({
//!         "channelName": "{channel}",
//!         "uid": "{user:int}",
//!         "role": "{role}",
//!     }))
//!     .auth(Arc::new(StaticAuth::bearer("user-session-token")))
//!     .response(ResponseMapping::under("/data"))
//!     .build()?;
//! # Ok::<(), tokenkeeper::source::SourceError>(())
//! ```
//!
//! # Errors
//!
//! Answers map to what the engine should do (see [`SourceError`]):
//!
//! | answer | error |
//! |---|---|
//! | connection failure, timeout, 408, 5xx | `RetryLater` (network / timeout / server), with the answer's `Retry-After` |
//! | 429 | `RetryLater` (rate limited), with the answer's `Retry-After` (seconds or HTTP date) |
//!
//! A `Retry-After` is passed on as is; the engine decides how far to honour it: always when no
//! valid token is left to protect, and never past the current token's expiry while it is valid
//! (see [`crate::lifecycle::Policy`], "Deadline-aware retry").
//! | 401 | the auth provider is asked for a fresh header and the request is sent once more; a second 401 is `ReauthRequired` |
//! | 403 | `Forbidden` (banned user, not the owner…) |
//! | 404, 410 | `Revoked` (stream ended, channel gone) |
//! | other 4xx | `Misconfigured { setting: "endpoint" }` (the request does not fit the backend) |
//! | 2xx without a token where the mapping says | `Misconfigured { setting: "response_mapping" }` |
//!
//! Every message names the endpoint (scheme, host and path; never the query, which may carry
//! keys) and the backend's own `error`/`message` when it sent one; never a token or header value:
//! a token, credential or header value the backend echoes in its text shows as `[redacted]`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::clock::{Clock, SystemClock};
use crate::source::{
    FetchRequest, FetchedToken, RetryKind, SessionSpec, SourceError, Token, TokenSource,
};

/// Largest response body read: 1 MiB.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;
/// Default timeout of a request when the engine gives none: 10 s.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Supplies the value of an auth header (e.g. `Bearer <session token>`) for each request.
///
/// The host implements it over its own login state; [`StaticAuth`] is a fixed value and
/// [`crate::sources::OAuthSource`] supplies OAuth access tokens. When the backend answers `401`,
/// the source calls [`AuthProvider::auth_header`] again with `refresh: true` and retries the
/// request once with the new value.
#[async_trait::async_trait]
pub trait AuthProvider: Send + Sync + fmt::Debug {
    /// The full header value. `refresh` is `true` after the backend refused the previous value:
    /// return a new one (or an error such as [`SourceError::ReauthRequired`]).
    async fn auth_header(&self, refresh: bool) -> Result<Token, SourceError>;
}

/// A fixed auth header value. `Debug` shows at most a prefix and the length.
///
/// ```
/// use tokenkeeper::sources::StaticAuth;
/// let auth = StaticAuth::bearer("abc123");
/// assert_eq!(format!("{auth:?}"), "StaticAuth(Token(len 13))");
/// ```
#[derive(Debug, Clone)]
pub struct StaticAuth(Token);

impl StaticAuth {
    /// Sends `value` verbatim.
    pub fn new(value: impl Into<String>) -> Self {
        Self(Token::new(value.into()))
    }

    /// Sends `Bearer <credential>`.
    pub fn bearer(credential: &str) -> Self {
        Self::new(format!("Bearer {credential}"))
    }
}

#[async_trait::async_trait]
impl AuthProvider for StaticAuth {
    async fn auth_header(&self, refresh: bool) -> Result<Token, SourceError> {
        if refresh {
            return Err(SourceError::ReauthRequired {
                message: "the backend refused the fixed auth header; supply a new credential"
                    .into(),
            });
        }
        Ok(self.0.clone())
    }
}

// ---------------------------------------------------------------------------------------------
// Templates

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Field(Field),
}

/// A value taken from the request. `{user:int}` renders as a JSON number.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Field {
    Channel,
    User { int: bool },
    Role,
    Reason,
    Attempt,
    Param(String),
}

const PLACEHOLDERS: &str =
    "{channel}, {user} (or {uid}), {user:int}, {role}, {reason}, {attempt}, {param.NAME}";

fn parse_template(template: &str) -> Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                literal.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                literal.push('}');
            }
            '{' => {
                let mut name = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(c) => name.push(c),
                        None => return Err(format!("unclosed `{{{name}` in `{template}`")),
                    }
                }
                let field = match name.as_str() {
                    "channel" => Field::Channel,
                    "user" | "uid" => Field::User { int: false },
                    "user:int" | "uid:int" => Field::User { int: true },
                    "role" => Field::Role,
                    "reason" => Field::Reason,
                    "attempt" => Field::Attempt,
                    _ => match name.strip_prefix("param.") {
                        Some(p) if !p.is_empty() => Field::Param(p.to_owned()),
                        _ => {
                            return Err(format!(
                                "unknown placeholder `{{{name}}}`; known: {PLACEHOLDERS}"
                            ));
                        }
                    },
                };
                if !literal.is_empty() {
                    parts.push(Part::Literal(std::mem::take(&mut literal)));
                }
                parts.push(Part::Field(field));
            }
            c => literal.push(c),
        }
    }
    if !literal.is_empty() {
        parts.push(Part::Literal(literal));
    }
    Ok(parts)
}

fn field_text(field: &Field, request: &FetchRequest) -> Option<String> {
    let spec: &SessionSpec = &request.session;
    match field {
        Field::Channel => Some(spec.channel.clone()),
        Field::User { .. } => Some(spec.user.clone()),
        Field::Role => spec.role.clone(),
        Field::Reason => Some(request.reason.as_str().to_owned()),
        Field::Attempt => Some(request.attempt.to_string()),
        Field::Param(name) => spec.params.get(name).cloned(),
    }
}

fn render_text(parts: &[Part], request: &FetchRequest, encode: bool) -> String {
    let mut out = String::new();
    for part in parts {
        match part {
            Part::Literal(text) => out.push_str(text),
            Part::Field(field) => {
                let value = field_text(field, request).unwrap_or_default();
                if encode {
                    percent_encode(&value, &mut out);
                } else {
                    out.push_str(&value);
                }
            }
        }
    }
    out
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(value: &str, out: &mut String) {
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

/// A JSON body template: strings are templates; a string that is exactly one placeholder keeps
/// the value's type (`"{user:int}"` → number, `"{role}"` without a role → `null`).
#[derive(Debug, Clone)]
enum JsonTemplate {
    Value(Value),
    Text(Vec<Part>),
    Array(Vec<JsonTemplate>),
    Object(Vec<(String, JsonTemplate)>),
}

impl JsonTemplate {
    fn parse(value: &Value) -> Result<Self, String> {
        Ok(match value {
            Value::String(s) if s.contains('{') || s.contains('}') => {
                Self::Text(parse_template(s)?)
            }
            Value::Array(items) => {
                Self::Array(items.iter().map(Self::parse).collect::<Result<_, _>>()?)
            }
            Value::Object(map) => Self::Object(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), Self::parse(v)?)))
                    .collect::<Result<_, String>>()?,
            ),
            other => Self::Value(other.clone()),
        })
    }

    fn render(&self, request: &FetchRequest) -> Result<Value, SourceError> {
        Ok(match self {
            Self::Value(v) => v.clone(),
            Self::Text(parts) => match parts.as_slice() {
                [Part::Field(field)] => match (field, field_text(field, request)) {
                    (_, None) => Value::Null,
                    (Field::User { int: true }, Some(user)) => {
                        let n: u64 = user.parse().map_err(|_| SourceError::Misconfigured {
                            setting: "body".into(),
                            message: format!(
                                "the body template asks for `{{user:int}}` but user `{user}` is \
                                 not an unsigned integer; use `{{user}}` for text ids"
                            ),
                        })?;
                        Value::from(n)
                    }
                    (Field::Attempt, Some(_)) => Value::from(request.attempt),
                    (_, Some(text)) => Value::String(text),
                },
                _ => Value::String(render_text(parts, request, false)),
            },
            Self::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|t| t.render(request))
                    .collect::<Result<_, _>>()?,
            ),
            Self::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(k, t)| Ok((k.clone(), t.render(request)?)))
                    .collect::<Result<_, SourceError>>()?,
            ),
        })
    }
}

#[derive(Debug, Clone)]
enum Body {
    None,
    Json(JsonTemplate),
    Text {
        parts: Vec<Part>,
        content_type: String,
    },
}

// ---------------------------------------------------------------------------------------------
// Response mapping

/// Where the token and its lifetime are in a successful response, as JSON pointers
/// (RFC 6901: `/data/token`; `""` is the whole document).
///
/// Each field has a list of candidates, tried in order; the first present wins. The default
/// looks for conventional names at the top level:
///
/// | field | default candidates | accepted values |
/// |---|---|---|
/// | token | `/token`, `/accessToken`, `/access_token` | string (required) |
/// | expires at | `/expiresAt`, `/expires_at`, `/expireAt` | ISO-8601 / RFC 3339 string (no offset = UTC), unix seconds or milliseconds (number or digits) |
/// | expires in | `/expiresIn`, `/expires_in` | seconds (number or digits) |
/// | issued at | `/issuedAt`, `/issued_at` | like expires at |
/// | server time | `/serverTime`, `/server_time` | like expires at |
///
/// Numbers below 10¹¹ are unix **seconds** (fractions allowed), larger ones milliseconds.
/// Without a server time in the body, the HTTP `Date` header is used (see
/// [`HttpSourceBuilder::date_header`]).
///
/// ```
/// use tokenkeeper::sources::ResponseMapping;
/// // {"success":true,"data":{"token":"…","expiresAt":"2026-01-01T00:00:00Z"}}
/// let seed = ResponseMapping::under("/data");
/// // Same, spelled out:
/// let explicit = ResponseMapping::new().token("/data/token").expires_at("/data/expiresAt");
/// # let _ = (seed, explicit);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseMapping {
    token: Vec<String>,
    expires_at: Vec<String>,
    expires_in: Vec<String>,
    issued_at: Vec<String>,
    server_time: Vec<String>,
    plain_text: bool,
}

impl Default for ResponseMapping {
    fn default() -> Self {
        Self::under("")
    }
}

impl ResponseMapping {
    /// The default candidates at the top level (see the type's docs).
    pub fn new() -> Self {
        Self::default()
    }

    /// The default candidates under `prefix`, e.g. `/data` for `{"data":{"token":…}}`.
    pub fn under(prefix: &str) -> Self {
        let prefix = prefix.trim_end_matches('/');
        let names = |names: &[&str]| names.iter().map(|n| format!("{prefix}/{n}")).collect();
        Self {
            token: names(&["token", "accessToken", "access_token"]),
            expires_at: names(&["expiresAt", "expires_at", "expireAt"]),
            expires_in: names(&["expiresIn", "expires_in"]),
            issued_at: names(&["issuedAt", "issued_at"]),
            server_time: names(&["serverTime", "server_time"]),
            plain_text: false,
        }
    }

    /// The whole body (trimmed) is the token; lifetime comes from the token itself and `Date`.
    pub fn plain_text() -> Self {
        Self {
            plain_text: true,
            ..Self::under("")
        }
    }

    /// The token is at `pointer` (replaces the candidates).
    pub fn token(mut self, pointer: &str) -> Self {
        self.token = vec![pointer.to_owned()];
        self
    }

    /// The absolute expiry is at `pointer` (replaces the candidates).
    pub fn expires_at(mut self, pointer: &str) -> Self {
        self.expires_at = vec![pointer.to_owned()];
        self
    }

    /// The lifetime in seconds is at `pointer` (replaces the candidates).
    pub fn expires_in(mut self, pointer: &str) -> Self {
        self.expires_in = vec![pointer.to_owned()];
        self
    }

    /// The issue time is at `pointer` (replaces the candidates).
    pub fn issued_at(mut self, pointer: &str) -> Self {
        self.issued_at = vec![pointer.to_owned()];
        self
    }

    /// The server's current time is at `pointer` (replaces the candidates).
    pub fn server_time(mut self, pointer: &str) -> Self {
        self.server_time = vec![pointer.to_owned()];
        self
    }

    fn pointers(&self) -> impl Iterator<Item = &String> {
        self.token
            .iter()
            .chain(&self.expires_at)
            .chain(&self.expires_in)
            .chain(&self.issued_at)
            .chain(&self.server_time)
    }
}

/// Values at or above this are milliseconds, below it seconds (10¹¹ s is the year 5138).
const MILLIS_THRESHOLD: f64 = 1e11;

/// Parses an instant (see [`ResponseMapping`]) into unix milliseconds.
fn parse_instant(value: &Value) -> Result<i64, String> {
    let from_number = |n: f64| -> Result<i64, String> {
        if !n.is_finite() || !(0.0..=1e16).contains(&n) {
            return Err(format!("{n} is not a plausible unix time"));
        }
        let ms = if n < MILLIS_THRESHOLD { n * 1000.0 } else { n };
        // In range by the check above.
        #[allow(clippy::cast_possible_truncation)]
        Ok(ms.round() as i64)
    };
    match value {
        Value::Number(n) => from_number(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => {
            let s = s.trim();
            if let Ok(n) = s.parse::<f64>() {
                return from_number(n);
            }
            if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
                return Ok(t.timestamp_millis());
            }
            for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
                if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, format) {
                    return Ok(t.and_utc().timestamp_millis());
                }
            }
            Err(format!(
                "`{}` is not an ISO-8601 time or a unix time",
                clip(s, 40)
            ))
        }
        other => Err(format!("expected a time, found {}", kind_of(other))),
    }
}

fn parse_seconds(value: &Value) -> Result<Duration, String> {
    let n = match value {
        Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
        Value::String(s) => s.trim().parse::<f64>().unwrap_or(f64::NAN),
        other => return Err(format!("expected seconds, found {}", kind_of(other))),
    };
    if n.is_finite() && (0.0..=1e10).contains(&n) {
        Ok(Duration::from_secs_f64(n))
    } else {
        Err(format!(
            "`{}` is not a number of seconds",
            clip(&value.to_string(), 40)
        ))
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn clip(text: &str, max_chars: usize) -> String {
    let mut out: String = text
        .chars()
        .filter(|c| !c.is_control())
        .take(max_chars)
        .collect::<String>();
    if text.chars().count() > max_chars {
        out.push('…');
    }
    out
}

/// Parses an HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`) into unix milliseconds.
fn parse_http_date(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc2822(text.trim())
        .ok()
        .map(|t| t.timestamp_millis())
}

/// `Retry-After` as seconds or as an HTTP date (measured from the answer's `Date`, else from
/// `now_ms`); `None` when absent or unreadable. Shared with the OAuth source.
pub(crate) fn retry_after(headers: &HeaderMap, now_ms: i64) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = parse_http_date(value)?;
    let now = headers
        .get(reqwest::header::DATE)
        .and_then(|d| d.to_str().ok())
        .and_then(parse_http_date)
        .unwrap_or(now_ms);
    Some(Duration::from_millis(
        at.saturating_sub(now).max(0).unsigned_abs(),
    ))
}

/// Why a capped body read failed.
pub(crate) enum Capped {
    Transport(reqwest::Error),
    TooLarge,
}

/// Reads a response body, refusing more than `max` bytes (never buffering past the cap).
pub(crate) async fn read_capped(
    response: &mut reqwest::Response,
    max: usize,
) -> Result<Vec<u8>, Capped> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(Capped::Transport)? {
        if body.len() + chunk.len() > max {
            return Err(Capped::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

// ---------------------------------------------------------------------------------------------
// The source

/// Builds an [`HttpSource`]. Defaults: `POST`, a JSON body
/// `{"channel": "{channel}", "user": "{user}", "role": "{role}"}`, no auth,
/// [`ResponseMapping::default`], the `Date` header as server time, the engine's fetch timeout.
///
/// `Debug` shows the endpoint without its query and the header names, never their values.
pub struct HttpSourceBuilder {
    endpoint: String,
    method: Method,
    headers: Vec<(String, String)>,
    auth: Option<(String, Arc<dyn AuthProvider>)>,
    body: Option<BodySpec>,
    mapping: ResponseMapping,
    client: Option<reqwest::Client>,
    clock: Option<Arc<dyn Clock>>,
    date_header: bool,
}

impl fmt::Debug for HttpSourceBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpSourceBuilder")
            .field("endpoint", &redact_url_text(&self.endpoint))
            .field("method", &self.method)
            .field(
                "headers",
                &self
                    .headers
                    .iter()
                    .map(|(name, _)| name)
                    .collect::<Vec<_>>(),
            )
            .field("auth", &self.auth)
            .field("body", &self.body)
            .field("mapping", &self.mapping)
            .field("date_header", &self.date_header)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
enum BodySpec {
    None,
    Json(Value),
    Text {
        template: String,
        content_type: String,
    },
}

impl HttpSourceBuilder {
    /// Sets the method (default `POST`). Use `GET` with placeholders in the endpoint's query.
    pub fn method(mut self, method: Method) -> Self {
        self.method = method;
        self
    }

    /// Adds a fixed header (e.g. an API version or a static API key). Values are marked
    /// sensitive and never shown.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sends the header `Authorization` with the value `provider` supplies for each request.
    pub fn auth(self, provider: Arc<dyn AuthProvider>) -> Self {
        self.auth_header("authorization", provider)
    }

    /// Like [`HttpSourceBuilder::auth`] with another header name (e.g. `X-Session`).
    pub fn auth_header(mut self, name: &str, provider: Arc<dyn AuthProvider>) -> Self {
        self.auth = Some((name.to_owned(), provider));
        self
    }

    /// Sends a JSON body built from `template`: placeholders in strings are replaced (see
    /// [`HttpSource::builder`]).
    pub fn json_body(mut self, template: Value) -> Self {
        self.body = Some(BodySpec::Json(template));
        self
    }

    /// Sends a text body built from `template` with the given content type, e.g.
    /// `("channel={channel}&uid={user}", "application/x-www-form-urlencoded")`. Values are
    /// inserted as they are (not escaped).
    pub fn text_body(mut self, template: &str, content_type: &str) -> Self {
        self.body = Some(BodySpec::Text {
            template: template.to_owned(),
            content_type: content_type.to_owned(),
        });
        self
    }

    /// Sends no body (default for `GET`).
    pub fn no_body(mut self) -> Self {
        self.body = Some(BodySpec::None);
        self
    }

    /// Sets where the token and lifetime are in the response.
    pub fn response(mut self, mapping: ResponseMapping) -> Self {
        self.mapping = mapping;
        self
    }

    /// Uses this reqwest client (shared connection pool, proxies, custom roots).
    pub fn client(mut self, client: reqwest::Client) -> Self {
        self.client = Some(client);
        self
    }

    /// The clock used to turn an HTTP-date `Retry-After` into a wait. Default [`SystemClock`].
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Whether to report the `Date` header as the server time when the body has none
    /// (default `true`). `Date` has whole seconds; half a second is added as the best estimate,
    /// and an `Age` header (an answer from a cache) is added to it.
    pub fn date_header(mut self, enabled: bool) -> Self {
        self.date_header = enabled;
        self
    }

    /// Checks the configuration and builds the source.
    ///
    /// # Errors
    /// [`SourceError::Misconfigured`] naming the setting: a URL that does not parse (with sample
    /// values in its placeholders), an unknown placeholder, a bad header name or value, a JSON
    /// pointer not starting with `/`.
    pub fn build(self) -> Result<HttpSource, SourceError> {
        let bad = |setting: &str, message: String| SourceError::Misconfigured {
            setting: setting.to_owned(),
            message,
        };
        let endpoint = parse_template(&self.endpoint).map_err(|m| bad("endpoint", m))?;
        let sample = FetchRequest {
            reason: crate::source::FetchReason::Initial,
            session: Arc::new(SessionSpec::new("channel", "1").with_role("publisher")),
            attempt: 1,
            credentials: None,
            previous: None,
            timeout: DEFAULT_TIMEOUT,
        };
        let sample_url = render_text(&endpoint, &sample, true);
        let parsed = url::Url::parse(&sample_url).map_err(|e| {
            bad(
                "endpoint",
                format!("`{}` is not a URL: {e}", redact_url_text(&self.endpoint)),
            )
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(bad(
                "endpoint",
                format!("scheme `{}` is not http(s)", parsed.scheme()),
            ));
        }
        let display = format!(
            "{} {}://{}{}",
            self.method,
            parsed.scheme(),
            parsed.host_str().unwrap_or_default(),
            parsed.port().map(|p| format!(":{p}")).unwrap_or_default()
        ) + parsed.path();

        let mut headers = HeaderMap::new();
        for (name, value) in &self.headers {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                bad(
                    "headers",
                    format!("`{}` is not a header name", clip(name, 40)),
                )
            })?;
            let mut value = HeaderValue::from_str(value).map_err(|_| {
                bad(
                    "headers",
                    format!("the value of `{name}` has characters HTTP forbids"),
                )
            })?;
            value.set_sensitive(true);
            headers.append(name, value);
        }
        let auth = match self.auth {
            Some((name, provider)) => Some((
                HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                    bad(
                        "auth_header",
                        format!("`{}` is not a header name", clip(&name, 40)),
                    )
                })?,
                provider,
            )),
            None => None,
        };
        let body = match self.body {
            Some(BodySpec::None) => Body::None,
            Some(BodySpec::Json(v)) => {
                Body::Json(JsonTemplate::parse(&v).map_err(|m| bad("body", m))?)
            }
            Some(BodySpec::Text {
                template,
                content_type,
            }) => Body::Text {
                parts: parse_template(&template).map_err(|m| bad("body", m))?,
                content_type,
            },
            None if self.method == Method::GET || self.method == Method::HEAD => Body::None,
            None => Body::Json(
                JsonTemplate::parse(&serde_json::json!({
                    "channel": "{channel}", "user": "{user}", "role": "{role}"
                }))
                .map_err(|m| bad("body", m))?,
            ),
        };
        for pointer in self.mapping.pointers() {
            if !pointer.is_empty() && !pointer.starts_with('/') {
                return Err(bad(
                    "response_mapping",
                    format!("`{pointer}` is not a JSON pointer: it must start with `/`"),
                ));
            }
        }
        let client = match self.client {
            Some(client) => client,
            None => reqwest::Client::builder()
                .user_agent(concat!("tokenkeeper/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| bad("client", format!("cannot create the HTTP client: {e}")))?,
        };
        Ok(HttpSource {
            inner: Arc::new(Inner {
                endpoint,
                display,
                method: self.method,
                headers,
                auth,
                body,
                mapping: self.mapping,
                client,
                clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock::new())),
                date_header: self.date_header,
            }),
        })
    }
}

/// Shows a URL template without its query (which may hold keys).
fn redact_url_text(url: &str) -> String {
    clip(url.split('?').next().unwrap_or_default(), 120)
}

/// A [`TokenSource`] that asks an HTTP endpoint for each token. Cheap to clone.
///
/// Build it with [`HttpSource::builder`]. Placeholders usable in the endpoint (values
/// percent-encoded), in JSON body strings and in text bodies: `{channel}`, `{user}` (alias
/// `{uid}`), `{user:int}` (a JSON number), `{role}` (`null` when the session has none),
/// `{reason}` (`initial`, `scheduled`, …), `{attempt}`, `{param.NAME}` (from
/// [`SessionSpec::params`]); `{{` and `}}` are literal braces.
#[derive(Clone)]
pub struct HttpSource {
    inner: Arc<Inner>,
}

struct Inner {
    endpoint: Vec<Part>,
    /// `METHOD scheme://host:port/path`, for messages.
    display: String,
    method: Method,
    headers: HeaderMap,
    auth: Option<(HeaderName, Arc<dyn AuthProvider>)>,
    body: Body,
    mapping: ResponseMapping,
    client: reqwest::Client,
    clock: Arc<dyn Clock>,
    date_header: bool,
}

impl fmt::Debug for HttpSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        f.debug_struct("HttpSource")
            .field("endpoint", &i.display)
            .field(
                "headers",
                &i.headers.keys().map(HeaderName::as_str).collect::<Vec<_>>(),
            )
            .field("auth", &i.auth.as_ref().map(|(name, p)| (name.as_str(), p)))
            .field("mapping", &i.mapping)
            .finish_non_exhaustive()
    }
}

/// A response read in full.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl HttpSource {
    /// Starts configuring a source for `endpoint`, e.g.
    /// `https://api.example.com/rtc/token` or `https://api.example.com/token?channel={channel}`.
    pub fn builder(endpoint: &str) -> HttpSourceBuilder {
        HttpSourceBuilder {
            endpoint: endpoint.to_owned(),
            method: Method::POST,
            headers: Vec::new(),
            auth: None,
            body: None,
            mapping: ResponseMapping::default(),
            client: None,
            clock: None,
            date_header: true,
        }
    }

    /// `METHOD scheme://host/path` of the endpoint (no query), as used in messages.
    pub fn endpoint(&self) -> &str {
        &self.inner.display
    }

    async fn send(
        &self,
        request: &FetchRequest,
        auth: Option<&Token>,
    ) -> Result<Answer, SourceError> {
        let i = &self.inner;
        let url = render_text(&i.endpoint, request, true);
        let timeout = if request.timeout.is_zero() {
            DEFAULT_TIMEOUT
        } else {
            request.timeout
        };
        let mut builder = i
            .client
            .request(i.method.clone(), &url)
            .headers(i.headers.clone())
            .timeout(timeout);
        if let (Some((name, _)), Some(value)) = (&i.auth, auth) {
            let mut value =
                HeaderValue::from_str(value.expose()).map_err(|_| SourceError::Misconfigured {
                    setting: "auth_header".into(),
                    message: format!(
                        "the auth provider returned a `{name}` value with characters HTTP forbids"
                    ),
                })?;
            value.set_sensitive(true);
            builder = builder.header(name.clone(), value);
        }
        builder = match &i.body {
            Body::None => builder,
            Body::Json(template) => builder
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(template.render(request)?.to_string()),
            Body::Text {
                parts,
                content_type,
            } => builder
                .header(reqwest::header::CONTENT_TYPE, content_type.as_str())
                .body(render_text(parts, request, false)),
        };
        let mut response = builder.send().await.map_err(|e| self.transport_error(&e))?;
        let status = response.status();
        let headers = std::mem::take(response.headers_mut());
        let body = read_capped(&mut response, MAX_RESPONSE_BYTES)
            .await
            .map_err(|e| match e {
                Capped::Transport(e) => self.transport_error(&e),
                Capped::TooLarge => SourceError::Misconfigured {
                    setting: "endpoint".into(),
                    message: format!(
                        "{} answered more than {MAX_RESPONSE_BYTES} bytes; is this the token \
                         endpoint?",
                        i.display
                    ),
                },
            })?;
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    fn transport_error(&self, e: &reqwest::Error) -> SourceError {
        // `without_url` keeps the query (which may hold keys) out of the message.
        let cause = match std::error::Error::source(e) {
            Some(source) => format!("{source}"),
            None => "no detail".to_owned(),
        };
        let endpoint = &self.inner.display;
        if e.is_timeout() {
            SourceError::timeout(format!("{endpoint} did not answer in time; will retry"))
        } else if e.is_connect() {
            SourceError::network(format!(
                "cannot connect to {endpoint} ({}); check the network and the endpoint",
                clip(&cause, 160)
            ))
        } else {
            SourceError::network(format!(
                "request to {endpoint} failed ({}); will retry",
                clip(&cause, 160)
            ))
        }
    }

    fn server_time_from_date(&self, headers: &HeaderMap) -> Option<i64> {
        if !self.inner.date_header {
            return None;
        }
        let date = headers.get(reqwest::header::DATE)?.to_str().ok()?;
        // A cache's stored answer keeps the origin's `Date`; `Age` says how old it is
        // (RFC 9111 §5.1), so the server's clock now is their sum.
        let age_ms = headers
            .get(reqwest::header::AGE)
            .and_then(|a| a.to_str().ok())
            .and_then(|a| a.trim().parse::<i64>().ok())
            .unwrap_or(0)
            .max(0)
            .saturating_mul(1000);
        // `Date` has whole seconds: the true time lies in [date, date + 1 s).
        parse_http_date(date).map(|ms| ms.saturating_add(age_ms).saturating_add(500))
    }

    fn retry_after(&self, headers: &HeaderMap) -> Option<Duration> {
        retry_after(headers, self.inner.clock.now_unix_ms())
    }

    /// Every secret this request carried or could be answered with: the token being replaced,
    /// the credentials, the auth header value (and its credential after the scheme) and the
    /// fixed header values. A backend that echoes one in its error text must not put it in
    /// the message (which is logged and shown to users).
    fn secrets<'a>(&'a self, request: &'a FetchRequest, auth: Option<&'a Token>) -> Vec<&'a str> {
        let mut secrets: Vec<&str> = Vec::new();
        secrets.extend(request.previous.as_ref().map(Token::expose));
        secrets.extend(request.credentials.as_ref().map(|c| c.expose()));
        if let Some(auth) = auth {
            secrets.push(auth.expose());
            secrets.extend(
                auth.expose()
                    .split_once(' ')
                    .map(|(_, credential)| credential),
            );
        }
        secrets.extend(self.inner.headers.values().filter_map(|v| v.to_str().ok()));
        secrets
    }

    fn error_for_status(&self, answer: &Answer, secrets: &[&str]) -> SourceError {
        let endpoint = &self.inner.display;
        let status = answer.status.as_u16();
        let said = backend_says(&answer.body, secrets);
        let fix = match status {
            401 => "the backend did not accept the auth header; sign the user in again",
            403 => "the backend refuses this user, channel or role",
            404 | 410 => "the stream or channel is gone (or the endpoint path is wrong)",
            429 => "rate limited; will retry after the wait it asked for",
            408 | 425 | 500..=599 => "will retry",
            _ => {
                "the request does not match what the backend expects; check the body template \
                  and headers"
            }
        };
        let message = match said {
            Some(said) => format!("{endpoint} said \"{said}\"; {fix}"),
            None => format!("{endpoint}: {fix}"),
        };
        // Passed on for every status: the engine decides how far to honour it (see `Policy`,
        // "Deadline-aware retry": never past the current token's expiry).
        let retry_after = self.retry_after(&answer.headers);
        SourceError::from_http_status(status, retry_after, "endpoint", message)
    }

    fn map_success(&self, answer: &Answer, secrets: &[&str]) -> Result<FetchedToken, SourceError> {
        let i = &self.inner;
        let endpoint = &i.display;
        let mapping_error = |message: String| SourceError::Misconfigured {
            setting: "response_mapping".into(),
            message,
        };
        let date_time = self.server_time_from_date(&answer.headers);
        if i.mapping.plain_text {
            let text = String::from_utf8_lossy(&answer.body);
            let text = text.trim();
            if text.is_empty() {
                return Err(bad_token(format!("{endpoint} answered an empty body")));
            }
            let mut fetched = FetchedToken::new(Token::new(text));
            fetched.server_time_ms = date_time;
            return Ok(fetched);
        }
        let doc: Value = serde_json::from_slice(&answer.body).map_err(|_| {
            mapping_error(format!(
                "{endpoint} answered {} with a body that is not JSON; if it returns the bare \
                 token, use ResponseMapping::plain_text()",
                answer.status.as_u16()
            ))
        })?;
        if doc.get("success") == Some(&Value::Bool(false)) {
            let said =
                backend_says(&answer.body, secrets).unwrap_or_else(|| "no reason given".into());
            return Err(SourceError::RetryLater {
                kind: RetryKind::Server(answer.status.as_u16()),
                retry_after: None,
                message: format!("{endpoint} answered success=false (\"{said}\"); will retry"),
            });
        }
        let token = match find_first(&doc, &i.mapping.token) {
            Some((_, Value::String(token))) if token.is_empty() => {
                return Err(bad_token(format!("{endpoint} answered an empty token")));
            }
            Some((_, Value::String(token))) => Token::new(token.as_str()),
            Some((pointer, other)) => {
                return Err(mapping_error(format!(
                    "{endpoint}: `{pointer}` is {}, not a string; point the token mapping at the \
                     token text",
                    kind_of(other)
                )));
            }
            None => {
                return Err(mapping_error(format!(
                    "{endpoint}: no token at {} (the response has {}); set \
                     ResponseMapping::token to the token's JSON pointer",
                    i.mapping.token.join(" or "),
                    describe_shape(&doc)
                )));
            }
        };
        let mut fetched = FetchedToken::new(token);
        let time = |pointers: &[String], what: &str| -> Result<Option<i64>, SourceError> {
            match find_first(&doc, pointers) {
                None => Ok(None),
                Some((pointer, v)) => parse_instant(v)
                    .map(Some)
                    .map_err(|m| mapping_error(format!("{endpoint}: {what} at `{pointer}`: {m}"))),
            }
        };
        fetched.expires_at_ms = time(&i.mapping.expires_at, "expiry")?;
        fetched.issued_at_ms = time(&i.mapping.issued_at, "issue time")?;
        fetched.server_time_ms = time(&i.mapping.server_time, "server time")?.or(date_time);
        if let Some((pointer, v)) = find_first(&doc, &i.mapping.expires_in) {
            fetched.expires_in =
                Some(parse_seconds(v).map_err(|m| {
                    mapping_error(format!("{endpoint}: lifetime at `{pointer}`: {m}"))
                })?);
        }
        Ok(fetched)
    }
}

/// The first pointer with a non-null value, and that value.
fn find_first<'a>(doc: &'a Value, pointers: &'a [String]) -> Option<(&'a String, &'a Value)> {
    pointers
        .iter()
        .find_map(|p| doc.pointer(p).filter(|v| !v.is_null()).map(|v| (p, v)))
}

fn bad_token(message: String) -> SourceError {
    SourceError::RetryLater {
        kind: RetryKind::BadToken,
        retry_after: None,
        message,
    }
}

/// Replaces each occurrence of any of `secrets` (longest first) in `text` with `[redacted]`.
pub(crate) fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut secrets: Vec<&str> = secrets.iter().copied().filter(|s| !s.is_empty()).collect();
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut out = text.to_owned();
    for secret in secrets {
        if out.contains(secret) {
            out = out.replace(secret, "[redacted]");
        }
    }
    out
}

/// The backend's explanation in an error body: `code: message` from the usual fields, with
/// any of `secrets` it echoes redacted.
fn backend_says(body: &[u8], secrets: &[&str]) -> Option<String> {
    let doc: Value = serde_json::from_slice(body).ok()?;
    let text = |keys: &[&str]| {
        keys.iter().find_map(|k| {
            doc.get(k)
                .or_else(|| doc.get("data").and_then(|d| d.get(k)))
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        })
    };
    let code = text(&["error", "code"]);
    let message = text(&["message", "error_description", "detail", "msg", "reason"]);
    let said = match (code, message) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(one), None) | (None, Some(one)) => one.to_owned(),
        (None, None) => return None,
    };
    Some(clip(&scrub(&said, secrets), 300))
}

/// Names the top-level fields of a document (never values).
fn describe_shape(doc: &Value) -> String {
    match doc {
        Value::Object(map) if map.is_empty() => "an empty object".into(),
        Value::Object(map) => {
            let keys: Vec<String> = map
                .keys()
                .take(12)
                .map(|k| format!("`{}`", clip(k, 30)))
                .collect();
            format!("fields {}", keys.join(", "))
        }
        other => kind_of(other).into(),
    }
}

#[async_trait::async_trait]
impl TokenSource for HttpSource {
    async fn fetch(&self, request: FetchRequest) -> Result<FetchedToken, SourceError> {
        let mut refreshed_auth = false;
        loop {
            let auth = match &self.inner.auth {
                Some((_, provider)) => Some(provider.auth_header(refreshed_auth).await?),
                None => None,
            };
            let answer = self.send(&request, auth.as_ref()).await?;
            tracing::debug!(
                endpoint = %self.inner.display,
                status = answer.status.as_u16(),
                session = %request.session,
                reason = request.reason.as_str(),
                "token endpoint answered"
            );
            if answer.status == StatusCode::UNAUTHORIZED
                && self.inner.auth.is_some()
                && !refreshed_auth
            {
                refreshed_auth = true;
                continue;
            }
            let secrets = self.secrets(&request, auth.as_ref());
            return if answer.status.is_success() {
                self.map_success(&answer, &secrets)
            } else {
                Err(self.error_for_status(&answer, &secrets))
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::FetchReason;

    fn request(user: &str, role: Option<&str>) -> FetchRequest {
        let mut spec = SessionSpec::new("live 42", user).with_param("region", "eu");
        spec.role = role.map(str::to_owned);
        FetchRequest {
            reason: FetchReason::Scheduled,
            session: Arc::new(spec),
            attempt: 3,
            credentials: None,
            previous: None,
            timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn json_template_keeps_types_of_whole_placeholders() {
        let template = JsonTemplate::parse(&serde_json::json!({
            "channelName": "{channel}",
            "uid": "{user:int}",
            "account": "u-{uid}",
            "role": "{role}",
            "meta": ["{reason}", "{attempt}", "{param.region}", "{{literal}}", 7],
        }))
        .unwrap();
        let body = template.render(&request("1001", None)).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "channelName": "live 42",
                "uid": 1001,
                "account": "u-1001",
                "role": null,
                "meta": ["scheduled", 3, "eu", "{literal}", 7],
            })
        );
    }

    #[test]
    fn int_placeholder_with_text_user_is_a_clear_misconfiguration() {
        let template = JsonTemplate::parse(&serde_json::json!({"uid": "{user:int}"})).unwrap();
        let err = template.render(&request("alice", None)).unwrap_err();
        assert!(
            matches!(&err, SourceError::Misconfigured { setting, message }
                if setting == "body" && message.contains("`alice` is not an unsigned integer")),
            "{err:?}"
        );
    }

    #[test]
    fn unknown_placeholder_is_refused_at_build_time() {
        let err = HttpSource::builder("http://127.0.0.1:1/t?c={chanel}")
            .build()
            .unwrap_err();
        assert!(
            matches!(&err, SourceError::Misconfigured { setting, message }
                if setting == "endpoint" && message.contains("unknown placeholder `{chanel}`")),
            "{err:?}"
        );
    }

    #[test]
    fn endpoint_placeholders_are_percent_encoded() {
        let parts = parse_template("http://h/t?c={channel}&u={uid}").unwrap();
        assert_eq!(
            render_text(&parts, &request("a/b", None), true),
            "http://h/t?c=live%2042&u=a%2Fb"
        );
    }

    #[test]
    fn instants_parse_from_iso_seconds_and_millis() {
        let cases = [
            (serde_json::json!("2026-01-02T03:04:05Z"), 1_767_323_045_000),
            (
                serde_json::json!("2026-01-02T04:04:05.250+01:00"),
                1_767_323_045_250,
            ),
            (serde_json::json!("2026-01-02T03:04:05"), 1_767_323_045_000),
            (serde_json::json!(1_767_323_045), 1_767_323_045_000),
            (serde_json::json!(1_767_323_045.5), 1_767_323_045_500),
            (serde_json::json!("1767323045"), 1_767_323_045_000),
            (serde_json::json!(1_767_323_045_123_i64), 1_767_323_045_123),
        ];
        for (value, want) in cases {
            assert_eq!(parse_instant(&value), Ok(want), "{value}");
        }
        assert!(
            parse_instant(&serde_json::json!("next tuesday"))
                .unwrap_err()
                .contains("not an ISO-8601")
        );
        assert!(
            parse_instant(&serde_json::json!(true))
                .unwrap_err()
                .contains("a boolean")
        );
        assert_eq!(
            parse_seconds(&serde_json::json!("30")),
            Ok(Duration::from_secs(30))
        );
        assert!(parse_seconds(&serde_json::json!(-1)).is_err());
    }

    #[test]
    fn http_dates_parse() {
        assert_eq!(
            parse_http_date("Fri, 02 Jan 2026 03:04:05 GMT"),
            Some(1_767_323_045_000)
        );
        assert_eq!(parse_http_date("yesterday"), None);
    }

    #[test]
    fn backend_explanations_are_quoted_and_clipped() {
        let said = backend_says(
            br#"{"error":"stream_ended","message":"stream 'x' has ended"}"#,
            &[],
        );
        assert_eq!(said.as_deref(), Some("stream_ended: stream 'x' has ended"));
        let long = format!(r#"{{"message":"{}"}}"#, "x".repeat(500));
        assert_eq!(
            backend_says(long.as_bytes(), &[]).unwrap().chars().count(),
            301
        );
        assert_eq!(backend_says(b"<html>", &[]), None);
        let echo = br#"{"error":"bad_token","message":"tok-SECRET for Bearer sess-KEY"}"#;
        assert_eq!(
            backend_says(echo, &["Bearer sess-KEY", "sess-KEY", "tok-SECRET", ""]).as_deref(),
            Some("bad_token: [redacted] for [redacted]")
        );
    }

    #[test]
    fn debug_never_shows_header_values() {
        let source = HttpSource::builder("https://api.example.com/token?key=SECRETKEY")
            .header("x-api-key", "SECRETHEADER")
            .auth(Arc::new(StaticAuth::bearer("SECRETBEARER")))
            .build()
            .unwrap();
        let shown = format!("{source:?}");
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(
            shown.contains("POST https://api.example.com/token"),
            "{shown}"
        );
    }
}
