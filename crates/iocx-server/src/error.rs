//! API errors: `{"error": {"code", "message", "field"?}}` with the right status.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use iocx_engine::EngineError;
use iocx_store::StoreError;
use serde_json::json;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// A stable machine-readable code.
    pub code: &'static str,
    /// What went wrong, for a person.
    pub message: String,
    /// The request field it is about.
    pub field: Option<String>,
}

/// Handler results.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// An error with `status` and `code`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    /// 400 about `field`.
    pub fn invalid(field: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            field: Some(field.to_string()),
            ..ApiError::new(StatusCode::BAD_REQUEST, "invalid", message)
        }
    }

    /// 404.
    pub fn not_found(what: impl std::fmt::Display) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} does not exist"),
        )
    }

    /// 401.
    pub fn unauthenticated(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
    }

    /// 403.
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 409.
    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// 500, logged; the answer does not leak internals beyond the message.
    pub fn internal(message: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %message, "Internal error answering a request");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("internal error: {message}"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({"code": self.code, "message": self.message});
        if let Some(f) = self.field {
            error["field"] = json!(f);
        }
        let mut response = (self.status, Json(json!({ "error": error }))).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"iocx\""),
            );
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::NotFound { what, name } => ApiError::not_found(format!("{what} {name:?}")),
            StoreError::Conflict(m) => ApiError::conflict(m),
            other => {
                let text = other.to_string();
                if text.contains("busy") || text.contains("locked") || text.contains("pool") {
                    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", text)
                } else {
                    ApiError::internal(text)
                }
            }
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> ApiError {
        match e {
            EngineError::Invalid(errors) => {
                let field = errors.0.first().map(|f| f.field.clone());
                ApiError {
                    field,
                    ..ApiError::new(StatusCode::BAD_REQUEST, "invalid", errors.to_string())
                }
            }
            EngineError::NotFound(what) => ApiError::not_found(what),
            EngineError::Busy(m) => ApiError::conflict(m),
            EngineError::Disabled(m) => ApiError::conflict(m),
            EngineError::Rule(m) => ApiError::invalid("expression", m),
            EngineError::Store(s) => s.into(),
            EngineError::Connector(c) => {
                ApiError::new(StatusCode::BAD_GATEWAY, "connector", c.to_string())
            }
            EngineError::Delivery(m) => ApiError::new(StatusCode::BAD_GATEWAY, "delivery", m),
            other => ApiError::internal(other),
        }
    }
}

/// Rejections of axum's extractors (bad JSON, bad query) as API errors.
pub fn rejection(e: impl std::fmt::Display, field: &str) -> ApiError {
    ApiError::invalid(field, e.to_string())
}
