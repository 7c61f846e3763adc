//! Request extractors: the JSON body (with field-level errors), the environment, the caller.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use keyward_core::role::{Permission, Role};
use serde::de::DeserializeOwned;
use std::net::{IpAddr, SocketAddr};

/// The largest request body accepted anywhere (metadata is capped at 10 KB; imports are larger).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// A JSON body; syntax errors are `400 MALFORMED_JSON`, wrong fields `422` naming the field.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> JsonBody<T> {
    pub fn parse(bytes: &[u8]) -> Result<T, ApiError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "MALFORMED_JSON",
                "the request body is empty; send a JSON object",
            ));
        }
        // serde would read a struct from an array too; a request body is an object.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()).is_some_and(|&b| b != b'{')
            && serde_json::from_slice::<serde_json::Value>(bytes).is_ok()
        {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "INVALID_BODY",
                "the body must be a JSON object",
            ));
        }
        let mut deserializer = serde_json::Deserializer::from_slice(bytes);
        let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
            let path = err.path().to_string();
            let inner = err.into_inner();
            match inner.classify() {
                serde_json::error::Category::Data => {
                    let err = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "INVALID_FIELD", inner.to_string());
                    if path == "." {
                        err
                    } else {
                        err.with_field(path)
                    }
                }
                _ => malformed(&inner),
            }
        })?;
        deserializer.end().map_err(|e| malformed(&e))?;
        Ok(value)
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let bytes = read_body(req).await?;
        Ok(JsonBody(Self::parse(&bytes)?))
    }
}

fn malformed(err: &serde_json::Error) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "MALFORMED_JSON", format!("the body is not valid JSON: {err}"))
}

/// The body's bytes, at most `MAX_BODY_BYTES` (`413` beyond).
pub async fn read_body(req: Request) -> Result<bytes::Bytes, ApiError> {
    axum::body::to_bytes(req.into_body(), MAX_BODY_BYTES).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            format!("the request body is larger than {MAX_BODY_BYTES} bytes"),
        )
    })
}

/// The environment a request addresses: `/api/v1` is production, `/env/{name}/api/v1` is `name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Env(pub String);

/// The path the client sent, before `/env/{name}` was taken off (signatures cover it).
#[derive(Debug, Clone)]
pub struct OriginalPath(pub String);

impl FromRequestParts<AppState> for Env {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let name = parts.extensions.get::<Env>().map_or("production", |env| env.0.as_str());
        if state.has_environment(name) {
            Ok(Env(name.to_owned()))
        } else {
            Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "ENVIRONMENT_NOT_FOUND",
                format!("no environment is named `{name}`"),
            ))
        }
    }
}

/// Moves `/env/{name}/api/…` to `/api/…`, remembering the environment and the original path.
pub fn route_environment(mut req: Request) -> Request {
    let path = req.uri().path().to_owned();
    if let Some(rest) = path.strip_prefix("/env/") {
        if let Some((name, tail)) = rest.split_once('/') {
            if tail.starts_with("api/") {
                let env = Env(name.to_owned());
                let new_path = format!("/{tail}");
                let query = req.uri().query().map(|q| format!("?{q}")).unwrap_or_default();
                if let Ok(uri) = format!("{new_path}{query}").parse() {
                    *req.uri_mut() = uri;
                    req.extensions_mut().insert(env);
                }
            }
        }
    }
    req.extensions_mut().insert(OriginalPath(path));
    req
}

/// The client's IP address as the server saw it.
#[derive(Debug, Clone)]
pub struct ClientIp(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip());
        Ok(ClientIp(peer.map(|peer| client_ip(peer, &parts.headers, &state.trusted_proxies))))
    }
}

/// The client behind trusted load balancers: the right-most `X-Forwarded-For` address that is
/// not itself a trusted proxy. Anything else in the header could be written by the client.
pub fn client_ip(peer: IpAddr, headers: &axum::http::HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let forwarded =
        headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(','));
    let hops: Vec<IpAddr> = forwarded.filter_map(|hop| hop.trim().parse().ok()).collect();
    hops.into_iter().rev().find(|hop| !trusted.contains(hop)).unwrap_or(peer)
}

/// An admin API caller, authenticated by its bearer token and bound to the request's environment.
#[derive(Debug, Clone)]
pub struct Caller {
    pub token_id: String,
    pub name: String,
    pub role: Role,
    pub environment: String,
    pub ip: Option<String>,
}

impl Caller {
    pub fn require(&self, permission: Permission) -> Result<(), ApiError> {
        if self.role.allows(permission) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "FORBIDDEN",
                format!("the role {} may not do this", self.role.as_str()),
            ))
        }
    }

    /// The audit entry for a write by this caller.
    pub fn audit(&self, action: &str) -> keyward_store::Audit {
        keyward_store::Audit {
            actor: format!("token:{} ({})", self.token_id, self.name),
            ip: self.ip.clone(),
            action: action.to_owned(),
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Env(environment) = Env::from_request_parts(parts, state).await?;
        let unauthorized = |message: &str| ApiError::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message.to_owned());
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| unauthorized("send `Authorization: Bearer <token>`"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .ok_or_else(|| unauthorized("the Authorization header must be `Bearer <token>`"))?;
        let token = state
            .tokens
            .authenticate(state.store.as_ref(), token)
            .await?
            .ok_or_else(|| unauthorized("the token is not valid"))?;
        if token.environment != environment {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "ENVIRONMENT_MISMATCH",
                format!("this token belongs to the {} environment", token.environment),
            ));
        }
        let ClientIp(ip) = ClientIp::from_request_parts(parts, state).await.unwrap_or(ClientIp(None));
        Ok(Caller {
            token_id: token.id,
            name: token.name,
            role: token.role,
            environment,
            ip: ip.map(|ip| ip.to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_addresses_count_only_behind_trusted_proxies() {
        let lb: IpAddr = "10.0.0.1".parse().unwrap();
        let client: IpAddr = "203.0.113.7".parse().unwrap();
        let mut headers = axum::http::HeaderMap::new();
        headers.insert("x-forwarded-for", "198.51.100.1, 203.0.113.7".parse().unwrap());
        assert_eq!(client_ip(lb, &headers, &[]), lb, "an untrusted peer is the client");
        assert_eq!(client_ip(lb, &headers, &[lb]), client, "the right-most hop the balancer saw");
        headers.insert("x-forwarded-for", "198.51.100.1, 10.0.0.1".parse().unwrap());
        assert_eq!(
            client_ip(lb, &headers, &[lb]),
            "198.51.100.1".parse::<IpAddr>().unwrap(),
            "trusted hops are skipped"
        );
        headers.insert("x-forwarded-for", "garbage".parse().unwrap());
        assert_eq!(client_ip(lb, &headers, &[lb]), lb);
    }
}
