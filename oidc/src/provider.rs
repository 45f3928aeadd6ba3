//! The provider as the relying party sees it: discovery, the authorization
//! URL, the token endpoint and userinfo, through `openidconnect`; every token
//! it returns is verified by portcullis-core's verifier (and its JWKS cache).

use std::fmt;
use std::time::Duration;

use openidconnect::core::{
    CoreAuthDisplay, CoreClaimName, CoreClaimType, CoreClient, CoreClientAuthMethod, CoreGrantType,
    CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm,
    CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType, CoreTokenResponse,
};
use openidconnect::{
    AdditionalProviderMetadata, AuthType, AuthenticationFlow, AuthorizationCode, ClientId,
    ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet, EndpointSet, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, ProviderMetadata, RedirectUrl,
    RefreshToken, RequestTokenError, Scope, TokenResponse as _,
};
use portcullis_core::Error;
use portcullis_core::config::check_provider_url;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::config::OidcConfig;

/// The longest answer read from the provider.
const MAX_RESPONSE_BYTES: usize = 1 << 20;
/// How long a call to the provider may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Discovery fields `openidconnect` does not model.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct ExtraMetadata {
    /// RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0).
    #[serde(default)]
    end_session_endpoint: Option<String>,
    /// RFC 9207: the authorization response carries `iss`.
    #[serde(default)]
    authorization_response_iss_parameter_supported: Option<bool>,
}

impl AdditionalProviderMetadata for ExtraMetadata {}

type Metadata = ProviderMetadata<
    ExtraMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
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
    /// The provider could not be reached or answered nonsense (503).
    Unavailable(Error),
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

/// Sends one request with reqwest; redirects are not followed and answers
/// are bounded in size.
async fn send(
    http: reqwest::Client,
    req: http::Request<Vec<u8>>,
) -> Result<http::Response<Vec<u8>>, HttpError> {
    let (parts, body) = req.into_parts();
    let mut resp = http
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await
        .map_err(|e| HttpError(format!("request to the provider failed: {e}")))?;
    let status = resp.status();
    let headers = resp.headers().clone();
    let mut bytes = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| HttpError(format!("reading the provider's answer failed: {e}")))?
    {
        if bytes.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(HttpError("the provider's answer is too large".to_owned()));
        }
        bytes.extend_from_slice(&chunk);
    }
    let mut out = http::Response::new(bytes);
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    Ok(out)
}

/// The HTTP client for provider calls.
pub(crate) fn http_client() -> Result<reqwest::Client, Error> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(TIMEOUT)
        .build()
        .map_err(|e| Error::config("the HTTP client could not be built").with_source(e))
}

/// A discovered provider and the client registered at it.
pub(crate) struct Provider {
    issuer: String,
    client: Client,
    http: reqwest::Client,
    iss_parameter: bool,
    end_session: Option<Url>,
    userinfo: Option<String>,
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
    /// Fetches the discovery document and builds the client.
    ///
    /// # Errors
    ///
    /// `Unavailable` when the document cannot be fetched; `Config` when it
    /// does not parse, names another issuer, or lacks the token endpoint.
    pub(crate) async fn discover(
        config: &OidcConfig,
        http: reqwest::Client,
    ) -> Result<Provider, Error> {
        let expected = config.expected_issuer()?;
        let req = http::Request::get(config.server_metadata_url.as_str())
            .header("accept", "application/json")
            .body(Vec::new())
            .map_err(|e| Error::config("configuration key `server_metadata_url`").with_source(e))?;
        let resp = send(http.clone(), req).await.map_err(|e| {
            Error::unavailable("the provider's discovery document could not be fetched")
                .with_source(e)
        })?;
        if !resp.status().is_success() {
            return Err(Error::unavailable(format!(
                "the provider's discovery document answered HTTP {}",
                resp.status().as_u16()
            )));
        }
        let metadata: Metadata = serde_json::from_slice(resp.body()).map_err(|e| {
            Error::config("the provider's discovery document does not parse").with_source(e)
        })?;
        if metadata.issuer().as_str() != expected {
            return Err(Error::config(format!(
                "the discovery document names issuer `{}`, expected `{expected}`",
                metadata.issuer().as_str()
            )));
        }
        let Some(token_endpoint) = metadata.token_endpoint() else {
            return Err(Error::config(
                "the provider's discovery document has no `token_endpoint`",
            ));
        };
        // Tokens and keys travel over HTTPS only, whatever the document says.
        let plain = config.danger_allow_plain_http;
        let found = |name: &str| format!("server_metadata_url` → `{name}");
        check_provider_url(
            &found("token_endpoint"),
            token_endpoint.url().as_str(),
            plain,
        )?;
        check_provider_url(
            &found("authorization_endpoint"),
            metadata.authorization_endpoint().url().as_str(),
            plain,
        )?;
        check_provider_url(
            &found("jwks_uri"),
            metadata.jwks_uri().url().as_str(),
            plain,
        )?;
        if let Some(u) = metadata.userinfo_endpoint() {
            check_provider_url(&found("userinfo_endpoint"), u.url().as_str(), plain)?;
        }
        let extra = metadata.additional_metadata().clone();
        if let Some(u) = extra.end_session_endpoint.as_deref() {
            check_provider_url(&found("end_session_endpoint"), u, plain)?;
        }
        let end_session = match extra.end_session_endpoint.as_deref() {
            Some(u) => Some(Url::parse(u).map_err(|e| {
                Error::config("the provider's `end_session_endpoint` is not a URL").with_source(e)
            })?),
            None => None,
        };
        let basic = metadata
            .token_endpoint_auth_methods_supported()
            .is_none_or(|m| {
                m.iter()
                    .any(|x| matches!(x, CoreClientAuthMethod::ClientSecretBasic))
            });
        let userinfo = metadata.userinfo_endpoint().map(|u| u.url().to_string());
        let redirect = RedirectUrl::new(config.redirect_uri()).map_err(|e| {
            Error::config("configuration key `base_url`: the callback URL is invalid")
                .with_source(e)
        })?;
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(config.client_id.clone()),
            config
                .client_secret
                .as_ref()
                .map(|s| ClientSecret::new(s.expose().to_owned())),
        )
        .set_redirect_uri(redirect)
        .set_auth_type(if basic {
            AuthType::BasicAuth
        } else {
            AuthType::RequestBody
        });
        Ok(Provider {
            issuer: expected,
            client,
            http,
            iss_parameter: extra
                .authorization_response_iss_parameter_supported
                .unwrap_or(false),
            end_session,
            userinfo,
        })
    }

    /// The issuer.
    pub(crate) fn issuer(&self) -> &str {
        &self.issuer
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
        let http = self.http.clone();
        let client = |req| send(http.clone(), req);
        let req = self
            .client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| {
                TokenFailure::Unavailable(Error::config("no token endpoint").with_source(e))
            })?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()));
        let resp = req.request_async(&client).await.map_err(token_failure)?;
        Ok(tokens(&resp))
    }

    /// Redeems a refresh token.
    pub(crate) async fn refresh(&self, refresh_token: &str) -> Result<Tokens, TokenFailure> {
        let http = self.http.clone();
        let client = |req| send(http.clone(), req);
        let token = RefreshToken::new(refresh_token.to_owned());
        let req = self.client.exchange_refresh_token(&token).map_err(|e| {
            TokenFailure::Unavailable(Error::config("no token endpoint").with_source(e))
        })?;
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
        let req = http::Request::get(url.as_str())
            .header("authorization", format!("Bearer {access_token}"))
            .header("accept", "application/json")
            .body(Vec::new())
            .map_err(|e| {
                Error::unavailable("the userinfo request could not be built").with_source(e)
            })?;
        let resp = send(self.http.clone(), req).await.map_err(|e| {
            Error::unavailable("the provider's userinfo endpoint could not be reached")
                .with_source(e)
        })?;
        if !resp.status().is_success() {
            return Err(Error::unavailable(format!(
                "the provider's userinfo endpoint answered HTTP {}",
                resp.status().as_u16()
            )));
        }
        let claims = serde_json::from_slice(resp.body()).map_err(|e| {
            Error::unavailable("the provider's userinfo answer does not parse").with_source(e)
        })?;
        Ok(Some(claims))
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
        RequestTokenError::Request(e) => TokenFailure::Unavailable(
            Error::unavailable("the provider's token endpoint could not be reached").with_source(e),
        ),
        RequestTokenError::Parse(e, _) => TokenFailure::Unavailable(
            Error::unavailable("the provider's token answer does not parse").with_source(e),
        ),
        RequestTokenError::Other(m) => TokenFailure::Unavailable(Error::unavailable(format!(
            "the provider's token endpoint failed: {m}"
        ))),
    }
}
