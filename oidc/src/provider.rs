//! The provider as the relying party sees it: discovery (core's
//! [`Discovery`]), the authorization URL and the token endpoint through
//! `openidconnect`, and userinfo, all over core's [`HttpClient`]; every
//! token it returns is verified by portcullis-core's verifier (and its JWKS
//! cache).

use std::fmt;
use std::time::Duration;

use openidconnect::core::{CoreClient, CoreResponseType, CoreTokenResponse};
use openidconnect::{
    AuthType, AuthUrl, AuthenticationFlow, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    EndpointNotSet, EndpointSet, IssuerUrl, JsonWebKeySet, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError, Scope,
    TokenResponse as _, TokenUrl,
};
use portcullis_core::Error;
use portcullis_core::discovery::{ClientAuthMethod, Discovery, DiscoveryError};
use portcullis_core::fetch::ReqwestFetch;
use portcullis_core::http_client::{
    HttpClient, MAX_DISCOVERY_BYTES, MAX_TOKEN_ANSWER_BYTES, MAX_USERINFO_BYTES, read_bounded,
};
use serde::Serialize;
use serde_json::Value;
use url::Url;

use crate::config::OidcConfig;

/// How long a call to the provider may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The client, with the authorization and token endpoints set (userinfo is
/// called directly, with its own size limit).
type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
    EndpointNotSet,
>;

/// What the token endpoint answered. Its `Debug` shows no token.
pub(crate) struct Tokens {
    pub(crate) access_token: String,
    pub(crate) expires_in: Option<u64>,
    pub(crate) refresh_token: Option<String>,
    pub(crate) id_token: Option<String>,
    pub(crate) scope: Option<String>,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens")
            .field("access_token", &"<redacted>")
            .field("expires_in", &self.expires_in)
            .field("has_refresh_token", &self.refresh_token.is_some())
            .field("has_id_token", &self.id_token.is_some())
            .field("scope", &self.scope)
            .finish()
    }
}

/// Why a token request failed.
#[derive(Debug)]
pub(crate) enum TokenFailure {
    /// The provider answered an OAuth error (`invalid_grant`, ...).
    Refused(String),
    /// The provider could not be reached (503), or answered something that
    /// cannot be used (502: [`Error::bad_gateway`]).
    Failed(Error),
}

/// The error the HTTP client gives `openidconnect`.
#[derive(Debug)]
pub(crate) struct HttpError(String);

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HttpError {}

/// Sends one token request for `openidconnect`; redirects are not followed
/// and the answer is read up to [`MAX_TOKEN_ANSWER_BYTES`].
async fn send(
    http: reqwest::Client,
    req: http::Request<Vec<u8>>,
) -> Result<http::Response<Vec<u8>>, HttpError> {
    let (parts, body) = req.into_parts();
    let resp = http
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await
        .map_err(|e| HttpError(format!("request to the provider failed: {e}")))?;
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = read_bounded(resp, MAX_TOKEN_ANSWER_BYTES)
        .await
        .map_err(|e| HttpError(format!("reading the provider's answer failed: {e}")))?;
    let mut out = http::Response::new(bytes);
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    Ok(out)
}

/// The HTTP client for provider calls.
pub(crate) fn http_client() -> Result<HttpClient, Error> {
    HttpClient::new(TIMEOUT)
}

/// A discovered provider and the client registered at it.
pub(crate) struct Provider {
    issuer: String,
    client: Client,
    http: HttpClient,
    iss_parameter: bool,
    offline: OfflineRequest,
    end_session: Option<Url>,
    userinfo: Option<Url>,
    revocation: Option<Url>,
    /// The token endpoint, for the device-code grant (RFC 8628), which
    /// `openidconnect` only offers as a loop that sleeps between polls.
    token: Url,
    /// The device authorization endpoint (RFC 8628), when advertised.
    device_authorization: Option<Url>,
    /// Whether plain-HTTP URLs are allowed (a loopback provider in tests).
    danger_allow_plain_http: bool,
    /// How the client authenticates, for the calls made without `openidconnect`.
    auth: ClientAuthMethod,
    client_id: String,
    client_secret: Option<portcullis_core::Secret>,
}

/// How this provider is asked for a refresh token (`/login?offline_token=true`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OfflineRequest {
    /// The `offline_access` scope (OpenID Connect Core §11): the discovery
    /// document lists it in `scopes_supported`, or lists no scopes.
    Scope,
    /// `access_type=offline` and `prompt=consent`, as Google wants: the
    /// document lists scopes and `offline_access` is not among them.
    AccessType,
}

impl OfflineRequest {
    /// The rule, from the discovery document's `scopes_supported`.
    fn from_scopes(scopes: Option<&Value>) -> Self {
        match scopes.and_then(Value::as_array) {
            Some(listed) if !listed.iter().any(|s| s == "offline_access") => Self::AccessType,
            _ => Self::Scope,
        }
    }
}

impl fmt::Debug for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Provider")
            .field("issuer", &self.issuer)
            .field("iss_parameter", &self.iss_parameter)
            .field("end_session", &self.end_session.as_ref().map(Url::as_str))
            .finish_non_exhaustive()
    }
}

impl Provider {
    /// Fetches the discovery document (core's [`Discovery`]: the issuer
    /// checked, every endpoint held to the HTTPS rule) and builds the client
    /// from the endpoints it names.
    ///
    /// # Errors
    ///
    /// `Unavailable` when the document cannot be fetched; `Config` when it
    /// does not parse, names another issuer, names an endpoint the HTTPS
    /// rule refuses, or lacks the authorization or token endpoint or the
    /// key set.
    pub(crate) async fn discover(config: &OidcConfig, http: HttpClient) -> Result<Provider, Error> {
        let expected = config.expected_issuer()?;
        let fetch = ReqwestFetch::from_client(http.clone(), MAX_DISCOVERY_BYTES);
        let found = Discovery::new(&config.server_metadata_url)
            .issuer(&expected)
            .key("server_metadata_url")
            .danger_allow_plain_http(config.danger_allow_plain_http)
            .fetch(&fetch)
            .await?;
        let missing = |field| Error::from(DiscoveryError::Missing { field });
        let authorization = found
            .authorization_endpoint()
            .ok_or_else(|| missing("authorization_endpoint"))?;
        let token = found
            .token_endpoint()
            .ok_or_else(|| missing("token_endpoint"))?;
        // The verifier fetches the keys itself; without them no ID token verifies.
        if found.jwks_uri().is_none() {
            return Err(missing("jwks_uri"));
        }
        let redirect = RedirectUrl::new(config.redirect_uri()).map_err(|e| {
            Error::config("configuration key `base_url`: the callback URL is invalid")
                .with_source(e)
        })?;
        let issuer = IssuerUrl::new(expected.clone())
            .map_err(|e| Error::config("configuration key `issuer`: not a URL").with_source(e))?;
        // ID tokens are verified by core's verifier, never by this client:
        // it holds no keys.
        let mut client = CoreClient::new(
            ClientId::new(config.client_id.clone()),
            issuer,
            JsonWebKeySet::default(),
        )
        .set_auth_uri(AuthUrl::from_url(authorization.clone()))
        .set_token_uri(TokenUrl::from_url(token.clone()))
        .set_redirect_uri(redirect);
        let auth = found.client_auth_method(config.token_endpoint_auth_method);
        client = client.set_auth_type(match auth {
            ClientAuthMethod::ClientSecretPost => AuthType::RequestBody,
            _ => AuthType::BasicAuth,
        });
        if let Some(secret) = &config.client_secret {
            client = client.set_client_secret(ClientSecret::new(secret.expose().to_owned()));
        }
        Ok(Provider {
            issuer: expected,
            client,
            http,
            iss_parameter: found.authorization_response_iss_parameter_supported(),
            offline: OfflineRequest::from_scopes(found.document().get("scopes_supported")),
            end_session: found.end_session_endpoint().cloned(),
            userinfo: found.userinfo_endpoint().cloned(),
            revocation: found.revocation_endpoint().cloned(),
            token: token.clone(),
            device_authorization: found.device_authorization_endpoint().cloned(),
            danger_allow_plain_http: config.danger_allow_plain_http,
            auth,
            client_id: config.client_id.clone(),
            client_secret: config.client_secret.clone(),
        })
    }

    /// The issuer.
    pub(crate) fn issuer(&self) -> &str {
        &self.issuer
    }

    /// How a refresh token is asked for at this provider.
    pub(crate) fn offline_request(&self) -> OfflineRequest {
        self.offline
    }

    /// Whether authorization responses carry `iss` (RFC 9207).
    pub(crate) fn iss_parameter(&self) -> bool {
        self.iss_parameter
    }

    /// The authorization URL for a login with these values.
    pub(crate) fn authorize_url(
        &self,
        state: String,
        nonce: String,
        pkce_verifier: &str,
        scopes: &[String],
        extra: &[(String, String)],
    ) -> Url {
        let verifier = PkceCodeVerifier::new(pkce_verifier.to_owned());
        let challenge = PkceCodeChallenge::from_code_verifier_sha256(&verifier);
        let mut req = self
            .client
            .authorize_url(
                AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
                move || CsrfToken::new(state),
                move || Nonce::new(nonce),
            )
            .set_pkce_challenge(challenge);
        for scope in scopes.iter().filter(|s| s.as_str() != "openid") {
            req = req.add_scope(Scope::new(scope.clone()));
        }
        for (name, value) in extra {
            req = req.add_extra_param(name.clone(), value.clone());
        }
        req.url().0
    }

    /// Exchanges an authorization code (with its PKCE verifier).
    pub(crate) async fn exchange_code(
        &self,
        code: &str,
        pkce_verifier: &str,
    ) -> Result<Tokens, TokenFailure> {
        let http = self.http.reqwest().clone();
        let client = |req| send(http.clone(), req);
        let req = self
            .client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()));
        let resp = req.request_async(&client).await.map_err(token_failure)?;
        Ok(tokens(&resp))
    }

    /// Redeems a refresh token.
    pub(crate) async fn refresh(&self, refresh_token: &str) -> Result<Tokens, TokenFailure> {
        let http = self.http.reqwest().clone();
        let client = |req| send(http.clone(), req);
        let token = RefreshToken::new(refresh_token.to_owned());
        let req = self.client.exchange_refresh_token(&token);
        let resp = req.request_async(&client).await.map_err(token_failure)?;
        Ok(tokens(&resp))
    }

    /// The userinfo claims for an access token, when the provider has a
    /// userinfo endpoint.
    pub(crate) async fn userinfo(
        &self,
        access_token: &str,
    ) -> Result<Option<serde_json::Map<String, serde_json::Value>>, Error> {
        let Some(url) = &self.userinfo else {
            return Ok(None);
        };
        let resp = self
            .http
            .reqwest()
            .get(url.clone())
            .bearer_auth(access_token)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| {
                Error::unavailable("the provider's userinfo endpoint could not be reached")
                    .with_source(e.without_url())
            })?;
        if !resp.status().is_success() {
            return Err(Error::unavailable(format!(
                "the provider's userinfo endpoint answered HTTP {}",
                resp.status().as_u16()
            )));
        }
        let body = read_bounded(resp, MAX_USERINFO_BYTES).await.map_err(|e| {
            Error::unavailable("the provider's userinfo answer could not be read").with_source(e)
        })?;
        let claims = serde_json::from_slice(&body).map_err(|e| {
            Error::bad_gateway("the provider's userinfo answer does not parse").with_source(e)
        })?;
        Ok(Some(claims))
    }

    /// Whether the provider advertises a `revocation_endpoint` (RFC 7009).
    pub(crate) fn revokes(&self) -> bool {
        self.revocation.is_some()
    }

    /// Revokes a refresh token at the provider's `revocation_endpoint`
    /// (RFC 7009), authenticating as at the token endpoint. `Ok(false)`
    /// when the provider advertises no such endpoint.
    ///
    /// # Errors
    ///
    /// `Unavailable` when the provider cannot be reached or answers 5xx,
    /// `BadGateway` (502) when it refuses the request.
    pub(crate) async fn revoke_refresh_token(&self, token: &str) -> Result<bool, Error> {
        let Some(url) = &self.revocation else {
            return Ok(false);
        };
        let form = vec![
            ("token", token.to_owned()),
            ("token_type_hint", "refresh_token".to_owned()),
        ];
        let resp = self.client_post(url, form).send().await.map_err(|e| {
            Error::unavailable("the provider's revocation endpoint could not be reached")
                .with_source(e.without_url())
        })?;
        let status = resp.status();
        if status.is_server_error() {
            return Err(Error::unavailable(format!(
                "the provider's revocation endpoint answered HTTP {}",
                status.as_u16()
            )));
        }
        if !status.is_success() {
            return Err(Error::bad_gateway(format!(
                "the provider refused to revoke the token (HTTP {})",
                status.as_u16()
            )));
        }
        Ok(true)
    }

    /// A form POST to `url` authenticated as at the token endpoint
    /// (`client_secret_basic` or `client_secret_post`, else `client_id`
    /// alone).
    fn client_post(&self, url: &Url, mut form: Vec<(&str, String)>) -> reqwest::RequestBuilder {
        let mut req = self.http.reqwest().post(url.clone());
        match (&self.client_secret, self.auth) {
            (Some(secret), ClientAuthMethod::ClientSecretBasic) => {
                let enc = |s: &str| -> String {
                    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
                };
                req = req.basic_auth(enc(&self.client_id), Some(enc(secret.expose())));
            }
            (Some(secret), _) => {
                form.push(("client_id", self.client_id.clone()));
                form.push(("client_secret", secret.expose().to_owned()));
            }
            (None, _) => form.push(("client_id", self.client_id.clone())),
        }
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&form)
            .finish();
        req.header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .header(reqwest::header::ACCEPT, "application/json")
        .body(body)
    }

    /// Whether the provider advertises a `device_authorization_endpoint`
    /// (RFC 8628).
    pub(crate) fn device_flow(&self) -> bool {
        self.device_authorization.is_some()
    }

    /// Starts a device authorization (RFC 8628 3.1, 3.2) for `scopes`.
    ///
    /// # Errors
    ///
    /// `Unavailable` when the provider cannot be reached or answers 5xx;
    /// `BadGateway` (502) when it refuses the request or answers something
    /// unusable; `Config` when it advertises no such endpoint.
    pub(crate) async fn device_authorization(
        &self,
        scopes: &[String],
    ) -> Result<DeviceStart, Error> {
        let Some(url) = &self.device_authorization else {
            return Err(Error::config(
                "the provider advertises no device_authorization_endpoint",
            ));
        };
        let resp = self
            .client_post(url, vec![("scope", scopes.join(" "))])
            .send()
            .await
            .map_err(|e| {
                Error::unavailable(
                    "the provider's device authorization endpoint could not be reached",
                )
                .with_source(e.without_url())
            })?;
        let status = resp.status();
        if status.is_server_error() {
            return Err(Error::unavailable(format!(
                "the provider's device authorization endpoint answered HTTP {}",
                status.as_u16()
            )));
        }
        let body = read_bounded(resp, MAX_TOKEN_ANSWER_BYTES)
            .await
            .map_err(|e| {
                Error::unavailable("the provider's device authorization answer could not be read")
                    .with_source(e)
            })?;
        if !status.is_success() {
            let code = oauth_error_code(&body);
            return Err(Error::bad_gateway(format!(
                "the provider refused the device authorization (HTTP {}, `{code}`)",
                status.as_u16()
            )));
        }
        DeviceStart::parse(&body, self.danger_allow_plain_http)
    }

    /// Polls the token endpoint once with the device-code grant (RFC 8628
    /// 3.4, 3.5).
    pub(crate) async fn poll_device(&self, device_code: &str) -> DevicePoll {
        let form = vec![
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:device_code".to_owned(),
            ),
            ("device_code", device_code.to_owned()),
        ];
        let resp = match self.client_post(&self.token, form).send().await {
            Ok(r) => r,
            Err(e) => {
                return DevicePoll::Failed(
                    Error::unavailable("the provider's token endpoint could not be reached")
                        .with_source(e.without_url()),
                );
            }
        };
        let status = resp.status();
        if status.is_server_error() {
            return DevicePoll::Failed(Error::unavailable(format!(
                "the provider's token endpoint answered HTTP {}",
                status.as_u16()
            )));
        }
        let body = match read_bounded(resp, MAX_TOKEN_ANSWER_BYTES).await {
            Ok(b) => b,
            Err(e) => {
                return DevicePoll::Failed(
                    Error::unavailable("the provider's token answer could not be read")
                        .with_source(e),
                );
            }
        };
        if !status.is_success() {
            return match oauth_error_code(&body).as_str() {
                "authorization_pending" => DevicePoll::Pending,
                "slow_down" => DevicePoll::SlowDown,
                code => DevicePoll::Refused(code.to_owned()),
            };
        }
        match serde_json::from_slice::<CoreTokenResponse>(&body) {
            Ok(resp) => DevicePoll::Tokens(tokens(&resp)),
            Err(e) => DevicePoll::Failed(
                Error::bad_gateway(
                    "the provider's token answer does not parse (if its ID token lacks `aud`, \
                     try `token_endpoint_auth_method: client_secret_post`)",
                )
                .with_source(e),
            ),
        }
    }

    /// The RP-initiated logout URL, when the provider has one.
    pub(crate) fn end_session_url(
        &self,
        id_token_hint: Option<&str>,
        client_id: &str,
        post_logout_redirect_uri: &str,
    ) -> Option<Url> {
        let mut url = self.end_session.clone()?;
        {
            let mut q = url.query_pairs_mut();
            if let Some(hint) = id_token_hint {
                q.append_pair("id_token_hint", hint);
            }
            q.append_pair("client_id", client_id);
            q.append_pair("post_logout_redirect_uri", post_logout_redirect_uri);
        }
        Some(url)
    }
}

/// The `error` of an OAuth error answer (`"error"` when there is none).
fn oauth_error_code(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| "error".to_owned())
}

/// The provider's answer to a device authorization request (RFC 8628 3.2).
/// Its `Debug` shows no device code.
pub(crate) struct DeviceStart {
    pub(crate) device_code: String,
    pub(crate) user_code: String,
    pub(crate) verification_uri: String,
    pub(crate) verification_uri_complete: Option<String>,
    pub(crate) expires_in: u64,
    pub(crate) interval: u64,
}

impl fmt::Debug for DeviceStart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceStart")
            .field("device_code", &"<redacted>")
            .field("user_code", &self.user_code)
            .field("verification_uri", &self.verification_uri)
            .field("expires_in", &self.expires_in)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

/// The longest device or user code kept (they go into the session store).
const MAX_DEVICE_CODE_BYTES: usize = 1024;

impl DeviceStart {
    /// Parses and checks the answer: codes present and bounded, the
    /// verification URIs HTTPS (plain HTTP on loopback, or when allowed),
    /// `interval` 5 when absent (RFC 8628 3.2), at least 1.
    fn parse(body: &[u8], allow_plain_http: bool) -> Result<DeviceStart, Error> {
        let unusable = |what: &str| {
            Error::bad_gateway(format!(
                "the provider's device authorization answer is unusable: {what}"
            ))
        };
        let doc: Value = serde_json::from_slice(body)
            .map_err(|e| unusable("it does not parse").with_source(e))?;
        let text = |name: &str| {
            doc.get(name)
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty() && v.len() <= MAX_DEVICE_CODE_BYTES)
                .map(str::to_owned)
        };
        let uri = |value: String| -> Result<String, Error> {
            let url =
                Url::parse(&value).map_err(|_| unusable("a verification URI is not a URL"))?;
            let loopback = url.host_str().is_some_and(|h| {
                h == "localhost"
                    || h.parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback())
                    || h.trim_matches(['[', ']'])
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback())
            });
            match url.scheme() {
                "https" => Ok(value),
                "http" if loopback || allow_plain_http => Ok(value),
                _ => Err(unusable("a verification URI is not HTTPS")),
            }
        };
        let device_code = text("device_code").ok_or_else(|| unusable("no device_code"))?;
        let user_code = text("user_code").ok_or_else(|| unusable("no user_code"))?;
        // Google's `verification_url` predates the RFC's name.
        let verification_uri = text("verification_uri")
            .or_else(|| text("verification_url"))
            .ok_or_else(|| unusable("no verification_uri"))
            .and_then(uri)?;
        let verification_uri_complete = text("verification_uri_complete").map(uri).transpose()?;
        let expires_in = doc
            .get("expires_in")
            .and_then(Value::as_u64)
            .filter(|s| *s > 0)
            .ok_or_else(|| unusable("no expires_in"))?;
        let interval = doc
            .get("interval")
            .and_then(Value::as_u64)
            .unwrap_or(5)
            .max(1);
        Ok(DeviceStart {
            device_code,
            user_code,
            verification_uri,
            verification_uri_complete,
            expires_in,
            interval,
        })
    }
}

/// One poll of the device-code grant.
#[derive(Debug)]
pub(crate) enum DevicePoll {
    /// Granted.
    Tokens(Tokens),
    /// `authorization_pending`: ask again after the interval.
    Pending,
    /// `slow_down`: ask again after an interval 5 seconds longer.
    SlowDown,
    /// Any other OAuth error (`access_denied`, `expired_token`, ...).
    Refused(String),
    /// The provider could not be reached (503) or answered something
    /// unusable (502).
    Failed(Error),
}

fn tokens(resp: &CoreTokenResponse) -> Tokens {
    Tokens {
        access_token: resp.access_token().secret().clone(),
        expires_in: resp.expires_in().map(|d| d.as_secs()),
        refresh_token: resp.refresh_token().map(|t| t.secret().clone()),
        id_token: resp.id_token().map(ToString::to_string),
        scope: resp
            .scopes()
            .map(|s| s.iter().map(|x| x.as_str()).collect::<Vec<_>>().join(" ")),
    }
}

fn token_failure<T>(e: RequestTokenError<HttpError, T>) -> TokenFailure
where
    T: openidconnect::ErrorResponse + 'static + Serialize,
{
    match e {
        RequestTokenError::ServerResponse(r) => {
            let code = serde_json::to_value(&r)
                .ok()
                .and_then(|v| v.get("error").and_then(|c| c.as_str()).map(str::to_owned))
                .unwrap_or_else(|| "error".to_owned());
            TokenFailure::Refused(code)
        }
        RequestTokenError::Request(e) => TokenFailure::Failed(
            Error::unavailable("the provider's token endpoint could not be reached").with_source(e),
        ),
        // Not an outage: the same request gets the same answer. Often the
        // client authentication method (an ID token without `aud`).
        RequestTokenError::Parse(e, _) => TokenFailure::Failed(
            Error::bad_gateway(
                "the provider's token answer does not parse (if its ID token lacks `aud`, \
                 try `token_endpoint_auth_method: client_secret_post`)",
            )
            .with_source(e),
        ),
        RequestTokenError::Other(m) => TokenFailure::Failed(Error::unavailable(format!(
            "the provider's token endpoint failed: {m}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{DeviceStart, OfflineRequest};

    #[test]
    fn device_authorization_answers_are_checked() {
        let ok = json!({
            "device_code": "d", "user_code": "ABCD-EFGH",
            "verification_uri": "https://id.example.com/device", "expires_in": 600
        });
        let start = DeviceStart::parse(ok.to_string().as_bytes(), false).expect("usable");
        assert_eq!(start.interval, 5, "the RFC's default");
        assert!(start.verification_uri_complete.is_none());
        let google = json!({
            "device_code": "d", "user_code": "ABCD", "interval": 0,
            "verification_url": "https://www.google.com/device", "expires_in": 1800
        });
        let start = DeviceStart::parse(google.to_string().as_bytes(), false).expect("usable");
        assert_eq!(start.verification_uri, "https://www.google.com/device");
        assert_eq!(start.interval, 1, "never a busy loop");
        let local = json!({
            "device_code": "d", "user_code": "u",
            "verification_uri": "http://127.0.0.1:9/device", "expires_in": 1
        });
        assert!(DeviceStart::parse(local.to_string().as_bytes(), false).is_ok());
        for bad in [
            json!({"user_code": "u", "verification_uri": "https://x.example/d", "expires_in": 1}),
            json!({"device_code": "d", "verification_uri": "https://x.example/d", "expires_in": 1}),
            json!({"device_code": "d", "user_code": "u", "expires_in": 1}),
            json!({"device_code": "d", "user_code": "u", "verification_uri": "http://x.example/d", "expires_in": 1}),
            json!({"device_code": "d", "user_code": "u", "verification_uri": "javascript:alert(1)", "expires_in": 1}),
            json!({"device_code": "d", "user_code": "u", "verification_uri": "https://x.example/d"}),
            json!({"device_code": "x".repeat(2000), "user_code": "u", "verification_uri": "https://x.example/d", "expires_in": 1}),
        ] {
            let e = DeviceStart::parse(bad.to_string().as_bytes(), false).expect_err("unusable");
            assert_eq!(e.status(), 502, "{bad}");
        }
    }

    #[test]
    fn discovery_decides_how_offline_access_is_asked() {
        let rule = |v| OfflineRequest::from_scopes(Some(&v));
        assert_eq!(OfflineRequest::from_scopes(None), OfflineRequest::Scope);
        assert_eq!(
            rule(json!(["openid", "offline_access"])),
            OfflineRequest::Scope
        );
        // Google lists its scopes, and offline_access is not one.
        assert_eq!(
            rule(json!(["openid", "email", "profile"])),
            OfflineRequest::AccessType
        );
        assert_eq!(rule(json!("openid")), OfflineRequest::Scope);
    }
}
