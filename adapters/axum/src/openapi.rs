//! utoipa support (feature `utoipa`): the OpenAPI document states the
//! security each handler's extractors enforce, read from their types.
//!
//! Register handlers with this module's [`routes!`](crate::openapi::routes)
//! in place of `utoipa_axum::routes!`. It takes the same handlers (each
//! annotated with `#[utoipa::path]`) and returns the same
//! `UtoipaMethodRouter` for `OpenApiRouter::routes`, and it sets each
//! operation's `security` from the handler's arguments:
//!
//! | the handler takes | the operation's `security` | without credentials | without the name | with it |
//! |---|---|---|---|---|
//! | no portcullis extractor | left as `#[utoipa::path]` says | as the handler answers | | |
//! | `Option<Caller>` | `[{}, {"portcullis": []}]` | 200 | | |
//! | [`Caller`] | `[{"portcullis": []}]` | 401 | | 200 |
//! | [`RequireScope<S>`] | `[{"portcullis": [S]}]` | 401 | 403 | 200 |
//! | [`RequireCapability<C, U>`] | `[{"portcullis": [C]}]` | 401 | 403 | 200 |
//!
//! Several extractors add up: `(RequireScope<Read>, RequireCapability<Payroll>)`
//! is `[{"portcullis": ["read", "payroll"]}]`, a caller holding both. The
//! names sit in the requirement's list, which OpenAPI 3.1 (utoipa's version)
//! allows for any scheme ("role names"). [`BearerScheme`], a utoipa
//! [`Modify`], adds the scheme [`SCHEME_NAME`] (HTTP bearer, JWT) to the
//! document's components. The caller comes from [`AuthLayer`](crate::AuthLayer),
//! which must wrap the router: with
//! [`for_login`](crate::AuthLayer::for_login), the session cookie counts as
//! well as the bearer token.
//!
//! # Why a `routes!` of its own
//!
//! The requirement must come from the types the handler is called with, so
//! that no one writes it twice and the two copies cannot disagree. Neither
//! `#[utoipa::path]` (which reads only its own attribute) nor
//! `utoipa_axum::routes!` (which erases the handler into a `MethodRouter`)
//! looks at the extractors. The handler's type does: axum implements
//! `Handler<T, S>` for it with `T` the tuple of its extractors. This
//! module's `routes!` passes each handler to `utoipa_axum::routes!` and,
//! alongside, to a generic function that reads `T` and asks each extractor
//! its [`ExtractorSecurity`]; the operations the handler added get the
//! answer. Everything else stays utoipa's: the `#[utoipa::path]`
//! attribute, `OpenApiRouter` (`nest`, `merge`, `layer`, `split_for_parts`),
//! the method router's extension trait. A second router type (as aide has)
//! or an attribute of its own would ask a utoipa user to learn another way
//! to write what they already write.
//!
//! The price is that every extractor of a handler registered this way
//! implements [`ExtractorSecurity`]: portcullis' extractors, axum's
//! (`Json`, `Path`, `Query`, `Form`, `State`, `Extension`, headers, bodies,
//! ...), `Option<T>` and `Result<T, E>` of those and tuples of them do. For
//! an extractor of your own, say what it requires (usually
//! [`Access::Public`], or the [`Access`] of the portcullis extractor it
//! wraps); one this crate cannot implement it for (another crate's) can be
//! wrapped in a type of your own, or its handler registered with the plain
//! `utoipa_axum::routes!` and its security written by hand. A handler that
//! does not compile here never reaches the document with a wrong requirement.
//!
//! # What the document does not say
//!
//! - A requirement written by hand for the `portcullis` scheme, in
//!   `#[utoipa::path(security(...))]` of a handler registered here or at the
//!   document's root, is refused with a panic when the router is built: it
//!   is exactly the second copy this module removes. Requirements of other
//!   schemes are kept, the portcullis one added to each of their alternatives.
//! - A capability that the configuration grants to guests
//!   (`guest_capabilities`) lets guests through at run time, which only the
//!   configuration knows: the document still asks for the bearer token, so a
//!   client that follows it is never refused.
//! - `RequireCapability<C, LoginRedirect>` sends a browser without a
//!   session to log in (303) where an API client gets the 401.
//! - As on every route behind [`AuthLayer`](crate::AuthLayer), a token that
//!   fails verification is refused (401) before any handler runs, public
//!   ones included.
//!
//! # Examples
//!
//! ```
//! use axum::Json;
//! use portcullis_axum::openapi::{BearerScheme, routes};
//! use portcullis_axum::{Caller, RequireCapability, RequireScope, capability, scope};
//! use utoipa::{Modify, OpenApi};
//! use utoipa_axum::router::OpenApiRouter;
//! # use portcullis_axum::AuthLayer;
//! # use portcullis_axum::portcullis_core::Authenticator;
//! # use portcullis_axum::portcullis_capabilities::Capabilities;
//!
//! scope!(Read = "read");
//! capability!(Write = "write");
//!
//! /// Open to everyone.
//! #[utoipa::path(get, path = "/health")]
//! async fn health() -> &'static str {
//!     "ok"
//! }
//!
//! /// Who is calling.
//! #[utoipa::path(get, path = "/me")]
//! async fn me(Caller(caller): Caller) -> String {
//!     caller.principal.user_id().to_owned()
//! }
//!
//! /// The report.
//! #[utoipa::path(get, path = "/report")]
//! async fn report(_: RequireScope<Read>) -> &'static str {
//!     "the report"
//! }
//!
//! /// Saves a note.
//! #[utoipa::path(post, path = "/notes", request_body = String)]
//! async fn save(_: RequireCapability<Write>, Json(note): Json<String>) -> String {
//!     note
//! }
//!
//! let (router, mut api): (axum::Router, _) = OpenApiRouter::new()
//!     .routes(routes!(health))
//!     .routes(routes!(me))
//!     .routes(routes!(report))
//!     .routes(routes!(save))
//!     .split_for_parts();
//! BearerScheme.modify(&mut api);
//!
//! let json = serde_json::to_value(&api)?;
//! assert_eq!(json["paths"]["/report"]["get"]["security"], serde_json::json!([{"portcullis": ["read"]}]));
//! assert_eq!(json["paths"]["/notes"]["post"]["security"], serde_json::json!([{"portcullis": ["write"]}]));
//! assert_eq!(json["paths"]["/me"]["get"]["security"], serde_json::json!([{"portcullis": []}]));
//! assert!(json["paths"]["/health"]["get"].get("security").is_none());
//! assert_eq!(json["components"]["securitySchemes"]["portcullis"]["scheme"], "bearer");
//!
//! # let serve = |auth: Authenticator, caps: Capabilities| {
//! // Serve the document beside the routes, and put the layer around both.
//! let app: axum::Router = router
//!     .route("/openapi.json", axum::routing::get(move || async move { Json(api) }))
//!     .layer(AuthLayer::new(auth).with_capabilities(caps));
//! # app };
//! # Ok::<(), serde_json::Error>(())
//! ```
//!
//! With a document derived by `#[derive(OpenApi)]`, list the scheme among
//! its modifiers, `#[openapi(modifiers(&BearerScheme))]`, and start the
//! router from it with `OpenApiRouter::with_openapi(ApiDoc::openapi())`.

use std::fmt::Display;

use axum::handler::Handler;
use utoipa::Modify;
use utoipa::openapi::OpenApi;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa_axum::router::UtoipaMethodRouter;

use crate::{Caller, CapabilityName, RequireCapability, RequireScope, ScopeName, Unauthenticated};

/// The name of the security scheme in the OpenAPI document
/// (`components.securitySchemes`), which every requirement this module
/// writes names.
pub const SCHEME_NAME: &str = "portcullis";

/// The scheme's description in the document.
const DESCRIPTION: &str = "A bearer token: the provider's access token or one issued by this \
     service. A requirement's list names the scopes and capabilities the caller must hold.";

/// What an extractor requires of the caller, as the OpenAPI document states it.
///
/// [`routes!`](crate::openapi::routes) adds up the access of every argument
/// of a handler ([`Access::and`]) and writes the result into the handler's
/// operations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Anyone: the extractor authenticates no one.
    Public,
    /// Anyone, with or without credentials (`Option<Caller>`).
    Optional,
    /// A verified caller holding every named scope or capability (with no
    /// names, any verified caller).
    Caller(Vec<&'static str>),
}

impl Access {
    /// What a handler taking both extractors requires: both requirements.
    ///
    /// ```
    /// use portcullis_axum::openapi::Access;
    ///
    /// let read = Access::Caller(vec!["read"]);
    /// assert_eq!(Access::Public.and(Access::Optional), Access::Optional);
    /// assert_eq!(Access::Optional.and(read.clone()), read);
    /// assert_eq!(
    ///     read.clone().and(Access::Caller(vec!["write", "read"])),
    ///     Access::Caller(vec!["read", "write"])
    /// );
    /// ```
    pub fn and(self, other: Access) -> Access {
        match (self, other) {
            (Access::Public, other) | (other, Access::Public) => other,
            (Access::Optional, other) | (other, Access::Optional) => other,
            (Access::Caller(mut names), Access::Caller(more)) => {
                for name in more {
                    if !names.contains(&name) {
                        names.push(name);
                    }
                }
                Access::Caller(names)
            }
        }
    }

    /// What `Option<E>` or `Result<E, _>` requires, where `E` requires
    /// `self`: the handler is reached with or without what `E` asks for.
    pub fn optional(self) -> Access {
        match self {
            Access::Public => Access::Public,
            Access::Optional | Access::Caller(_) => Access::Optional,
        }
    }

    /// Writes this requirement into `existing`, an operation's `security`:
    /// `None` for no change (public); requirements of other schemes are kept,
    /// the portcullis one added to each of their alternatives.
    fn security(
        &self,
        existing: Option<Vec<SecurityRequirement>>,
    ) -> Option<Vec<SecurityRequirement>> {
        if *self == Access::Public {
            return None;
        }
        // No requirement yet (or `security(())`): the one alternative needing nothing.
        let alternatives = match existing {
            Some(list) if !list.is_empty() => list,
            _ => vec![SecurityRequirement::default()],
        };
        match self {
            Access::Public => None,
            Access::Optional => Some(
                alternatives
                    .into_iter()
                    .flat_map(|alt| [alt.clone(), alt.add(SCHEME_NAME, Vec::<String>::new())])
                    .collect(),
            ),
            Access::Caller(names) => Some(
                alternatives
                    .into_iter()
                    .map(|alt| alt.add(SCHEME_NAME, names.iter().copied()))
                    .collect(),
            ),
        }
    }

    /// Sets `operation`'s `security` to this requirement (a public one
    /// leaves it as `#[utoipa::path]` wrote it).
    fn apply(&self, operation: &mut Operation, method: &str, path: &str) {
        refuse_written_by_hand(
            operation.security.as_deref(),
            &format_args!("{method} {path}"),
        );
        if let Some(security) = self.security(operation.security.clone()) {
            operation.security = Some(security);
        }
    }
}

/// Panics if `security` names the portcullis scheme: its requirements come
/// from the extractors only.
fn refuse_written_by_hand(security: Option<&[SecurityRequirement]>, place: &dyn Display) {
    for requirement in security.unwrap_or_default() {
        let names_scheme = serde_json::to_value(requirement)
            .ok()
            .as_ref()
            .and_then(serde_json::Value::as_object)
            .is_some_and(|map| map.contains_key(SCHEME_NAME));
        assert!(
            !names_scheme,
            "{place}: a security requirement for the `{SCHEME_NAME}` scheme is written by hand; \
             portcullis_axum::openapi derives it from the handler's extractors: remove it"
        );
    }
}

/// What an extractor requires of the caller, for the OpenAPI document.
///
/// Every argument of a handler registered with
/// [`routes!`](crate::openapi::routes) implements it. Implement it for an
/// extractor of your own: [`Access::Public`] when it authenticates no one,
/// or the access of the portcullis extractor it wraps
/// (`RequireScope::<Read>::access()`).
///
/// A handler with an extractor that does not say is refused at compile time:
///
/// ```compile_fail,E0277
/// use axum::extract::FromRequestParts;
/// use http::{StatusCode, request::Parts};
/// use portcullis_axum::openapi::routes;
/// use utoipa_axum::router::OpenApiRouter;
///
/// struct ApiKey;
///
/// impl<S: Send + Sync> FromRequestParts<S> for ApiKey {
///     type Rejection = StatusCode;
///
///     async fn from_request_parts(_: &mut Parts, _: &S) -> Result<Self, StatusCode> {
///         Ok(ApiKey)
///     }
/// }
///
/// #[utoipa::path(get, path = "/keyed")]
/// async fn keyed(_: ApiKey) {}
///
/// // `ApiKey` does not say what it requires of the caller.
/// let _: OpenApiRouter = OpenApiRouter::new().routes(routes!(keyed));
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not say what it requires of the caller",
    note = "every argument of a handler registered with `portcullis_axum::openapi::routes!` \
            implements `portcullis_axum::openapi::ExtractorSecurity`: implement it for `{Self}` \
            (or a type wrapping it), or register the handler with `utoipa_axum::routes!`"
)]
pub trait ExtractorSecurity {
    /// What the extractor requires.
    fn access() -> Access;
}

impl ExtractorSecurity for Caller {
    fn access() -> Access {
        Access::Caller(Vec::new())
    }
}

impl<S: ScopeName> ExtractorSecurity for RequireScope<S> {
    fn access() -> Access {
        Access::Caller(vec![S::SCOPE])
    }
}

impl<C: CapabilityName, U: Unauthenticated> ExtractorSecurity for RequireCapability<C, U> {
    fn access() -> Access {
        Access::Caller(vec![C::CAPABILITY])
    }
}

/// `Option<Caller>` is [`Access::Optional`]; `Option` of an extractor that
/// requires nothing requires nothing.
impl<T: ExtractorSecurity> ExtractorSecurity for Option<T> {
    fn access() -> Access {
        T::access().optional()
    }
}

/// The handler is reached with the extractor's rejection: as for `Option<T>`.
impl<T: ExtractorSecurity, E> ExtractorSecurity for Result<T, E> {
    fn access() -> Access {
        T::access().optional()
    }
}

/// Extractors that require nothing of the caller.
macro_rules! public {
    ($([$($generics:tt)*] $ty:ty),* $(,)?) => {
        $(
            impl<$($generics)*> ExtractorSecurity for $ty {
                fn access() -> Access {
                    Access::Public
                }
            }
        )*
    };
}

public!(
    [T] axum::Json<T>,
    [T] axum::Form<T>,
    [T] axum::extract::Path<T>,
    [T] axum::extract::Query<T>,
    [T] axum::extract::State<T>,
    [T] axum::Extension<T>,
    [T] axum::extract::ConnectInfo<T>,
    [] axum::extract::MatchedPath,
    [] axum::extract::NestedPath,
    [] axum::extract::OriginalUri,
    [] axum::extract::RawForm,
    [] axum::extract::RawPathParams,
    [] axum::extract::RawQuery,
    [] axum::extract::Request,
    [] axum::body::Body,
    [] axum::body::Bytes,
    [] String,
    [] http::HeaderMap,
    [] http::Method,
    [] http::Uri,
    [] http::Version,
    [] http::Extensions,
    [] http::request::Parts,
);

/// Tuples of extractors (an extractor too): every element's requirement.
macro_rules! tuples {
    ($($ty:ident),*) => {
        impl<$($ty: ExtractorSecurity),*> ExtractorSecurity for ($($ty,)*) {
            fn access() -> Access {
                Access::Public$(.and($ty::access()))*
            }
        }

        impl<M, $($ty: ExtractorSecurity),*> __private::HandlerAccess for (M, $($ty,)*) {
            fn access() -> Access {
                Access::Public$(.and($ty::access()))*
            }
        }
    };
}

tuples!();
tuples!(T1);
tuples!(T1, T2);
tuples!(T1, T2, T3);
tuples!(T1, T2, T3, T4);
tuples!(T1, T2, T3, T4, T5);
tuples!(T1, T2, T3, T4, T5, T6);
tuples!(T1, T2, T3, T4, T5, T6, T7);
tuples!(T1, T2, T3, T4, T5, T6, T7, T8);
tuples!(T1, T2, T3, T4, T5, T6, T7, T8, T9);
tuples!(T1, T2, T3, T4, T5, T6, T7, T8, T9, T10);
tuples!(T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11);
tuples!(T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12);
tuples!(T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13);
tuples!(T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13, T14);
tuples!(
    T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13, T14, T15
);
tuples!(
    T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13, T14, T15, T16
);

/// Adds the security scheme [`SCHEME_NAME`] (HTTP bearer, JWT) to a
/// document's components, as a utoipa [`Modify`]: call
/// `BearerScheme.modify(&mut api)`, or list it in
/// `#[openapi(modifiers(&BearerScheme))]`.
///
/// # Panics
///
/// If the document's root `security` names the scheme: requirements for it
/// come from the handlers' extractors (see the [module docs](self)).
#[derive(Debug, Clone, Copy, Default)]
pub struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut OpenApi) {
        refuse_written_by_hand(openapi.security.as_deref(), &"the document's root");
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                SCHEME_NAME,
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .bearer_format("JWT")
                        .description(Some(DESCRIPTION))
                        .build(),
                ),
            );
    }
}

/// Collects handlers annotated with `#[utoipa::path]` into a
/// `utoipa_axum::router::UtoipaMethodRouter`, as `utoipa_axum::routes!`
/// does, and sets each operation's `security` from the handler's extractors
/// (see the [module docs](crate::openapi)).
///
/// Every argument of each handler implements
/// [`ExtractorSecurity`](crate::openapi::ExtractorSecurity). The
/// expansion names the crates `utoipa` and `axum`, as `utoipa_axum::routes!`
/// does: depend on both.
///
/// # Panics
///
/// As `utoipa_axum::routes!` (two handlers for one method), and when a
/// handler's `#[utoipa::path]` writes a requirement for the portcullis
/// scheme by hand.
#[doc(hidden)]
#[macro_export]
macro_rules! __portcullis_utoipa_routes {
    ($handler:path $(, $tail:path)* $(,)?) => {{
        let routes = $crate::openapi::__private::secure(
            $handler,
            $crate::openapi::__private::utoipa_axum::routes!($handler),
        );
        $(
            let routes = $crate::openapi::__private::merge(
                routes,
                $crate::openapi::__private::secure(
                    $tail,
                    $crate::openapi::__private::utoipa_axum::routes!($tail),
                ),
            );
        )*
        routes
    }};
}

#[doc(inline)]
pub use crate::__portcullis_utoipa_routes as routes;

/// What [`routes!`] expands to; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use utoipa_axum;

    use super::*;

    /// The access of a handler's extractor tuple, as axum's `Handler<T, S>`
    /// has it: `(M, T1, ..., Tn)`, `M` marking how the last one extracts.
    pub trait HandlerAccess {
        /// Every extractor's requirement.
        fn access() -> Access;
    }

    /// Sets the security of the operations `routes` holds (those of
    /// `handler`) from `handler`'s extractors.
    pub fn secure<H, T, S>(_handler: H, routes: UtoipaMethodRouter<S>) -> UtoipaMethodRouter<S>
    where
        H: Handler<T, S>,
        T: HandlerAccess,
        S: Clone + Send + Sync + 'static,
    {
        let (schemas, mut paths, router) = routes;
        let access = T::access();
        for (path, item) in &mut paths.paths {
            for (method, operation) in operations(item) {
                access.apply(operation, method, path);
            }
        }
        (schemas, paths, router)
    }

    /// Both handlers' routes in one, as `utoipa_axum::routes!` collects
    /// several handlers.
    pub fn merge<S>(
        first: UtoipaMethodRouter<S>,
        second: UtoipaMethodRouter<S>,
    ) -> UtoipaMethodRouter<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let (mut schemas, mut paths, router) = first;
        let (more_schemas, more_paths, more_router) = second;
        schemas.extend(more_schemas);
        paths.merge(more_paths);
        (schemas, paths, router.merge(more_router))
    }

    /// The operations of `item`, with their method.
    fn operations(item: &mut PathItem) -> impl Iterator<Item = (&'static str, &mut Operation)> {
        [
            ("GET", &mut item.get),
            ("PUT", &mut item.put),
            ("POST", &mut item.post),
            ("DELETE", &mut item.delete),
            ("OPTIONS", &mut item.options),
            ("HEAD", &mut item.head),
            ("PATCH", &mut item.patch),
            ("TRACE", &mut item.trace),
        ]
        .into_iter()
        .filter_map(|(method, operation)| operation.as_mut().map(|op| (method, op)))
    }
}
