// Starts the third-party OpenID Connect provider `oauth2-mock-server` on
// 127.0.0.1 for the portcullis-testing harness (`NodeOidcServer`).
//
// Usage: node oidc-server.mjs [--port N] [--email E] [--client-secret S] [--stock]
//
//   --port N           port to listen on; 0 (the default) lets the system choose
//   --email E          email of the user when the authorization request has no
//                      `login_hint` (default: test@example.com)
//   --client-secret S  require this secret from every client at the token
//                      endpoint (client_secret_basic or client_secret_post)
//   --stock            no hooks: the library's own behaviour, with only the
//                      issuer URL and an RS256 key set up by this launcher
//
// Once listening it prints exactly one line to stdout,
// {"issuer": "http://127.0.0.1:PORT", "port": PORT}, and nothing else there.
// It exits when its stdin closes (so it dies with the process that started
// it) and on SIGTERM or SIGINT.
//
// Without --stock, hooks make the library stricter and closer to a real
// provider:
// - authorize: `client_id` is required; the redirect carries `iss` (RFC 9207);
//   `login_hint` (or --email) becomes the user's email;
// - token, authorization_code grant: the code must come from this server and
//   is single-use; `client_id` and `redirect_uri` must match the authorization
//   request; a code issued with a `code_challenge` needs a `code_verifier`;
// - token, refresh_token grant: the refresh token must come from this server
//   and is single-use (rotated on every use);
// - ID tokens carry `email`, `email_verified` and `auth_time`;
// - userinfo needs a bearer access token from this server and answers the
//   user's `email` and `email_verified` too.

import { parseArgs } from "node:util";
import { OAuth2Server, Events } from "oauth2-mock-server";

const { values: options } = parseArgs({
  options: {
    port: { type: "string", default: "0" },
    email: { type: "string", default: "test@example.com" },
    "client-secret": { type: "string" },
    stock: { type: "boolean", default: false },
  },
  strict: true,
});

const host = "127.0.0.1";
const port = Number.parseInt(options.port, 10);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`oidc-server: invalid --port ${options.port}`);
  process.exit(2);
}
const defaultEmail = options.email;
const clientSecret = options["client-secret"];

const server = new OAuth2Server();
await server.issuer.keys.generate("RS256");

if (!options.stock) {
  installHooks(server.service);
}

await server.start(port, host);
const bound = server.address().port;
// The library names 127.0.0.1 "localhost" in its issuer; keep the address the
// server really listens on, so that clients never try ::1 first.
server.issuer.url = `http://${host}:${bound}`;

process.stdout.write(
  `${JSON.stringify({ issuer: server.issuer.url, port: bound })}\n`,
);

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  try {
    await server.stop();
  } finally {
    process.exit(0);
  }
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
process.stdin.on("end", stop);
process.stdin.on("close", stop);
process.stdin.on("error", stop);
process.stdin.resume();

/** The client id and secret a token request authenticates with, if any. */
function clientCredentials(req) {
  const header = req.headers.authorization ?? "";
  const match = /^Basic\s+(\S+)$/i.exec(header);
  if (match) {
    const decoded = Buffer.from(match[1], "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon >= 0) {
      // RFC 6749 section 2.3.1: both parts are form-urlencoded first.
      const unform = (s) => decodeURIComponent(s.replace(/\+/g, " "));
      try {
        return {
          id: unform(decoded.slice(0, colon)),
          secret: unform(decoded.slice(colon + 1)),
        };
      } catch {
        return { id: undefined, secret: undefined };
      }
    }
  }
  const body = req.body ?? {};
  return { id: body.client_id, secret: body.client_secret };
}

function oauthError(response, status, error, description) {
  response.statusCode = status;
  response.body = { error, error_description: description };
}

function installHooks(service) {
  // code -> { clientId, redirectUri, email, pkce, authTime, used }
  const codes = new Map();
  // refresh token -> { clientId, email, authTime }
  const refreshTokens = new Map();
  // access token -> { email }
  const accessTokens = new Map();
  // token request -> number of tokens signed so far (access token, then ID token)
  const signed = new WeakMap();

  /** The grant behind a token request: its code or refresh token's record. */
  function grantOf(req) {
    const body = req.body ?? {};
    if (body.grant_type === "authorization_code") return codes.get(body.code);
    if (body.grant_type === "refresh_token") {
      return refreshTokens.get(body.refresh_token);
    }
    return undefined;
  }

  service.on(Events.BeforeWellKnownOpenIdConfiguration, (response) => {
    Object.assign(response.body, {
      authorization_response_iss_parameter_supported: true,
      claims_supported: ["sub", "iss", "aud", "exp", "iat", "nonce", "auth_time", "email", "email_verified"],
      grant_types_supported: [...response.body.grant_types_supported, "refresh_token"],
    });
    if (clientSecret !== undefined) {
      response.body.token_endpoint_auth_methods_supported = ["client_secret_basic", "client_secret_post"];
    }
  });

  // The library redirects with the URL object it built, so change it in place.
  service.on(Events.BeforeAuthorizeRedirect, ({ url }, req) => {
    const query = req.query ?? {};
    const code = url.searchParams.get("code");
    if (code !== null) {
      if (typeof query.client_id !== "string" || query.client_id === "") {
        url.searchParams.delete("code");
        url.searchParams.set("error", "invalid_request");
        url.searchParams.set("error_description", "client_id is required");
      } else {
        const hint = typeof query.login_hint === "string" ? query.login_hint : "";
        codes.set(code, {
          clientId: query.client_id,
          redirectUri: query.redirect_uri,
          email: hint !== "" ? hint : defaultEmail,
          pkce: typeof query.code_challenge === "string" && query.code_challenge !== "",
          authTime: Math.floor(Date.now() / 1000),
          used: false,
        });
      }
    }
    url.searchParams.set("iss", server.issuer.url);
  });

  service.on(Events.BeforeTokenSigning, (token, req) => {
    const index = signed.get(req) ?? 0;
    signed.set(req, index + 1);
    // The first token of a request is the access token, the second the ID token.
    if (index !== 1) return;
    const grant = grantOf(req);
    token.payload.email = grant?.email ?? defaultEmail;
    token.payload.email_verified = true;
    if (grant !== undefined) token.payload.auth_time = grant.authTime;
  });

  service.on(Events.BeforeResponse, (response, req) => {
    const body = req.body ?? {};
    const client = clientCredentials(req);
    if (clientSecret !== undefined && client.secret !== clientSecret) {
      oauthError(response, 401, "invalid_client", "client authentication failed");
      return;
    }
    let grant;
    if (body.grant_type === "authorization_code") {
      grant = codes.get(body.code);
      if (grant === undefined || grant.used) {
        oauthError(response, 400, "invalid_grant", "unknown or already used authorization code");
        return;
      }
      grant.used = true;
      if (client.id !== grant.clientId) {
        oauthError(response, 400, "invalid_grant", "the code was issued to another client");
        return;
      }
      if (body.redirect_uri !== grant.redirectUri) {
        oauthError(response, 400, "invalid_grant", "redirect_uri does not match the authorization request");
        return;
      }
      if (grant.pkce && body.code_verifier === undefined) {
        oauthError(response, 400, "invalid_grant", "code_verifier is required");
        return;
      }
    } else if (body.grant_type === "refresh_token") {
      grant = refreshTokens.get(body.refresh_token);
      if (grant === undefined) {
        oauthError(response, 400, "invalid_grant", "unknown or already used refresh token");
        return;
      }
      refreshTokens.delete(body.refresh_token);
      if (client.id !== grant.clientId) {
        oauthError(response, 400, "invalid_grant", "the refresh token was issued to another client");
        return;
      }
    }
    const email = grant?.email ?? defaultEmail;
    if (typeof response.body.refresh_token === "string") {
      refreshTokens.set(response.body.refresh_token, {
        clientId: grant?.clientId ?? client.id,
        email,
        authTime: grant?.authTime ?? Math.floor(Date.now() / 1000),
      });
    }
    if (typeof response.body.access_token === "string") {
      accessTokens.set(response.body.access_token, { email });
    }
  });

  service.on(Events.BeforeUserinfo, (response, req) => {
    const match = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? "");
    const known = match ? accessTokens.get(match[1]) : undefined;
    if (known === undefined) {
      oauthError(response, 401, "invalid_token", "a bearer access token from this server is required");
      return;
    }
    Object.assign(response.body, { email: known.email, email_verified: true });
  });
}
