//! Reading what a client sends: `application/x-www-form-urlencoded` bodies
//! (strictly: UTF-8, no repeated parameter) and its credentials (RFC 6749
//! section 2.3.1: HTTP Basic, whose id and secret are form-encoded first,
//! or `client_id`/`client_secret` in the body).

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use percent_encoding::percent_decode;

use crate::error::OAuthError;

/// The largest body the issuer's endpoints read (8 KiB): a token request
/// is a few hundred bytes. The adapters stop reading past it and answer
/// [`body_too_large`](crate::Issuer::body_too_large).
pub const MAX_FORM_BYTES: usize = 8 * 1024;

/// A parsed form: each parameter once; parameters sent without a value are
/// treated as omitted (RFC 6749 section 3.1).
#[derive(Debug, Default)]
pub(crate) struct Form {
    params: HashMap<String, String>,
}

fn decode(part: &str) -> Option<String> {
    // Every `%` starts an escape of two hex digits.
    let bytes = part.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'%'
            && !(bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
        {
            return None;
        }
    }
    let spaced = part.replace('+', " ");
    percent_decode(spaced.as_bytes())
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

impl Form {
    /// Parses `body` sent with `content_type`.
    pub(crate) fn parse(content_type: Option<&str>, body: &[u8]) -> Result<Self, OAuthError> {
        let media = content_type
            .and_then(|c| c.split(';').next())
            .map(|m| m.trim().to_ascii_lowercase());
        if media.as_deref() != Some("application/x-www-form-urlencoded") {
            return Err(OAuthError::invalid_request(
                "the request body must be application/x-www-form-urlencoded",
            ));
        }
        if body.len() > MAX_FORM_BYTES {
            return Err(OAuthError::invalid_request("the request body is too large"));
        }
        let text = std::str::from_utf8(body)
            .map_err(|_| OAuthError::invalid_request("the request body is not UTF-8"))?;
        let mut params = HashMap::new();
        for pair in text.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let (Some(name), Some(value)) = (decode(name), decode(value)) else {
                return Err(OAuthError::invalid_request(
                    "the request body is not a valid form",
                ));
            };
            if name.is_empty() {
                return Err(OAuthError::invalid_request(
                    "the request body is not a valid form",
                ));
            }
            if params.contains_key(&name) {
                return Err(OAuthError::invalid_request(format!(
                    "the parameter `{name}` is repeated"
                )));
            }
            params.insert(name, value);
        }
        params.retain(|_, v| !v.is_empty());
        Ok(Self { params })
    }

    /// The parameter, if sent with a value.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    /// The parameter, or `invalid_request` naming it.
    pub(crate) fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name).ok_or_else(|| {
            OAuthError::invalid_request(format!("the parameter `{name}` is missing"))
        })
    }
}

/// The client credentials a request presents.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Presented {
    /// None at all.
    Nothing,
    /// An id without a secret (a public client).
    Id(String),
    /// An id and a secret, from Basic or from the body.
    IdSecret(String, String),
}

/// The client credentials of a request: its `Authorization` header and body.
pub(crate) fn client_credentials(
    authorization: Option<&str>,
    form: &Form,
) -> Result<Presented, OAuthError> {
    let body_id = form.get("client_id");
    let body_secret = form.get("client_secret");
    if let Some(header) = authorization {
        let (scheme, rest) = header.trim().split_once(' ').unwrap_or((header, ""));
        if !scheme.eq_ignore_ascii_case("basic") {
            return Err(OAuthError::invalid_client());
        }
        let decoded = STANDARD
            .decode(rest.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(OAuthError::invalid_client)?;
        let (id, secret) = decoded
            .split_once(':')
            .ok_or_else(OAuthError::invalid_client)?;
        // RFC 6749 section 2.3.1: both were form-encoded before Basic.
        let (Some(id), Some(secret)) = (decode(id), decode(secret)) else {
            return Err(OAuthError::invalid_client());
        };
        if body_secret.is_some() {
            return Err(OAuthError::invalid_request(
                "the client authenticated in two ways; use one",
            ));
        }
        if body_id.is_some_and(|b| b != id) {
            return Err(OAuthError::invalid_request(
                "the client_id parameter differs from the authenticated client",
            ));
        }
        return Ok(Presented::IdSecret(id, secret));
    }
    Ok(match (body_id, body_secret) {
        (Some(id), Some(secret)) => Presented::IdSecret(id.to_owned(), secret.to_owned()),
        (Some(id), None) => Presented::Id(id.to_owned()),
        (None, Some(_)) => {
            return Err(OAuthError::invalid_request(
                "client_secret was sent without client_id",
            ));
        }
        (None, None) => Presented::Nothing,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::OAuthErrorCode;

    const FORM: Option<&str> = Some("application/x-www-form-urlencoded; charset=UTF-8");

    #[test]
    fn forms_are_strict() {
        let form = Form::parse(FORM, b"a=1&b=x+y%21&c=&d").unwrap();
        assert_eq!(form.get("a"), Some("1"));
        assert_eq!(form.get("b"), Some("x y!"));
        assert_eq!(form.get("c"), None);
        assert_eq!(form.get("d"), None);
        for (ctype, body) in [
            (Some("application/json"), &b"{}"[..]),
            (None, b"a=1"),
            (FORM, b"a=1&a=2"),
            (FORM, b"a=%ff"),
            (FORM, b"a=%zz%"),
            (FORM, b"=1"),
            (FORM, &[0xff, 0xfe][..]),
        ] {
            let err = Form::parse(ctype, body).unwrap_err();
            assert_eq!(err.code(), OAuthErrorCode::InvalidRequest, "{body:?}");
        }
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let form = Form::parse(FORM, b"grant_type=x").unwrap();
        // id "a:b c", secret "p%&+"; form-encoded then base64.
        let header = format!("Basic {}", STANDARD.encode("a%3Ab+c:p%25%26%2B"));
        assert_eq!(
            client_credentials(Some(&header), &form).unwrap(),
            Presented::IdSecret("a:b c".into(), "p%&+".into())
        );
        let bad = client_credentials(Some("Basic !!!"), &form).unwrap_err();
        assert_eq!(bad.code(), OAuthErrorCode::InvalidClient);
        let twice = Form::parse(FORM, b"client_secret=s").unwrap();
        assert_eq!(
            client_credentials(Some(&header), &twice)
                .unwrap_err()
                .code(),
            OAuthErrorCode::InvalidRequest
        );
        assert_eq!(client_credentials(None, &form).unwrap(), Presented::Nothing);
    }
}
