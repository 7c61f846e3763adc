//! The admin API for a vendor's back office (and the server's own tests): a generic request that
//! answers every status, a raw one for malformed bodies, and a few typed helpers built on them.

use crate::client::{encode_component, Client};
use crate::error::{Error, Result};
use bytes::Bytes;
use reqwest::header::{HeaderMap, AUTHORIZATION, CONTENT_TYPE};
use reqwest::Method;
use serde_json::{json, Value};

/// One answer of the admin API, whatever its status.
#[derive(Debug, Clone)]
pub struct ApiResponse {
    pub status: u16,
    pub headers: HeaderMap,
    /// The body as JSON; `Null` when it is empty or not JSON.
    pub body: Value,
    pub raw: Bytes,
}

impl ApiResponse {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// `body.error.code` of an error answer.
    pub fn error_code(&self) -> Option<&str> {
        self.body.get("error")?.get("code")?.as_str()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)?.to_str().ok()
    }

    /// The body of a `2xx` answer, or the answer as an `Error` (`Api`, or `RateLimited` for `429`).
    pub fn into_result(self) -> Result<Value> {
        if self.is_success() {
            Ok(self.body)
        } else {
            Err(Error::from_answer(self.status, &self.headers, &self.raw))
        }
    }
}

impl Client {
    /// Sends `body` as JSON to `path`, relative to the environment's API root
    /// (`"/licenses?status=active"`), with the token if one is set. `Ok` for every HTTP status.
    pub async fn request(&self, method: Method, path: &str, body: Option<&Value>) -> Result<ApiResponse> {
        let mut request = self.admin_request(method, path);
        if let Some(body) = body {
            request = request.json(body);
        }
        send(request).await
    }

    /// Sends these exact bytes with this content type, for bodies no JSON encoder would produce.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: impl Into<Bytes>,
    ) -> Result<ApiResponse> {
        let request = self.admin_request(method, path).header(CONTENT_TYPE, content_type).body(body.into());
        send(request).await
    }

    pub async fn create_product(&self, name: &str) -> Result<Value> {
        self.call(Method::POST, "/products", Some(&json!({ "name": name }))).await
    }

    pub async fn create_customer(&self, name: &str, email: &str) -> Result<Value> {
        self.call(Method::POST, "/customers", Some(&json!({ "name": name, "email": email }))).await
    }

    pub async fn create_generator(&self, generator: &Value) -> Result<Value> {
        self.call(Method::POST, "/generators", Some(generator)).await
    }

    pub async fn create_license(&self, license: &Value) -> Result<Value> {
        self.call(Method::POST, "/licenses", Some(license)).await
    }

    /// A license by its id or its key.
    pub async fn license(&self, id_or_key: &str) -> Result<Value> {
        self.call(Method::GET, &format!("/licenses/{}", encode_component(id_or_key)), None).await
    }

    /// `POST /licenses/{id}/actions/{action}`: `assign {customer}`, `suspend {reason}`, `revoke {}`, ….
    pub async fn license_action(&self, id: &str, action: &str, body: &Value) -> Result<Value> {
        let path = format!("/licenses/{}/actions/{}", encode_component(id), encode_component(action));
        self.call(Method::POST, &path, Some(body)).await
    }

    pub async fn edit_license(&self, id: &str, changes: &Value) -> Result<Value> {
        self.call(Method::PATCH, &format!("/licenses/{}", encode_component(id)), Some(changes)).await
    }

    /// Deletes a license; one that was ever activated needs `force`.
    pub async fn delete_license(&self, id: &str, force: bool) -> Result<Value> {
        let query = if force { "?force=true" } else { "" };
        self.call(Method::DELETE, &format!("/licenses/{}{query}", encode_component(id)), None).await
    }

    /// `GET /licenses` with these query parameters (`q`, `status`, `sort`, `limit`, `cursor`, …).
    pub async fn licenses(&self, query: &[(&str, &str)]) -> Result<Value> {
        self.call(Method::GET, &format!("/licenses{}", query_string(query)), None).await
    }

    /// `count` new keys of a generator, assigned to `customer` when given.
    pub async fn generate(&self, generator_id: &str, count: u32, customer: Option<&str>) -> Result<Value> {
        let mut body = json!({ "count": count });
        if let Some(customer) = customer {
            body["customer"] = json!(customer);
        }
        self.call(Method::POST, &format!("/generators/{}/generate", encode_component(generator_id)), Some(&body)).await
    }

    pub async fn activations(&self, license_id: &str) -> Result<Value> {
        self.call(Method::GET, &format!("/licenses/{}/activations", encode_component(license_id)), None).await
    }

    /// A new API token; the answer shows the token once.
    pub async fn create_token(&self, name: &str, role: &str, environment: &str) -> Result<Value> {
        let body = json!({ "name": name, "role": role, "environment": environment });
        self.call(Method::POST, "/tokens", Some(&body)).await
    }

    async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value> {
        self.request(method, path, body).await?.into_result()
    }

    fn admin_request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.http.request(method, self.url(path));
        match &self.token {
            Some(token) => request.header(AUTHORIZATION, format!("Bearer {token}")),
            None => request,
        }
    }
}

async fn send(request: reqwest::RequestBuilder) -> Result<ApiResponse> {
    let response = request.send().await?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let raw = response.bytes().await?;
    let body = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    Ok(ApiResponse { status, headers, body, raw })
}

/// `?a=1&b=x%20y`, or nothing for no parameters.
fn query_string(query: &[(&str, &str)]) -> String {
    if query.is_empty() {
        return String::new();
    }
    let pairs: Vec<String> =
        query.iter().map(|(name, value)| format!("{}={}", encode_component(name), encode_component(value))).collect();
    format!("?{}", pairs.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, raw: &'static [u8]) -> ApiResponse {
        ApiResponse {
            status,
            headers: HeaderMap::new(),
            body: serde_json::from_slice(raw).unwrap_or(Value::Null),
            raw: Bytes::from_static(raw),
        }
    }

    #[test]
    fn query_parameters_are_encoded() {
        assert_eq!(query_string(&[]), "");
        assert_eq!(
            query_string(&[("q", "acme corp&co"), ("status", "active"), ("email", "a+b@x.io")]),
            "?q=acme%20corp%26co&status=active&email=a%2Bb%40x.io"
        );
    }

    #[test]
    fn a_success_gives_its_body_and_an_error_its_code() {
        assert_eq!(answer(201, br#"{"id":"prod_1"}"#).into_result().unwrap()["id"], "prod_1");
        let refused = answer(409, br#"{"error":{"code":"INVALID_TRANSITION","message":"revoked is final"}}"#);
        assert_eq!(refused.error_code(), Some("INVALID_TRANSITION"));
        let err = refused.into_result().unwrap_err();
        assert_eq!((err.status(), err.code()), (Some(409), Some("INVALID_TRANSITION")));
    }

    #[test]
    fn a_body_that_is_not_json_reads_as_null() {
        let empty = answer(204, b"");
        assert!(empty.is_success());
        assert_eq!(empty.error_code(), None);
        assert_eq!(empty.into_result().unwrap(), Value::Null);
    }
}
