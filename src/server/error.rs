//! `ApiError`: every failure a handler can return, with one table from variant to HTTP status,
//! encoded as Ollama's `{"error":"…"}` body.

use actix_web::{http::StatusCode, HttpResponse, ResponseError};
use std::fmt;

/// `Retry-After` on a 503 (the queue is full).
const RETRY_AFTER_SECONDS: &str = "1";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// 400: malformed or invalid request.
    BadRequest(String),
    /// 404: a model or blob that does not exist.
    NotFound(String),
    /// 501: a route a later version will serve.
    NotImplemented(String),
    /// 503: the request queue is full.
    ServiceUnavailable(String),
    /// 507: writing would fill the disk.
    InsufficientStorage(String),
    /// 500: anything else.
    Internal(String),
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::BadRequest(message.into())
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::NotFound(message.into())
    }

    pub fn internal(message: impl fmt::Display) -> ApiError {
        ApiError::Internal(message.to_string())
    }

    pub fn message(&self) -> &str {
        match self {
            ApiError::BadRequest(m)
            | ApiError::NotFound(m)
            | ApiError::NotImplemented(m)
            | ApiError::ServiceUnavailable(m)
            | ApiError::InsufficientStorage(m)
            | ApiError::Internal(m) => m,
        }
    }

    /// `{"error": "…"}` as a JSON value, for streamed error lines.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({ "error": self.message() })
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            ApiError::ServiceUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::InsufficientStorage(_) => StatusCode::INSUFFICIENT_STORAGE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        if let ApiError::ServiceUnavailable(_) = self {
            // A full queue drains as requests finish: tell clients when to try again.
            response.insert_header((actix_web::http::header::RETRY_AFTER, RETRY_AFTER_SECONDS));
        }
        response
            .content_type("application/json; charset=utf-8")
            .body(self.to_json().to_string())
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> ApiError {
        match e {
            crate::store::StoreError::DigestMismatch { .. } => ApiError::BadRequest(e.to_string()),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

/// Decodes a JSON request body the way Ollama's handlers do: an empty body is
/// `missing request body`, malformed JSON or a wrongly typed field is a 400 naming the problem,
/// unknown fields are ignored. The content type is not checked (Ollama does not check it).
///
/// Go's decoder takes `null` as the field's zero value, and clients send it (`"options": null`,
/// `"format": null`): a top-level `null` is taken as absent, which for request types whose
/// fields all default is the same thing. Nested request types use [`null_is_default`].
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("missing request body"));
    }
    let mut value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| ApiError::bad_request(e.to_string()))?;
    if value.is_null() {
        value = serde_json::Value::Object(serde_json::Map::new());
    }
    if let Some(object) = value.as_object_mut() {
        object.retain(|_, field| !field.is_null());
    }
    serde_json::from_value(value).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// `#[serde(default, deserialize_with = "null_is_default")]`: a field that takes `null` as its
/// zero value, as Go's decoder does.
pub fn null_is_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de> + Default,
{
    Ok(<Option<T> as serde::Deserialize>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    struct Request {
        #[allow(dead_code, reason = "only decoded")]
        model: String,
    }

    #[test]
    fn empty_body_is_missing_request_body() {
        let err = parse_json::<Request>(b"").unwrap_err();
        assert_eq!(err, ApiError::bad_request("missing request body"));
        assert_eq!(err.status_code(), StatusCode::BAD_REQUEST);
    }

    #[derive(serde::Deserialize, Debug, Default)]
    struct Nested {
        #[serde(default)]
        name: String,
        #[serde(default)]
        tags: Vec<String>,
        #[serde(default)]
        items: Vec<Item>,
    }

    #[derive(serde::Deserialize, Debug, Default)]
    struct Item {
        #[serde(default, deserialize_with = "null_is_default")]
        text: String,
    }

    #[test]
    fn null_fields_take_their_zero_value_as_in_go() {
        let parsed: Nested =
            parse_json(br#"{"name": null, "tags": null, "items": [{"text": null}]}"#).unwrap();
        assert_eq!(parsed.name, "");
        assert!(parsed.tags.is_empty());
        assert_eq!(parsed.items[0].text, "");
        // A `null` body is Go's zero request too.
        let parsed: Nested = parse_json(b"null").unwrap();
        assert_eq!(parsed.name, "");
    }

    #[test]
    fn malformed_json_is_a_bad_request() {
        let err = parse_json::<Request>(b"{\"model\": ").unwrap_err();
        assert_eq!(err.status_code(), StatusCode::BAD_REQUEST);
        let err = parse_json::<Request>(b"{\"model\": 5}").unwrap_err();
        assert!(err.message().contains("invalid type"), "{err}");
    }
}
