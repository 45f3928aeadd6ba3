//! poem-openapi support: a bearer security scheme that enforces what it
//! documents.
//!
//! An operation that takes [`BearerAuth`], [`BearerScope`] or
//! [`BearerCapability`] lists the security scheme [`SCHEME_NAME`] (HTTP
//! bearer, JWT) in the generated OpenAPI document, and is refused exactly as
//! the plain extractors refuse: 401 with core's `WWW-Authenticate`
//! challenge without a caller, 403 `insufficient_scope` without the scope or
//! capability. The caller comes from [`AuthMiddleware`](crate::AuthMiddleware),
//! which must wrap the `OpenApiService` (a session cookie counts too when
//! the middleware is built with
//! [`for_login`](crate::AuthMiddleware::for_login)).
//!
//! OpenAPI 3.0 lists scopes only for OAuth 2 schemes, so the required scope
//! or capability is enforced but not named in the document; say it in the
//! operation's description.
//!
//! # Examples
//!
//! ```no_run
//! use poem::{EndpointExt, Route};
//! use poem_openapi::{OpenApi, OpenApiService, payload::PlainText};
//! use portcullis_poem::openapi::{BearerAuth, BearerCapability};
//! use portcullis_poem::{AuthMiddleware, capability};
//! # use portcullis_poem::portcullis_core::Authenticator;
//! # use portcullis_poem::portcullis_capabilities::Capabilities;
//!
//! capability!(Write = "write");
//!
//! struct Api;
//!
//! #[OpenApi]
//! impl Api {
//!     /// Who is calling.
//!     #[oai(path = "/me", method = "get")]
//!     async fn me(&self, auth: BearerAuth) -> PlainText<String> {
//!         PlainText(auth.0.principal.user_id().to_owned())
//!     }
//!
//!     /// Writes (needs the `write` capability).
//!     #[oai(path = "/write", method = "post")]
//!     async fn write(&self, _auth: BearerCapability<Write>) -> PlainText<&'static str> {
//!         PlainText("written")
//!     }
//! }
//!
//! # fn app(auth: Authenticator, caps: Capabilities) {
//! let api = OpenApiService::new(Api, "My API", "1.0");
//! let spec = api.spec_endpoint();
//! let app = Route::new()
//!     .nest("/api", api)
//!     .at("/openapi.json", spec)
//!     .with(AuthMiddleware::new(auth).with_capabilities(caps));
//! # let _ = app; }
//! ```

use std::marker::PhantomData;

use poem::{Request, RequestBody};
use poem_openapi::registry::{MetaSecurityScheme, Registry};
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions};
use portcullis_core::Authenticated;

use crate::capabilities::require_capability;
use crate::{AuthRejection, CapabilityName, ScopeName, state};

/// The name of the security scheme in the OpenAPI document
/// (`components.securitySchemes`).
pub const SCHEME_NAME: &str = "bearerAuth";

fn register_scheme(registry: &mut Registry) {
    registry.create_security_scheme(
        SCHEME_NAME,
        MetaSecurityScheme {
            ty: "http",
            description: Some(
                "A bearer token: the provider's access token or one issued by this service.",
            ),
            name: None,
            key_in: None,
            scheme: Some("bearer"),
            bearer_format: Some("JWT"),
            flows: None,
            openid_connect_url: None,
        },
    );
}

/// The trait items every security extractor of this module shares.
macro_rules! security_scheme {
    () => {
        const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];

        type ParamType = ();
        type ParamRawType = ();

        fn register(registry: &mut Registry) {
            register_scheme(registry);
        }

        fn security_schemes() -> Vec<&'static str> {
            vec![SCHEME_NAME]
        }
    };
}

/// An operation argument requiring a verified caller (401 otherwise),
/// documented as the bearer security scheme.
#[derive(Debug, Clone)]
pub struct BearerAuth(pub Authenticated);

impl<'a> ApiExtractor<'a> for BearerAuth {
    security_scheme!();

    async fn from_request(
        req: &'a Request,
        _body: &mut RequestBody,
        _opts: ExtractParamOptions<()>,
    ) -> poem::Result<Self> {
        let st = state(req)?;
        let caller = st.gate.require_caller(st.caller.as_ref());
        Ok(BearerAuth(caller.map_err(AuthRejection)?.clone()))
    }
}

/// An operation argument requiring a caller holding scope `S` (401 without
/// a caller, 403 `insufficient_scope` without the scope), documented as the
/// bearer security scheme.
#[derive(Debug, Clone)]
pub struct BearerScope<S: ScopeName>(pub Authenticated, PhantomData<S>);

impl<S: ScopeName> BearerScope<S> {
    /// The caller.
    pub fn caller(&self) -> &Authenticated {
        &self.0
    }
}

impl<'a, S: ScopeName> ApiExtractor<'a> for BearerScope<S> {
    security_scheme!();

    async fn from_request(
        req: &'a Request,
        _body: &mut RequestBody,
        _opts: ExtractParamOptions<()>,
    ) -> poem::Result<Self> {
        let st = state(req)?;
        let caller = st.gate.require_scope(st.caller.as_ref(), S::SCOPE);
        Ok(BearerScope(
            caller.map_err(AuthRejection)?.clone(),
            PhantomData,
        ))
    }
}

/// An operation argument requiring capability `C`, as
/// [`Capabilities::require`](portcullis_capabilities::Capabilities::require)
/// decides (401 for a guest without it, 403 `insufficient_scope` for a known
/// caller without it), documented as the bearer security scheme. Holds the
/// caller, `None` for a guest the capability is granted to. Needs
/// [`AuthMiddleware::with_capabilities`](crate::AuthMiddleware::with_capabilities)
/// or [`for_login`](crate::AuthMiddleware::for_login).
#[derive(Debug, Clone)]
pub struct BearerCapability<C: CapabilityName>(pub Option<Authenticated>, PhantomData<C>);

impl<C: CapabilityName> BearerCapability<C> {
    /// The caller, `None` for a guest.
    pub fn caller(&self) -> Option<&Authenticated> {
        self.0.as_ref()
    }
}

impl<'a, C: CapabilityName> ApiExtractor<'a> for BearerCapability<C> {
    security_scheme!();

    async fn from_request(
        req: &'a Request,
        _body: &mut RequestBody,
        _opts: ExtractParamOptions<()>,
    ) -> poem::Result<Self> {
        let caller = require_capability(req, C::CAPABILITY, false).await?;
        Ok(BearerCapability(caller, PhantomData))
    }
}
