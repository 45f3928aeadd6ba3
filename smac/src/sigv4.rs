//! AWS Signature Version 4, as far as portcullis needs it: a request
//! signed in the `Authorization` header, with the crypto the workspace
//! already has (aws-lc-rs HMAC-SHA256 and SHA-256).
//!
//! The canonical request, the string to sign and the signing key follow
//! AWS's published description of the algorithm; the unit tests run AWS's
//! published example requests (`sigv4_vectors.json`, data only).

use std::fmt::Write as _;

use aws_lc_rs::{digest, hmac};

/// The credentials a request is signed with.
#[derive(Clone)]
pub struct Credentials {
    /// `AWS_ACCESS_KEY_ID`.
    pub access_key_id: String,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: String,
    /// `AWS_SESSION_TOKEN`, for temporary credentials.
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key id names the key, it is no secret; the rest is.
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"[redacted]")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

/// One request to sign.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// `GET`, `POST`, ...
    pub method: &'a str,
    /// The path, as sent (`/` when empty).
    pub path: &'a str,
    /// Query parameters, decoded.
    pub query: &'a [(&'a str, &'a str)],
    /// Headers to sign besides `x-amz-date` (and `x-amz-security-token`):
    /// `host` at least.
    pub headers: &'a [(&'a str, &'a str)],
    /// The body.
    pub payload: &'a [u8],
}

/// The headers a signed request adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// `Authorization`.
    pub authorization: String,
    /// `X-Amz-Date`.
    pub x_amz_date: String,
    /// `X-Amz-Security-Token`, with temporary credentials.
    pub x_amz_security_token: Option<String>,
}

/// Signs `request` for `service` in `region` at `amz_date`
/// (`YYYYMMDD'T'HHMMSS'Z'`).
pub fn sign(
    request: &Request<'_>,
    credentials: &Credentials,
    region: &str,
    service: &str,
    amz_date: &str,
) -> Signed {
    let date = &amz_date[..amz_date.len().min(8)];
    let mut headers: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), canonical_value(v)))
        .collect();
    headers.push(("x-amz-date".to_owned(), amz_date.to_owned()));
    if let Some(token) = &credentials.session_token {
        headers.push(("x-amz-security-token".to_owned(), token.clone()));
    }
    headers.sort();
    // Repeated names join their values with commas.
    let mut merged: Vec<(String, String)> = Vec::with_capacity(headers.len());
    for (name, value) in headers {
        match merged.last_mut() {
            Some((last, values)) if *last == name => {
                values.push(',');
                values.push_str(&value);
            }
            _ => merged.push((name, value)),
        }
    }
    let signed_headers = merged
        .iter()
        .map(|(n, _)| n.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let mut canonical = String::new();
    canonical.push_str(request.method);
    canonical.push('\n');
    canonical.push_str(&canonical_path(request.path));
    canonical.push('\n');
    canonical.push_str(&canonical_query(request.query));
    canonical.push('\n');
    for (name, value) in &merged {
        let _ = writeln!(canonical, "{name}:{value}");
    }
    canonical.push('\n');
    canonical.push_str(&signed_headers);
    canonical.push('\n');
    canonical.push_str(&hex_sha256(request.payload));

    let scope = format!("{date}/{region}/{service}/aws4_request");
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex_sha256(canonical.as_bytes())
    );
    let key = signing_key(&credentials.secret_access_key, date, region, service);
    let signature = hex(hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, &key),
        string_to_sign.as_bytes(),
    )
    .as_ref());
    Signed {
        authorization: format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
            credentials.access_key_id
        ),
        x_amz_date: amz_date.to_owned(),
        x_amz_security_token: credentials.session_token.clone(),
    }
}

/// The signing key: HMAC chained over date, region, service and
/// `aws4_request`, from `AWS4` + the secret key.
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let mut key = format!("AWS4{secret}").into_bytes();
    for part in [date, region, service, "aws4_request"] {
        key = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &key), part.as_bytes())
            .as_ref()
            .to_vec();
    }
    key
}

/// `YYYYMMDD'T'HHMMSS'Z'` for `secs` since the Unix epoch.
pub fn amz_date(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Header values: surrounding spaces removed, inner runs of spaces made one.
fn canonical_value(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Each segment URI-encoded (the services other than S3 encode twice, so
/// an already encoded path is encoded again).
fn canonical_path(path: &str) -> String {
    if path.is_empty() {
        return "/".to_owned();
    }
    path.split('/')
        .map(uri_encode)
        .collect::<Vec<_>>()
        .join("/")
}

fn canonical_query(query: &[(&str, &str)]) -> String {
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| (uri_encode(k), uri_encode(v)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// RFC 3986 percent-encoding of everything but unreserved characters.
fn uri_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn hex_sha256(bytes: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, bytes).as_ref())
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's published Signature Version 4 examples, as data.
    const VECTORS: &str = include_str!("sigv4_vectors.json");

    #[test]
    fn the_published_examples_sign_as_published() {
        let vectors: serde_json::Value = serde_json::from_str(VECTORS).unwrap();
        let credentials = Credentials {
            access_key_id: vectors["access_key_id"].as_str().unwrap().to_owned(),
            secret_access_key: vectors["secret_access_key"].as_str().unwrap().to_owned(),
            session_token: None,
        };
        let key = &vectors["signing_key"];
        assert_eq!(
            hex(&signing_key(
                &credentials.secret_access_key,
                key["date"].as_str().unwrap(),
                key["region"].as_str().unwrap(),
                key["service"].as_str().unwrap(),
            )),
            key["expected"].as_str().unwrap()
        );
        let requests = vectors["requests"].as_array().unwrap();
        assert!(requests.len() >= 3);
        for case in requests {
            let text = |v: &serde_json::Value| v.as_str().unwrap().to_owned();
            let pairs = |v: &serde_json::Value| -> Vec<(String, String)> {
                v.as_array()
                    .unwrap()
                    .iter()
                    .map(|p| (text(&p[0]), text(&p[1])))
                    .collect()
            };
            let headers = pairs(&case["headers"]);
            let query = pairs(&case["query"]);
            let headers: Vec<(&str, &str)> = headers
                .iter()
                .map(|(a, b)| (a.as_str(), b.as_str()))
                .collect();
            let query: Vec<(&str, &str)> = query
                .iter()
                .map(|(a, b)| (a.as_str(), b.as_str()))
                .collect();
            let body = text(&case["body"]);
            let request = Request {
                method: case["method"].as_str().unwrap(),
                path: case["path"].as_str().unwrap(),
                query: &query,
                headers: &headers,
                payload: body.as_bytes(),
            };
            let signed = sign(
                &request,
                &credentials,
                vectors["region"].as_str().unwrap(),
                vectors["service"].as_str().unwrap(),
                vectors["amz_date"].as_str().unwrap(),
            );
            assert_eq!(
                signed.authorization,
                case["authorization"].as_str().unwrap(),
                "{}",
                case["name"]
            );
        }
    }

    #[test]
    fn dates_are_written_as_aws_wants() {
        assert_eq!(amz_date(0), "19700101T000000Z");
        assert_eq!(amz_date(1_440_938_160), "20150830T123600Z");
        assert_eq!(amz_date(951_782_400), "20000229T000000Z");
        assert_eq!(amz_date(4_102_444_799), "20991231T235959Z");
    }

    #[test]
    fn temporary_credentials_sign_their_token_and_debug_shows_no_secret() {
        let credentials = Credentials {
            access_key_id: "AKIDEXAMPLE".to_owned(),
            secret_access_key: "a-secret-key-value".to_owned(),
            session_token: Some("a-session-token-value".to_owned()),
        };
        let request = Request {
            method: "POST",
            path: "/",
            query: &[],
            headers: &[("host", "example.amazonaws.com")],
            payload: b"{}",
        };
        let signed = sign(
            &request,
            &credentials,
            "us-east-1",
            "service",
            "20150830T123600Z",
        );
        assert!(
            signed
                .authorization
                .contains("SignedHeaders=host;x-amz-date;x-amz-security-token,")
        );
        assert_eq!(
            signed.x_amz_security_token.as_deref(),
            Some("a-session-token-value")
        );
        let shown = format!("{credentials:?}");
        assert!(!shown.contains("a-secret-key-value") && !shown.contains("a-session-token-value"));
    }
}
