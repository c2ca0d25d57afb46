//! JSON errors: every failure the API answers is `{"error": {"code": "…", "message": "…"}}`
//! with a stable code (and, for a refused payment, `"reason"`: the x402 reason). Service errors keep their [`ErrorCode`] and its HTTP status; the HTTP
//! layer adds two codes of its own ([`PAYLOAD_TOO_LARGE`], [`METHOD_NOT_ALLOWED`]) for failures
//! that never reach the service.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use x402_escrow_types::{ErrorBody, ErrorEnvelope};

use crate::service::{ErrorCode, ServiceError};
use crate::store::StoreError;

/// Code of a request body over the limit (413).
pub const PAYLOAD_TOO_LARGE: &str = ErrorCode::PayloadTooLarge.as_str();
/// Code of a known path asked with another method (405).
pub const METHOD_NOT_ALLOWED: &str = ErrorCode::MethodNotAllowed.as_str();

/// An error response: HTTP status, stable code, message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// Human-readable detail.
    pub message: String,
    /// The x402 reason of a refused payment, when it names the refusal more precisely than
    /// `code` (sent as `reason`).
    pub reason: Option<&'static str>,
}

impl ApiError {
    /// An error with one of the service's stable codes (its status comes with it).
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::from_u16(code.http_status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            code: code.as_str(),
            message: message.into(),
            reason: None,
        }
    }

    /// `400 invalid_request`.
    pub fn invalid_request(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::InvalidRequest, message)
    }

    /// `404 not_found`.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::NotFound, message)
    }

    /// `500 internal` (the detail is logged, not sent).
    pub fn internal() -> ApiError {
        ApiError::new(ErrorCode::Internal, "internal error")
    }

    /// `413 payload_too_large`.
    pub fn payload_too_large(limit: usize) -> ApiError {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("request body exceeds {limit} bytes"),
        )
    }

    /// `405 method_not_allowed`.
    pub fn method_not_allowed() -> ApiError {
        ApiError::new(
            ErrorCode::MethodNotAllowed,
            "method not allowed on this path",
        )
    }

    /// The JSON body bytes of this error.
    pub fn body(&self) -> Vec<u8> {
        let envelope = ErrorEnvelope {
            error: ErrorBody {
                code: self.code.to_owned(),
                message: self.message.clone(),
                reason: self.reason.map(str::to_owned),
            },
        };
        // Serializing two strings cannot fail; fall back to a fixed body all the same.
        serde_json::to_vec(&envelope).unwrap_or_else(|_| {
            br#"{"error":{"code":"internal","message":"internal error"}}"#.to_vec()
        })
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> ApiError {
        ApiError {
            reason: e.reason,
            ..ApiError::new(e.code, e.message)
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        tracing::error!(error = %e, "store failure");
        ApiError::internal()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> ApiError {
        match r {
            JsonRejection::MissingJsonContentType(_) => {
                ApiError::invalid_request("expected Content-Type: application/json")
            }
            JsonRejection::BytesRejection(b) if b.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::payload_too_large(super::BODY_LIMIT)
            }
            other => ApiError::invalid_request(format!("invalid JSON body: {}", other.body_text())),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> ApiError {
        ApiError::invalid_request(format!("invalid path parameter: {}", r.body_text()))
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> ApiError {
        ApiError::invalid_request(format!("invalid query string: {}", r.body_text()))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        json_response(self.status, self.body())
    }
}

/// A response with a JSON body given as bytes (used to replay stored responses byte for byte).
pub fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// A JSON value with a status.
pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => json_response(status, body),
        Err(e) => {
            tracing::error!(error = %e, "response serialization failed");
            ApiError::internal().into_response()
        }
    }
}

/// Fallback for unknown paths: `404 not_found`.
pub async fn fallback_not_found() -> ApiError {
    ApiError::not_found("no such endpoint")
}

/// Fallback for known paths with a wrong method: `405 method_not_allowed`.
pub async fn fallback_method_not_allowed() -> ApiError {
    ApiError::method_not_allowed()
}

/// `axum::Json`, but a rejection is a JSON [`ApiError`] (never axum's plain-text default).
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    axum::Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let axum::Json(value) = axum::Json::<T>::from_request(req, state).await?;
        Ok(ApiJson(value))
    }
}

/// Declares `$name<T>`: the axum extractor `$inner<T>`, but a rejection is a JSON [`ApiError`].
macro_rules! api_parts_extractor {
    ($(#[$doc:meta])* $name:ident wraps $inner:ident, $rejection:ty) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Default)]
        pub struct $name<T>(pub T);

        impl<T, S> FromRequestParts<S> for $name<T>
        where
            $inner<T>: FromRequestParts<S, Rejection = $rejection>,
            S: Send + Sync,
        {
            type Rejection = ApiError;

            async fn from_request_parts(
                parts: &mut Parts,
                state: &S,
            ) -> Result<Self, Self::Rejection> {
                let $inner(value) = $inner::<T>::from_request_parts(parts, state).await?;
                Ok($name(value))
            }
        }
    };
}

api_parts_extractor!(
    /// `axum::extract::Path`, but a rejection is a JSON [`ApiError`].
    ApiPath wraps Path, PathRejection
);

api_parts_extractor!(
    /// `axum::extract::Query`, but a rejection is a JSON [`ApiError`].
    ApiQuery wraps Query, QueryRejection
);

/// Renders a service result as JSON with `status` on success.
pub fn service_json<T: Serialize>(status: StatusCode, result: Result<T, ServiceError>) -> Response {
    match result {
        Ok(value) => json(status, &value),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// The raw request body; a failure to read it (over the limit) is `413 payload_too_large`.
#[derive(Debug, Clone, Default)]
pub struct ApiBody(pub axum::body::Bytes);

impl<S: Send + Sync> FromRequest<S> for ApiBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        axum::body::Bytes::from_request(req, state)
            .await
            .map(ApiBody)
            .map_err(|_| ApiError::payload_too_large(super::BODY_LIMIT))
    }
}
