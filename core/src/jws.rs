//! Strict parsing of compact JWS tokens.
//!
//! Everything here runs before any key is looked at, on untrusted input, so it
//! is deliberately narrow: three segments of canonical unpadded base64url, a
//! header and a payload that are JSON objects without repeated member names.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};

use crate::alg::Algorithm;
use crate::error::{Error, TokenRejection};
use crate::principal::LazyClaims;

/// Header parameters that make a verifier fetch or trust key material named by
/// the token itself, or that ask for processing portcullis does not do.
const REFUSED_HEADER_PARAMS: [&str; 7] = ["jku", "x5u", "x5c", "jwk", "crit", "enc", "zip"];

/// A compact JWS split into its parts, header and payload decoded.
///
/// Its `Debug` shows the algorithm and sizes only: the claims, the signed
/// bytes and the signature are token content.
pub(crate) struct Parsed<'a> {
    pub(crate) alg: Algorithm,
    pub(crate) kid: Option<String>,
    pub(crate) typ: Option<String>,
    pub(crate) claims: Claims,
    /// `header.payload`, the bytes the signature covers.
    pub(crate) signing_input: &'a [u8],
    pub(crate) signature: Signature,
}

/// The decoded signature: inline up to RSA-4096's 512 bytes, so decoding
/// one costs no allocation.
#[allow(
    clippy::large_enum_variant,
    reason = "the inline buffer is the point: it lives on the stack for one verification"
)]
pub(crate) enum Signature {
    Inline([u8; SIGNATURE_INLINE], usize),
    Heap(Vec<u8>),
}

const SIGNATURE_INLINE: usize = 520;

impl Signature {
    fn decode(segment: &str) -> Result<Self, Error> {
        let mut buf = [0u8; SIGNATURE_INLINE];
        if segment.len() / 4 * 3 + 3 <= SIGNATURE_INLINE {
            let len = URL_SAFE_NO_PAD
                .decode_slice(segment, &mut buf)
                .map_err(|_| Error::invalid_token(TokenRejection::Malformed))?;
            Ok(Signature::Inline(buf, len))
        } else {
            b64_decode(segment).map(Signature::Heap)
        }
    }
}

impl std::ops::Deref for Signature {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Signature::Inline(buf, len) => &buf[..*len],
            Signature::Heap(v) => v,
        }
    }
}

impl PartialEq<Vec<u8>> for Signature {
    fn eq(&self, other: &Vec<u8>) -> bool {
        **self == **other
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{} bytes redacted]", self.len())
    }
}

impl fmt::Debug for Parsed<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Parsed")
            .field("alg", &self.alg)
            .field("has_kid", &self.kid.is_some())
            .field("has_typ", &self.typ.is_some())
            .field(
                "claims",
                &format_args!("[{} redacted]", self.claims.members),
            )
            .field(
                "signing_input",
                &format_args!("[{} bytes redacted]", self.signing_input.len()),
            )
            .field(
                "signature",
                &format_args!("[{} bytes redacted]", self.signature.len()),
            )
            .finish()
    }
}

/// Decodes one segment; refuses padding, `+`, `/`, whitespace and non-zero trailing bits.
pub(crate) fn b64_decode(segment: &str) -> Result<Vec<u8>, Error> {
    URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| Error::invalid_token(TokenRejection::Malformed))
}

/// Encodes bytes as unpadded base64url.
pub(crate) fn b64_encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Parses `token` (already size-checked by the caller).
pub(crate) fn parse(token: &str) -> Result<Parsed<'_>, Error> {
    let malformed = || Error::invalid_token(TokenRejection::Malformed);
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed());
    };
    if h.is_empty() || p.is_empty() {
        return Err(malformed());
    }
    // A header is short: decoded on the stack when it fits.
    let mut buf = [0u8; 384];
    let header = if h.len() / 4 * 3 + 3 <= buf.len() {
        let len = URL_SAFE_NO_PAD
            .decode_slice(h, &mut buf)
            .map_err(|_| malformed())?;
        parse_header(&buf[..len])?
    } else {
        parse_header(&b64_decode(h)?)?
    };
    if let Some(name) = header.refused {
        tracing::debug!(param = name, "token header parameter refused");
        return Err(Error::invalid_token(TokenRejection::ForbiddenHeader));
    }
    if header.b64 {
        // RFC 7797 unencoded payloads change what is signed; refuse them.
        return Err(Error::invalid_token(TokenRejection::ForbiddenHeader));
    }
    let alg = match &header.alg {
        Some(Text::Str(name)) => name
            .parse::<Algorithm>()
            .map_err(|_| Error::invalid_token(TokenRejection::UnsupportedAlgorithm))?,
        _ => return Err(Error::invalid_token(TokenRejection::UnsupportedAlgorithm)),
    };
    let text = |t: Option<Text>| match t {
        None => Ok(None),
        Some(Text::Str(v)) => Ok(Some(v)),
        Some(_) => Err(malformed()),
    };
    let kid = text(header.kid)?;
    let typ = text(header.typ)?;
    if s.is_empty() {
        return Err(Error::invalid_token(TokenRejection::BadSignature));
    }
    let signature = Signature::decode(s)?;
    let claims = parse_claims(b64_decode(p)?)?;
    Ok(Parsed {
        alg,
        kid,
        typ,
        claims,
        signing_input: &token.as_bytes()[..h.len() + 1 + p.len()],
        signature,
    })
}

/// The header members the parser looks at.
#[derive(Default)]
struct Header {
    alg: Option<Text>,
    kid: Option<Text>,
    typ: Option<Text>,
    /// The first refused parameter present.
    refused: Option<&'static str>,
    b64: bool,
}

/// Decodes the header's JSON once, refusing repeated member names as
/// [`parse_object`] does.
fn parse_header(bytes: &[u8]) -> Result<Header, Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let header = match de.deserialize_map(HeaderVisitor) {
        Ok(header) => header,
        Err(e) if e.to_string().starts_with(DUPLICATE) => {
            return Err(Error::invalid_token(TokenRejection::DuplicateMember));
        }
        Err(_) => return Err(Error::invalid_token(TokenRejection::Malformed)),
    };
    de.end()
        .map_err(|_| Error::invalid_token(TokenRejection::Malformed))?;
    Ok(header)
}

struct HeaderVisitor;

impl<'de> Visitor<'de> for HeaderVisitor {
    type Value = Header;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Header, A::Error> {
        let mut h = Header::default();
        let mut seen = Seen::Few(Vec::with_capacity(4));
        while let Some(Key(key)) = access.next_key::<Key<'de>>()? {
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(DUPLICATE));
            }
            match &*key {
                "alg" => h.alg = Some(access.next_value::<Typed<Text>>()?.0),
                "kid" => h.kid = Some(access.next_value::<Typed<Text>>()?.0),
                "typ" => h.typ = Some(access.next_value::<Typed<Text>>()?.0),
                name => {
                    access.next_value::<Skip>()?;
                    if name == "b64" {
                        h.b64 = true;
                    } else if let Some(refused) = REFUSED_HEADER_PARAMS.iter().find(|r| **r == name)
                    {
                        // The first in the list's order, as it is reported.
                        let first = h.refused.map_or(usize::MAX, |f| {
                            REFUSED_HEADER_PARAMS
                                .iter()
                                .position(|r| *r == f)
                                .unwrap_or(0)
                        });
                        let this = REFUSED_HEADER_PARAMS
                            .iter()
                            .position(|r| r == refused)
                            .unwrap_or(0);
                        if this < first {
                            h.refused = Some(refused);
                        }
                    }
                }
            }
        }
        Ok(h)
    }
}

/// Parses a JSON object, refusing repeated member names at the top level.
pub(crate) fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let obj = match de.deserialize_map(StrictObject) {
        Ok(obj) => obj,
        Err(e) if e.to_string().starts_with(DUPLICATE) => {
            return Err(Error::invalid_token(TokenRejection::DuplicateMember));
        }
        Err(_) => return Err(Error::invalid_token(TokenRejection::Malformed)),
    };
    de.end()
        .map_err(|_| Error::invalid_token(TokenRejection::Malformed))?;
    Ok(obj)
}

const DUPLICATE: &str = "duplicate member";

/// A claim that should be a string, as the token has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Text {
    /// `null`.
    Null,
    /// A string.
    Str(String),
    /// Anything else (a number, a boolean, an array, an object).
    Other,
}

impl Text {
    /// The string, if it is one.
    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Text::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// A NumericDate claim: a JSON number, non-negative, fractions truncated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Date {
    /// `null`.
    Null,
    /// A usable number of seconds.
    Secs(u64),
    /// A string, a negative or unusable number, or another type
    /// (CVE-2026-25537 was the acceptance of strings).
    Bad,
}

/// `aud`: a string, or an array of strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Audience {
    One(String),
    Many(Vec<String>),
    /// `null`, another type, or an array holding something else.
    Bad,
}

/// `scp`: a space-separated string or an array of strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Scp {
    Null,
    Str(String),
    List(Vec<String>),
    Bad,
}

/// The payload, read once: the registered and well-known claims the
/// verifier checks, typed; every member kept as JSON only on demand
/// ([`LazyClaims`]), from the decoded payload.
#[derive(Debug, Default)]
pub(crate) struct Claims {
    pub(crate) iss: Option<Text>,
    pub(crate) sub: Option<Text>,
    pub(crate) aud: Option<Audience>,
    pub(crate) exp: Option<Date>,
    pub(crate) nbf: Option<Date>,
    pub(crate) iat: Option<Date>,
    pub(crate) email: Option<Text>,
    /// `email_verified`: whether it vouches (`true` or `"true"`), when present.
    pub(crate) email_verified: Option<bool>,
    pub(crate) preferred_username: Option<Text>,
    pub(crate) cognito_username: Option<Text>,
    pub(crate) username: Option<Text>,
    pub(crate) client_id: Option<Text>,
    pub(crate) scope: Option<Text>,
    pub(crate) scp: Option<Scp>,
    pub(crate) token_use: Option<Text>,
    /// Keycloak's `typ` claim.
    pub(crate) typ: Option<Text>,
    /// Whether `nonce`, `at_hash` or `c_hash` is present (signs of an ID token).
    pub(crate) id_signs: bool,
    /// How many members the payload has.
    pub(crate) members: usize,
    /// Every member, as JSON, built when first asked for.
    pub(crate) raw: LazyClaims,
}

impl Claims {
    /// The string claim `name` among the typed ones; `None` when `name` is
    /// not one of them (ask [`raw`](Self::raw)).
    pub(crate) fn text(&self, name: &str) -> Option<Option<&Text>> {
        Some(
            match name {
                "iss" => &self.iss,
                "sub" => &self.sub,
                "email" => &self.email,
                "preferred_username" => &self.preferred_username,
                "cognito:username" => &self.cognito_username,
                "username" => &self.username,
                "client_id" => &self.client_id,
                _ => return None,
            }
            .as_ref(),
        )
    }
}

impl std::ops::Index<&str> for Claims {
    type Output = Value;

    fn index(&self, name: &str) -> &Value {
        &self.raw.get()[name]
    }
}

/// Decodes the payload's JSON once into [`Claims`], refusing repeated
/// member names at the top level as [`parse_object`] does.
fn parse_claims(payload: Vec<u8>) -> Result<Claims, Error> {
    let mut de = serde_json::Deserializer::from_slice(&payload);
    let claims = match de.deserialize_map(ClaimsVisitor) {
        Ok(claims) => claims,
        Err(e) if e.to_string().starts_with(DUPLICATE) => {
            return Err(Error::invalid_token(TokenRejection::DuplicateMember));
        }
        Err(_) => return Err(Error::invalid_token(TokenRejection::Malformed)),
    };
    de.end()
        .map_err(|_| Error::invalid_token(TokenRejection::Malformed))?;
    Ok(Claims {
        raw: LazyClaims::from_payload(payload),
        ..claims
    })
}

/// A member name, borrowed from the payload when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// The member names seen so far: a short list scanned, then a set.
enum Seen<'de> {
    Few(Vec<Cow<'de, str>>),
    Many(HashSet<Cow<'de, str>>),
}

impl<'de> Seen<'de> {
    /// Adds `key`; false when it was already there.
    fn insert(&mut self, key: Cow<'de, str>) -> bool {
        match self {
            Seen::Few(list) => {
                if list.contains(&key) {
                    return false;
                }
                list.push(key);
                if list.len() > 32 {
                    *self = Seen::Many(std::mem::take(list).into_iter().collect());
                }
                true
            }
            Seen::Many(set) => set.insert(key),
        }
    }
}

/// Any JSON value, checked as `serde_json::Value` would parse it (numbers
/// in range, strings well formed), kept nowhere.
struct Skip;

impl<'de> serde::Deserialize<'de> for Skip {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SkipVisitor)
    }
}

struct SkipVisitor;

impl<'de> Visitor<'de> for SkipVisitor {
    type Value = Skip;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_none<E: de::Error>(self) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Skip, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(Skip)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Skip, A::Error> {
        while map.next_key::<Skip>()?.is_some() {
            map.next_value::<Skip>()?;
        }
        Ok(Skip)
    }
}

/// One typed claim: what each JSON type becomes.
trait Shape: Sized {
    fn null() -> Self;
    fn other() -> Self;
    fn string(_: &str) -> Self {
        Self::other()
    }
    fn unsigned(_: u64) -> Self {
        Self::other()
    }
    fn signed(v: i64) -> Self {
        u64::try_from(v).map_or_else(|_| Self::other(), Self::unsigned)
    }
    fn float(_: f64) -> Self {
        Self::other()
    }
    fn boolean(_: bool) -> Self {
        Self::other()
    }
    /// An array, element by element (drained when the shape takes none).
    fn seq<'de, A: de::SeqAccess<'de>>(mut seq: A) -> Result<Self, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(Self::other())
    }
}

struct Typed<T>(T);

impl<'de, T: Shape> serde::Deserialize<'de> for Typed<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Shape> Visitor<'de> for V<T> {
            type Value = Typed<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Typed<T>, E> {
                Ok(Typed(T::boolean(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Typed<T>, E> {
                Ok(Typed(T::signed(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Typed<T>, E> {
                Ok(Typed(T::unsigned(v)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Typed<T>, E> {
                Ok(Typed(T::float(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Typed<T>, E> {
                Ok(Typed(T::string(v)))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Typed<T>, E> {
                Ok(Typed(T::null()))
            }
            fn visit_none<E: de::Error>(self) -> Result<Typed<T>, E> {
                Ok(Typed(T::null()))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Typed<T>, A::Error> {
                T::seq(seq).map(Typed)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Typed<T>, A::Error> {
                SkipVisitor.visit_map(map)?;
                Ok(Typed(T::other()))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

impl Shape for Text {
    fn null() -> Self {
        Text::Null
    }
    fn other() -> Self {
        Text::Other
    }
    fn string(v: &str) -> Self {
        Text::Str(v.to_owned())
    }
}

impl Shape for Date {
    fn null() -> Self {
        Date::Null
    }
    fn other() -> Self {
        Date::Bad
    }
    fn unsigned(v: u64) -> Self {
        Date::Secs(v)
    }
    fn float(f: f64) -> Self {
        if (0.0..1e15).contains(&f) {
            Date::Secs(f as u64)
        } else {
            Date::Bad
        }
    }
    fn signed(v: i64) -> Self {
        // A negative number: what `Value::as_f64` then the range check make of it.
        u64::try_from(v).map_or_else(|_| Self::float(v as f64), Self::unsigned)
    }
}

/// The strings of an array, or `None` when it holds anything else.
fn strings<'de, A: de::SeqAccess<'de>>(mut seq: A) -> Result<Option<Vec<String>>, A::Error> {
    let mut out = Vec::new();
    let mut all = true;
    while let Some(Typed(t)) = seq.next_element::<Typed<Text>>()? {
        match t {
            Text::Str(s) if all => out.push(s),
            _ => all = false,
        }
    }
    Ok(all.then_some(out))
}

impl Shape for Audience {
    fn null() -> Self {
        Audience::Bad
    }
    fn other() -> Self {
        Audience::Bad
    }
    fn string(v: &str) -> Self {
        Audience::One(v.to_owned())
    }
    fn seq<'de, A: de::SeqAccess<'de>>(seq: A) -> Result<Self, A::Error> {
        Ok(strings(seq)?.map_or(Audience::Bad, Audience::Many))
    }
}

impl Shape for Scp {
    fn null() -> Self {
        Scp::Null
    }
    fn other() -> Self {
        Scp::Bad
    }
    fn string(v: &str) -> Self {
        Scp::Str(v.to_owned())
    }
    fn seq<'de, A: de::SeqAccess<'de>>(seq: A) -> Result<Self, A::Error> {
        Ok(strings(seq)?.map_or(Scp::Bad, Scp::List))
    }
}

/// `email_verified`: true for `true` and `"true"`, false for anything else.
struct Vouch(bool);

impl Shape for Vouch {
    fn null() -> Self {
        Vouch(false)
    }
    fn other() -> Self {
        Vouch(false)
    }
    fn string(v: &str) -> Self {
        Vouch(v == "true")
    }
    fn boolean(v: bool) -> Self {
        Vouch(v)
    }
}

struct ClaimsVisitor;

impl<'de> Visitor<'de> for ClaimsVisitor {
    type Value = Claims;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Claims, A::Error> {
        fn typed<'de, T: Shape, A: MapAccess<'de>>(access: &mut A) -> Result<Option<T>, A::Error> {
            Ok(Some(access.next_value::<Typed<T>>()?.0))
        }
        let mut c = Claims::default();
        let mut seen = Seen::Few(Vec::with_capacity(16));
        while let Some(Key(key)) = access.next_key::<Key<'de>>()? {
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(DUPLICATE));
            }
            c.members += 1;
            match &*key {
                "iss" => c.iss = typed(&mut access)?,
                "sub" => c.sub = typed(&mut access)?,
                "aud" => c.aud = typed(&mut access)?,
                "exp" => c.exp = typed(&mut access)?,
                "nbf" => c.nbf = typed(&mut access)?,
                "iat" => c.iat = typed(&mut access)?,
                "email" => c.email = typed(&mut access)?,
                "email_verified" => {
                    c.email_verified = typed::<Vouch, _>(&mut access)?.map(|v| v.0);
                }
                "preferred_username" => c.preferred_username = typed(&mut access)?,
                "cognito:username" => c.cognito_username = typed(&mut access)?,
                "username" => c.username = typed(&mut access)?,
                "client_id" => c.client_id = typed(&mut access)?,
                "scope" => c.scope = typed(&mut access)?,
                "scp" => c.scp = typed(&mut access)?,
                "token_use" => c.token_use = typed(&mut access)?,
                "typ" => c.typ = typed(&mut access)?,
                "nonce" | "at_hash" | "c_hash" => {
                    c.id_signs = true;
                    access.next_value::<Skip>()?;
                }
                _ => {
                    access.next_value::<Skip>()?;
                }
            }
        }
        Ok(c)
    }
}

struct StrictObject;

impl<'de> Visitor<'de> for StrictObject {
    type Value = Map<String, Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            if map.contains_key(&key) {
                return Err(de::Error::custom(DUPLICATE));
            }
            let value: Value = access.next_value()?;
            map.insert(key, value);
        }
        Ok(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(json: &str) -> String {
        b64_encode(json.as_bytes())
    }

    fn rejection(token: &str) -> TokenRejection {
        parse(token).unwrap_err().rejection().unwrap()
    }

    #[test]
    fn parses_a_plain_token() {
        let t = format!(
            "{}.{}.{}",
            seg(r#"{"alg":"RS256","kid":"k"}"#),
            seg(r#"{"a":1}"#),
            "AAAA"
        );
        let p = parse(&t).unwrap();
        assert_eq!(p.alg, Algorithm::RS256);
        assert_eq!(p.kid.as_deref(), Some("k"));
        assert_eq!(p.claims["a"], 1);
        assert_eq!(p.signature, vec![0, 0, 0]);
    }

    #[test]
    fn debug_shows_no_token_content() {
        let t = format!(
            "{}.{}.{}",
            seg(r#"{"alg":"RS256","kid":"key-7f3a","typ":"at+jwt"}"#),
            seg(r#"{"sub":"alice-secret-subject","email":"alice@example.com"}"#),
            b64_encode(b"signature-bytes-here")
        );
        let shown = format!("{:?}", parse(&t).unwrap());
        for content in [
            "key-7f3a",
            "at+jwt",
            "alice",
            "example.com",
            "eyJ",
            &t[t.len() - 10..],
            "115, 105, 103",
        ] {
            assert!(!shown.contains(content), "{content} in {shown}");
        }
        assert!(shown.contains("RS256"), "{shown}");
    }

    #[test]
    fn refuses_structure_errors() {
        let h = seg(r#"{"alg":"RS256"}"#);
        let p = seg(r#"{"a":1}"#);
        assert_eq!(rejection(&format!("{h}.{p}")), TokenRejection::Malformed);
        assert_eq!(
            rejection(&format!("{h}.{p}.AA.AA")),
            TokenRejection::Malformed
        );
        assert_eq!(
            rejection(&format!("{h}.{p}.")),
            TokenRejection::BadSignature
        );
        assert_eq!(
            rejection(&format!("{h}=.{p}.AAAA")),
            TokenRejection::Malformed
        );
        assert_eq!(
            rejection(&format!("{h}.{p}.AA+A")),
            TokenRejection::Malformed
        );
        assert_eq!(
            rejection(&format!("{h}.{p}.AA/A")),
            TokenRejection::Malformed
        );
        assert_eq!(
            rejection(&format!("{h}.{p} .AAAA")),
            TokenRejection::Malformed
        );
        // "AB" decodes to one byte with non-zero trailing bits: not canonical.
        assert_eq!(rejection(&format!("{h}.{p}.AB")), TokenRejection::Malformed);
        assert_eq!(
            rejection(&format!("{}.{p}.AAAA", seg("[1]"))),
            TokenRejection::Malformed
        );
        assert_eq!(
            rejection(&format!("{h}.{}.AAAA", seg("\"x\""))),
            TokenRejection::Malformed
        );
        assert_eq!(
            rejection(&format!("{h}.{}.AAAA", seg("{} {}"))),
            TokenRejection::Malformed
        );
    }

    #[test]
    fn refuses_duplicates_and_header_params() {
        let p = seg(r#"{"a":1}"#);
        let dup = seg(r#"{"alg":"RS256","alg":"HS256"}"#);
        assert_eq!(
            rejection(&format!("{dup}.{p}.AAAA")),
            TokenRejection::DuplicateMember
        );
        let h = seg(r#"{"alg":"RS256"}"#);
        let dup_claims = seg(r#"{"sub":"a","sub":"b"}"#);
        assert_eq!(
            rejection(&format!("{h}.{dup_claims}.AAAA")),
            TokenRejection::DuplicateMember
        );
        for param in ["jku", "x5u", "x5c", "jwk", "crit"] {
            let h = seg(&format!(r#"{{"alg":"RS256","{param}":"x"}}"#));
            assert_eq!(
                rejection(&format!("{h}.{p}.AAAA")),
                TokenRejection::ForbiddenHeader
            );
        }
        for alg in ["none", "None", "nOnE", ""] {
            let h = seg(&format!(r#"{{"alg":"{alg}"}}"#));
            assert_eq!(
                rejection(&format!("{h}.{p}.")),
                TokenRejection::UnsupportedAlgorithm
            );
        }
    }
}
